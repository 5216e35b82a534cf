"""Figures of test error against one swept number (the tables are in :mod:`bench.report.sensitivity`):

- ``lambda``: error against ISDA's λ0, on a symmetric-log axis that shows λ0 = 0 beside 0.1 … 10,
  with CE as a band (mean ± std), wherever an architecture ran several λ0;
- ``explicit``: explicit semantic augmentation's error and training cost against M (features drawn
  per sample, log axis), with ISDA, its closed-form limit, as a horizontal line and band.

Points are means over seeds, with ± one sample std as error bars; the paper's numbers, where a
reference CSV gives them, are drawn as open markers.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.typing import ColorType

from bench.report import paper
from bench.report.figures import (
    Figure,
    completed,
    grid,
    legend_below,
    n_text,
    panel_title,
    panels,
    save,
    style_panel,
)
from bench.report.model import METRIC, fmt_value
from bench.report.sensitivity import EXPLICIT_METHOD, LAMBDA_METHOD, SAMPLES, step_cost, swept_values
from bench.report.style import PAPER_COLOUR, Look, look
from bench.report.variants import filled, method_variants, pick_variant


def _mean_std(values: pd.Series) -> tuple[float, float, int]:
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return np.nan, np.nan, 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size)


def _curve(runs: pd.DataFrame, key: str, values: pd.Series) -> pd.DataFrame:
    """Per value of ``key``: mean, std and n of ``values`` (indexed like ``runs``)."""
    xs = filled(runs, key)
    rows = []
    for x in sorted({float(v) for v in xs if v is not None}):
        mean, std, n = _mean_std(values[xs.map(lambda v, x=x: v == x).astype(bool)])
        if n:
            rows.append({"x": x, "mean": mean, "std": std, "n": n})
    return pd.DataFrame(rows, columns=["x", "mean", "std", "n"])


def _band(ax: plt.Axes, values: pd.Series, colour: ColorType) -> tuple[object, int] | None:
    """A horizontal line at the mean with a mean ± std band; (handle, n) or None without values.
    Dashed whatever the method's line style: a level to compare with, not a series."""
    mean, std, n = _mean_std(values)
    if not n:
        return None
    ax.axhspan(mean - std, mean + std, color=colour, alpha=0.15, lw=0)
    return ax.axhline(mean, color=colour, ls="--", lw=1.2), n


def _series(ax: plt.Axes, curve: pd.DataFrame, lk: Look) -> object:
    return ax.errorbar(curve["x"], curve["mean"], yerr=curve["std"], ls=lk.linestyle, marker=lk.marker or "o",
                       ms=4, lw=1.4, capsize=3, color=lk.colour)


def _paper_points(ax: plt.Axes, xs: list[float], ys: list[float | None]) -> object | None:
    pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
    if not pts:
        return None
    return ax.plot(*zip(*pts), "s", mfc="none", mec=PAPER_COLOUR, ms=7)[0]


def _looks(series: list[tuple[str, str]]) -> dict[str, Look]:
    """(label, method) of every series → its look; variants of one method get a marker each."""
    labels = list(dict.fromkeys(series))
    return {lb: look(m, [x for x, mx in labels if mx == m].index(lb)) for lb, m in labels}


def _legend_label(label: str, names: dict[str, str], ns: dict[str, list[int]], band: str) -> str:
    if label not in ns:
        return names.get(label, label)
    return f"{names.get(label, label)} ({n_text(ns[label])} {'runs' if label == band else 'per point'})"


def value_ticks(ax: plt.Axes, xs: list[float], min_px: float = 24.0) -> None:
    """A tick at every swept value; labels only where they do not run into their left neighbour
    (the others keep a short unlabelled tick)."""
    ax.figure.canvas.draw()  # the axis' size and scale, for pixel distances
    labelled, last = [], -np.inf
    for x in sorted(xs):
        px = ax.transData.transform((x, 0))[0]
        if px - last >= min_px:
            labelled.append(x)
            last = px
    ax.set_xticks(labelled, [fmt_value(x) for x in labelled])
    ax.set_xticks([x for x in xs if x not in labelled], minor=True)
    ax.xaxis.set_minor_formatter(plt.NullFormatter())


