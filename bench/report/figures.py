"""The report's figures (matplotlib, Agg backend: no display needed on a cluster node).

Each figure is written as PNG (for Markdown and the HTML page) and PDF (for LaTeX), atomically,
and only when the sweep has what it shows: learning curves whenever there are curves, the ISDA − CE
gap when both ran; the figures against λ0 and against M are in :mod:`bench.report.param_figures`.
Legends sit outside the plotting area, so they hide no data; a series keeps its colour in every panel.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: a report must render on a headless node
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import ticker  # noqa: E402

from bench.common.files import atomic_write_bytes  # noqa: E402
from bench.report import paper  # noqa: E402
from bench.report.experiments import experiments  # noqa: E402
from bench.report.model import METRIC, rows_of  # noqa: E402
from bench.report.style import MAX_SERIES, look  # noqa: E402
from bench.report.variants import method_variants, pick_variant  # noqa: E402
from bench.results import stats  # noqa: E402
from bench.rundir.state import RunState  # noqa: E402

DPI = 110


@dataclass(frozen=True)
class Figure:
    key: str
    title: str
    png: Path
    pdf: Path


def save(fig: plt.Figure, out_dir: Path, key: str, title: str) -> Figure:
    paths = []
    for ext in ("png", "pdf"):
        buf = io.BytesIO()
        # No creation date in the PDF: the same results give the same bytes (committed reports).
        meta = {"CreationDate": None} if ext == "pdf" else {}
        fig.savefig(buf, format=ext, dpi=DPI, bbox_inches="tight", metadata=meta)
        paths.append(atomic_write_bytes(out_dir / f"{key}.{ext}", buf.getvalue()))
    plt.close(fig)
    return Figure(key, title, paths[0], paths[1])


def grid(n: int, ncols_max: int = 3, width: float = 4.6, height: float = 3.4) -> tuple[plt.Figure, list[plt.Axes]]:
    ncols = min(ncols_max, 2 if n == 4 else n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def panels(df: pd.DataFrame) -> list[tuple[str, str]]:
    """(dataset, arch) pairs in the tables' order (:func:`bench.report.model.rows_of`)."""
    return rows_of(df)


def panel_title(ds: str, arch: str) -> str:
    return f"{paper.dataset_name(ds)} / {paper.arch_name(arch)}"


def n_text(ns: Sequence[int]) -> str:
    lo, hi = min(ns), max(ns)
    return f"n={lo}" if lo == hi else f"n={lo}–{hi}"


def legend_below(fig: plt.Figure, handles: list, labels: list[str]) -> None:
    """One legend for the whole figure, under its panels: it covers no curve."""
    fig.tight_layout()
    ncol = max(1, min(len(labels), 4 if max((len(s) for s in labels), default=0) < 28 else 2))
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=ncol, fontsize=8,
               frameon=False)


@dataclass(eq=False)
class Series:
    label: str
    method: str
    rows: pd.DataFrame  # its runs' curve rows


def split_series(series: list[Series], most: int = MAX_SERIES) -> list[list[Series]]:
    """Panels of at most ``most`` series: CE and ISDA (the references) in each, the other methods
    shared out in their order (losses, augmentations, ISDA's combinations) in near-equal parts."""
    if len(series) <= most:
        return [series]
    refs = [s for s in series if s.method in ("ce", "isda")]
    refs = refs if len(refs) <= 2 else []
    others = [s for s in series if s not in refs]
    parts = math.ceil(len(others) / (most - len(refs)))
    size = math.ceil(len(others) / parts)
    chunks = [others[i:i + size] for i in range(0, len(others), size)]
    return [[s for s in series if s in refs or s in chunk] for chunk in chunks]


def curve_panels(runs: pd.DataFrame, curves: pd.DataFrame) -> list[tuple[str, list[Series]]]:
    """(title, series) per panel: one per network and experiment, split when it has too many series."""
    out = []
    for ds, arch in panels(runs):
        sub = runs[(runs["dataset"] == ds) & (runs["arch"] == arch)]
        for exp in experiments(sub):
            series = [Series(v.label(), v.method, curves[curves["run_id"].isin(set(v.select(exp.runs)["run_id"]))])
                      for v in method_variants(exp.runs)]
            title = panel_title(ds, arch) + (f", {exp.name}" if exp.name else "")
            parts = split_series(series)
            out += [(title + (f" ({k} of {len(parts)})" if len(parts) > 1 else ""), part)
                    for k, part in enumerate(parts, 1)]
    return out


