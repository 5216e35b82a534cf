"""The report's figures (matplotlib, Agg backend: no display needed on a cluster node).

Each figure is written as PNG (for Markdown and the HTML page) and PDF (for LaTeX), atomically,
and only when the sweep has what it shows: learning curves whenever there are curves, the λ0
plot when some architecture has runs at several λ0, the ISDA − CE gap when both ran.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: a report must render on a headless node
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench import paper, stats  # noqa: E402
from bench.fsutil import atomic_write  # noqa: E402
from bench.report_tables import METRIC, method_variants, pick_variant  # noqa: E402

DPI = 110


@dataclass(frozen=True)
class Figure:
    key: str
    title: str
    png: Path
    pdf: Path


def _save(fig: plt.Figure, out_dir: Path, key: str, title: str) -> Figure:
    paths = []
    for ext in ("png", "pdf"):
        buf = io.BytesIO()
        # No creation date in the PDF: the same results give the same bytes (committed reports).
        meta = {"CreationDate": None} if ext == "pdf" else {}
        fig.savefig(buf, format=ext, dpi=DPI, bbox_inches="tight", metadata=meta)
        paths.append(atomic_write(out_dir / f"{key}.{ext}", lambda fh, b=buf: fh.write(b.getvalue())))
    plt.close(fig)
    return Figure(key, title, paths[0], paths[1])


def _grid(n: int, width: float = 4.6, height: float = 3.4) -> tuple[plt.Figure, list[plt.Axes]]:
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _panels(df: pd.DataFrame) -> list[tuple[str, str]]:
    pairs = {(str(d), str(a)) for d, a in zip(df["dataset"], df["arch"]) if pd.notna(d) and pd.notna(a)}
    order = {d: i for i, d in enumerate(paper.DATASET_NAMES)}
    return sorted(pairs, key=lambda p: (order.get(p[0], len(order)), paper.arch_name(p[1])))


def _panel_title(ds: str, arch: str) -> str:
    return f"{paper.dataset_name(ds)} / {paper.arch_name(arch)}"


def curves_figure(curves: pd.DataFrame, out_dir: Path) -> Figure | None:
    """Test error per epoch: per panel (dataset × arch) one line per method variant, the mean over
    seeds, with the min–max range over seeds shaded."""
    needed = {"dataset", "arch", "method", "epoch", "test_error", "run_id"}
    if curves.empty or not needed <= set(curves.columns):
        return None
    curves = curves.assign(test_error=pd.to_numeric(curves["test_error"], errors="coerce"))
    panels = _panels(curves)
    if not panels:
        return None
    fig, axes = _grid(len(panels))
    for ax, (ds, arch) in zip(axes, panels):
        sub = curves[(curves["dataset"] == ds) & (curves["arch"] == arch)]
        for variant in method_variants(sub):
            runs = variant.select(sub)
            n = runs["run_id"].nunique()
            by_epoch = runs.groupby("epoch")["test_error"]
            mean = by_epoch.mean()
            (line,) = ax.plot(mean.index + 1, mean.to_numpy(), label=f"{variant.label()} (n={n})", lw=1.4)
            if n > 1:
                ax.fill_between(
                    mean.index + 1,
                    by_epoch.min().to_numpy(),
                    by_epoch.max().to_numpy(),
                    color=line.get_color(),
                    alpha=0.2,
                    lw=0,
                )
        _style_panel(ax, _panel_title(ds, arch), "epoch", "test error (%)")
    fig.suptitle("Test error per epoch (mean over seeds; band: min–max over seeds)", fontsize=11)
    return _save(fig, out_dir, "curves", "Test error per epoch")


def _style_panel(ax: plt.Axes, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _completed(runs: pd.DataFrame) -> pd.DataFrame:
    done = runs[runs["status"] == "completed"].copy()
    done[METRIC] = pd.to_numeric(done[METRIC], errors="coerce")
    return done[done[METRIC].notna()]


def lambda_figure(runs: pd.DataFrame, out_dir: Path) -> Figure | None:
    """Final (last-10) test error against λ0, for each architecture that ran several λ0 values."""
    done = _completed(runs)
    done = done.assign(lambda0=pd.to_numeric(done["lambda0"], errors="coerce"))
    with_lam = done[done["lambda0"].notna()]
    panels = [
        (d, a)
        for d, a in _panels(with_lam)
        if with_lam[(with_lam["dataset"] == d) & (with_lam["arch"] == a)]["lambda0"].nunique() > 1
    ]
    if not panels:
        return None
    fig, axes = _grid(len(panels))
    for ax, (ds, arch) in zip(axes, panels):
        sub = with_lam[(with_lam["dataset"] == ds) & (with_lam["arch"] == arch)]
        for method, msub in sub.groupby("method", sort=False):
            agg = msub.groupby("lambda0")[METRIC].agg(["mean", "min", "max", "count"])
            if len(agg) < 2:
                continue
            n = int(agg["count"].sum())
            (line,) = ax.plot(
                agg.index, agg["mean"], marker="o", label=f"{paper.method_name(method)} (n={n} runs)"
            )
            ax.fill_between(agg.index, agg["min"], agg["max"], color=line.get_color(), alpha=0.2, lw=0)
        ce = done[(done["dataset"] == ds) & (done["arch"] == arch) & (done["method"] == "ce")][METRIC]
        if len(ce):
            ax.axhline(ce.mean(), color="k", ls="--", lw=1, label=f"CE (n={len(ce)})")
        _style_panel(ax, _panel_title(ds, arch), "λ0 (ISDA strength)", "last-10-epoch test error (%)")
    fig.suptitle("Test error vs λ0 (mean; band: min–max over seeds)", fontsize=11)
    return _save(fig, out_dir, "lambda", "Test error vs λ0")


def gap_figure(
    runs: pd.DataFrame, out_dir: Path, reps: int = stats.DEFAULT_REPS, seed: int = stats.DEFAULT_SEED
) -> Figure | None:
    """ISDA − CE per dataset × architecture with a 95 % bootstrap interval of the difference."""
    done = _completed(runs)
    items = []
    notes: set[str] = set()
    for ds, arch in _panels(done):
        sub = done[(done["dataset"] == ds) & (done["arch"] == arch)]
        if not ((sub["method"] == "ce").any() and (sub["method"] == "isda").any()):
            continue
        isda = pick_variant(sub, "isda", notes)[METRIC].to_numpy()
        ce = pick_variant(sub, "ce", notes)[METRIC].to_numpy()
        cmp = stats.compare(isda, ce, reps=reps, seed=seed)
        items.append((f"{_panel_title(ds, arch)}\n(n={cmp.treatment.n} ISDA, {cmp.control.n} CE)", cmp))
    if not items:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.75 * len(items)))
    y = np.arange(len(items))[::-1]
    gaps = np.array([c.gap for _, c in items])
    lo = np.array([c.gap_ci_low for _, c in items])
    hi = np.array([c.gap_ci_high for _, c in items])
    has_ci = np.isfinite(lo) & np.isfinite(hi)
    ax.errorbar(
        gaps[has_ci],
        y[has_ci],
        xerr=[gaps[has_ci] - lo[has_ci], hi[has_ci] - gaps[has_ci]],
        fmt="o",
        color="C0",
        capsize=4,
        label="mean gap, 95% bootstrap interval",
    )
    if (~has_ci).any():
        ax.plot(gaps[~has_ci], y[~has_ci], "x", color="C3", label="n < 2: no interval")
    ax.axvline(0, color="k", lw=1)
    ax.set_yticks(y, [label for label, _ in items], fontsize=8)
    ax.set_xlabel("ISDA − CE last-10-epoch test error (percentage points; < 0: ISDA better)")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=8)
    ax.set_title("ISDA − CE gap per architecture", fontsize=11)
    return _save(fig, out_dir, "gap", "ISDA − CE gap")


def build_figures(runs: pd.DataFrame, curves: pd.DataFrame, out_dir: Path) -> list[Figure]:
    out_dir = Path(out_dir)
    figs = [curves_figure(curves, out_dir), lambda_figure(runs, out_dir), gap_figure(runs, out_dir)]
    return [f for f in figs if f is not None]