def draw_lambda(runs: pd.DataFrame) -> plt.Figure | None:
    """Last-10-epoch test error against λ0, per architecture that ran several λ0 values."""
    done = completed(runs)
    lam_methods = [m for m in done["method"].dropna().unique() if swept_values(done, str(m), "lambda0")]
    cells = [p for p in panels(done) if any((p[1], p[0]) in swept_values(done, str(m), "lambda0")
                                            for m in lam_methods)]
    if not cells:
        return None
    fig, axes = grid(len(cells))
    series: list[tuple[plt.Axes, str, str, pd.DataFrame]] = []
    for ax, (ds, arch) in zip(axes, cells):
        sub = done[(done["dataset"] == ds) & (done["arch"] == arch)]
        for variant in method_variants(sub[sub["method"].isin(lam_methods)], exclude=("lambda0",)):
            curve = _curve(variant.select(sub), "lambda0", variant.select(sub)[METRIC])
            if len(curve) > 1:
                series.append((ax, variant.label(), variant.method, curve))
    labels = list(dict.fromkeys(label for _, label, _, _ in series))
    looks = _looks([(label, method) for _, label, method, _ in series])
    ce = paper.method_name("ce")
    handles: dict[str, object] = {}
    ns: dict[str, list[int]] = {}
    for ax, label, _, curve in series:
        handles.setdefault(label, _series(ax, curve, looks[label]))
        ns.setdefault(label, []).extend(int(n) for n in curve["n"])
    for ax, (ds, arch) in zip(axes, cells):
        sub = done[(done["dataset"] == ds) & (done["arch"] == arch)]
        if (sub["method"] == "ce").any():
            band = _band(ax, pick_variant(sub, "ce", set())[METRIC], look("ce").colour)
            if band:
                handles.setdefault(ce, band[0])
                ns.setdefault(ce, []).append(band[1])
        xs = sorted({x for a, _, _, c in series if a is ax for x in c["x"]})
        pts = [paper.optional_value("lambda_sensitivity", ds, arch, lambda0=x) for x in xs]
        mark = _paper_points(ax, xs, [p["mean"] if p else None for p in pts])
        if mark is not None:
            handles.setdefault("paper", mark)
        positive = [x for x in xs if x > 0]
        if len(positive) < len(xs):
            # Linear up to the smallest positive λ0, logarithmic above: λ0 = 0 gets its own place.
            thresh = min(positive) if positive else 1.0
            ax.set_xscale("symlog", linthresh=thresh, linscale=0.6)
            ax.set_xlim(-0.4 * thresh, max(xs) * 1.35)
            axis = "λ0 (ISDA strength; log axis, linear below the smallest λ0 > 0)"
        else:
            axis = "λ0 (ISDA strength; log axis)"
            ax.set_xscale("log")
            ax.set_xlim(min(xs) / 1.35, max(xs) * 1.35)
        value_ticks(ax, xs)
        style_panel(ax, panel_title(ds, arch), axis, "last-10-epoch test error (%)")
    order = [lb for lb in [ce, *labels, "paper"] if lb in handles]
    names = {ce: f"{ce}, mean ± std", "paper": "paper"}
    fig.suptitle("Test error vs λ0 (mean ± std over seeds)", fontsize=11)
    legend_below(fig, [handles[lb] for lb in order],
                 [_legend_label(lb, names, ns, band=ce) for lb in order])
    return fig


def lambda_figure(runs: pd.DataFrame, out_dir: Path) -> Figure | None:
    fig = draw_lambda(runs)
    return None if fig is None else save(fig, out_dir, "lambda", "Test error vs λ0")