def draw_curves(runs: pd.DataFrame, curves: pd.DataFrame) -> plt.Figure | None:
    """Test error per epoch: per panel (dataset × arch, and experiment) one line per method variant
    of the runs table (the mean over seeds), with the min–max range over seeds shaded."""
    if curves.empty or not {"run_id", "epoch", "test_error"} <= set(curves.columns) or runs.empty:
        return None
    curves = curves.assign(test_error=pd.to_numeric(curves["test_error"], errors="coerce"))
    with_curves = runs[runs["run_id"].isin(set(curves["run_id"]))]
    cells = curve_panels(with_curves, curves)
    if not cells:
        return None
    every = [s for _, series in cells for s in series]
    method_of = {s.label: s.method for s in every}
    first = list(dict.fromkeys(s.label for s in every))
    labels = sorted(first, key=lambda lb: (paper.method_sort_key(method_of[lb]), first.index(lb)))
    # Variants of one method: its look, and a marker each (in the legend's order).
    looks = {lb: look(method_of[lb], [x for x in labels if method_of[x] == method_of[lb]].index(lb)) for lb in labels}
    ns: dict[str, list[int]] = {label: [] for label in labels}
    fig, axes = grid(len(cells))
    handles: dict[str, object] = {}
    for ax, (title, series) in zip(axes, cells):
        for s in series:
            n, lk = s.rows["run_id"].nunique(), looks[s.label]
            ns[s.label].append(n)
            by_epoch = s.rows.groupby("epoch")["test_error"]
            mean = by_epoch.mean()
            (line,) = ax.plot(mean.index + 1, mean.to_numpy(), lw=1.4, color=lk.colour, ls=lk.linestyle,
                              marker=lk.marker or None, ms=4, markevery=max(1, len(mean) // 8))
            handles.setdefault(s.label, line)
            if n > 1:
                ax.fill_between(mean.index + 1, by_epoch.min().to_numpy(), by_epoch.max().to_numpy(),
                                color=lk.colour, alpha=0.15, lw=0)
        # Log scale: the last epochs, where methods differ by a point or less, are not squeezed
        # under the first ones' tens of points.
        lows = [s.rows["test_error"].min() for s in series]
        scale = log_y(ax, min((float(v) for v in lows if pd.notna(v)), default=1.0))
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))  # epochs are whole numbers
        style_panel(ax, title, "epoch", f"test error (%, {scale})")
    fig.suptitle("Test error per epoch (mean over seeds; band: min–max over seeds)", fontsize=11)
    legend_below(fig, [handles[lb] for lb in labels], [f"{lb} ({n_text(ns[lb])})" for lb in labels])
    return fig


def curves_figure(runs: pd.DataFrame, curves: pd.DataFrame, out_dir: Path) -> Figure | None:
    fig = draw_curves(runs, curves)
    return None if fig is None else save(fig, out_dir, "curves", "Test error per epoch")


def log_y(ax: plt.Axes, lowest: float) -> str:
    """A log y axis labelled with plain numbers (1, 2, 3, 5, 10, 20 …; every integer step on a short
    range). ``lowest``: the smallest value drawn; a 0 % error (a small test set) gets a symmetric-log
    axis, linear below 1 %, so that it is drawn rather than dropped."""
    if lowest > 0:
        ax.set_yscale("log")
    else:
        ax.set_yscale("symlog", linthresh=1.0, linscale=0.5)
        ax.set_ylim(bottom=0)
    lo, hi = ax.get_ylim()
    subs = (1.0, 2.0, 3.0, 5.0) if hi / max(lo, 1.0) > 4 else tuple(float(k) for k in range(1, 10))
    ax.yaxis.set_major_locator(ticker.SymmetricalLogLocator(base=10, linthresh=1.0, subs=subs) if lowest <= 0
                               else ticker.LogLocator(base=10, subs=subs))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda y, _: f"{y:g}"))
    ax.yaxis.set_minor_locator(ticker.NullLocator())
    return "log scale" if lowest > 0 else "log scale above 1"


def style_panel(ax: plt.Axes, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def completed(runs: pd.DataFrame) -> pd.DataFrame:
    done = runs[runs["status"] == RunState.COMPLETED].copy()
    done[METRIC] = pd.to_numeric(done[METRIC], errors="coerce")
    return done[done[METRIC].notna()]


def draw_gap(runs: pd.DataFrame, reps: int = stats.DEFAULT_REPS, seed: int = stats.DEFAULT_SEED) -> plt.Figure | None:
    """ISDA − CE per dataset × architecture with a 95 % bootstrap interval of the difference."""
    done = completed(runs)
    items = []
    notes: set[str] = set()
    for ds, arch in panels(done):
        sub = done[(done["dataset"] == ds) & (done["arch"] == arch)]
        # Each experiment of a network (ImageNet's two recipes, two train sizes) has its own gap.
        for exp in experiments(sub):
            runs_r = exp.runs
            if not ((runs_r["method"] == "ce").any() and (runs_r["method"] == "isda").any()):
                continue
            isda = pick_variant(runs_r, "isda", notes)[METRIC].to_numpy()
            ce = pick_variant(runs_r, "ce", notes)[METRIC].to_numpy()
            cmp = stats.compare(isda, ce, reps=reps, seed=seed)
            which = f", {exp.name}" if exp.name else ""
            items.append((f"{panel_title(ds, arch)}{which}\n(n={cmp.treatment.n} ISDA, {cmp.control.n} CE)", cmp))
    if not items:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.75 * len(items)))
    y = np.arange(len(items))[::-1]
    gaps = np.array([c.gap for _, c in items])
    lo = np.array([c.gap_ci_low for _, c in items])
    hi = np.array([c.gap_ci_high for _, c in items])
    has_ci = np.isfinite(lo) & np.isfinite(hi)
    handles: list[Any] = []
    labels: list[str] = []
    if has_ci.any():
        handles.append(ax.errorbar(gaps[has_ci], y[has_ci], xerr=[gaps[has_ci] - lo[has_ci], hi[has_ci] - gaps[has_ci]],
                                   fmt="o", color="C0", capsize=4))
        labels.append("mean gap, 95% bootstrap interval")
    if (~has_ci).any():
        handles.append(ax.plot(gaps[~has_ci], y[~has_ci], "x", color="C3")[0])
        labels.append("n < 2: no interval")
    ax.axvline(0, color="k", lw=1)
    ax.set_yticks(y, [label for label, _ in items], fontsize=8)
    ax.set_ylim(-0.6, len(items) - 0.4)
    ax.set_xlabel("ISDA − CE last-10-epoch test error (percentage points; < 0: ISDA better)")
    ax.grid(alpha=0.3, axis="x")
    ax.set_title("ISDA − CE gap per architecture", fontsize=11)
    legend_below(fig, handles, labels)
    return fig


def gap_figure(runs: pd.DataFrame, out_dir: Path) -> Figure | None:
    fig = draw_gap(runs)
    return None if fig is None else save(fig, out_dir, "gap", "ISDA − CE gap")