def draw_explicit(runs: pd.DataFrame) -> plt.Figure | None:
    """Per architecture that ran the explicit method: error (left) and training cost (right) against M."""
    done = completed(runs)
    explicit = done[done["method"] == EXPLICIT_METHOD]
    if explicit.empty or SAMPLES not in explicit:
        return None
    cells = panels(explicit)
    cost, unit = step_cost(done[done["method"].isin([EXPLICIT_METHOD, LAMBDA_METHOD])])
    fig, axes = grid(2 * len(cells), ncols_max=2, width=4.8, height=3.3)
    per_cell = []
    for ds, arch in cells:
        sub = done[(done["dataset"] == ds) & (done["arch"] == arch)]
        variants = [(v.label(), v.select(sub)) for v in method_variants(sub[sub["method"] == EXPLICIT_METHOD],
                                                                          exclude=(SAMPLES,))]
        # A table's ISDA row is the implicit limit: the one variant pick_variant compares.
        isda = pick_variant(sub, LAMBDA_METHOD, set()) if (sub["method"] == LAMBDA_METHOD).any() else sub.iloc[:0]
        per_cell.append((ds, arch, variants, isda))
    labels = list(dict.fromkeys(label for *_, variants, _ in per_cell for label, _ in variants))
    looks = _looks([(label, EXPLICIT_METHOD) for label in labels])
    isda_name = paper.method_name(LAMBDA_METHOD)
    handles: dict[str, object] = {}
    ns: dict[str, list[int]] = {}
    for i, (ds, arch, variants, isda) in enumerate(per_cell):
        for ax, is_error in ((axes[2 * i], True), (axes[2 * i + 1], False)):
            def value(df: pd.DataFrame, is_error: bool = is_error) -> pd.Series:
                return df[METRIC] if is_error else cost.reindex(df.index)

            xs: set[float] = set()
            for label, exp in variants:
                curve = _curve(exp, SAMPLES, value(exp))
                if len(curve):
                    handles.setdefault(label, _series(ax, curve, looks[label]))
                    xs.update(curve["x"])
                    if is_error:
                        ns.setdefault(label, []).extend(int(n) for n in curve["n"])
            band = _band(ax, value(isda), look(LAMBDA_METHOD).colour) if len(isda) else None
            if band:
                handles.setdefault(isda_name, band[0])
                if is_error:
                    ns.setdefault(isda_name, []).append(band[1])
            ticks = sorted(xs)
            if is_error:
                pts = [paper.optional_value("explicit", ds, arch, method=EXPLICIT_METHOD, **{SAMPLES: x})
                       for x in ticks]
                mark = _paper_points(ax, ticks, [p["mean"] if p else None for p in pts])
                if mark is not None:
                    handles.setdefault("paper", mark)
            if ticks:
                ax.set_xscale("log")
                ax.set_xlim(min(ticks) / 1.35, max(ticks) * 1.35)
                value_ticks(ax, ticks)
            if not is_error:
                ax.set_ylim(bottom=0)  # a cost is read as a ratio: from zero
            what = "test error" if is_error else "training cost"
            style_panel(ax, f"{panel_title(ds, arch)}: {what}", "M (features drawn per sample; log axis)",
                        "last-10-epoch test error (%)" if is_error else unit)
    order = [lb for lb in (*labels, isda_name, "paper") if lb in handles]
    names = {isda_name: f"{isda_name} (implicit, M → ∞): mean ± std", "paper": "paper (explicit)"}
    fig.suptitle("Explicit semantic augmentation against M (mean ± std over seeds), and ISDA", fontsize=11)
    legend_below(fig, [handles[lb] for lb in order],
                 [_legend_label(lb, names, ns, band=isda_name) for lb in order])
    return fig


def explicit_figure(runs: pd.DataFrame, out_dir: Path) -> Figure | None:
    fig = draw_explicit(runs)
    return None if fig is None else save(fig, out_dir, "explicit", "Explicit augmentation vs M, and ISDA")
