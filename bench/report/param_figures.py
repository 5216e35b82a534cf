"""Figures of test error against one swept number (the tables are in :mod:`bench.report.sensitivity`):

- ``lambda``: error against ISDA's λ0, on a symmetric-log axis that shows λ0 = 0 beside 0.1 … 10,
  with CE as a band (mean ± std), wherever an architecture ran several λ0;
- ``explicit``: explicit semantic augmentation's error and training cost against M (features drawn
  per sample, log axis), with ISDA, its closed-form limit, as a horizontal line and band.

Points are means over the runs the table's cell uses (bench.report.model.group_of: completed, with an
error), with ± one sample std as error bars where a point has at least ``stats.SMALL_N`` runs and as
open circles without a bar where it has fewer; the paper's numbers, where a reference CSV gives them,
are drawn as open squares at every value it gives, run or not.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.typing import ColorType

from bench.report import paper
from bench.report.citation import PaperValue
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
    suptitle,
)
from bench.report.model import METRIC, fmt_value, group_of
from bench.report.sensitivity import EXPLICIT_METHOD, LAMBDA_METHOD, SAMPLES, step_cost, swept_values
from bench.report.style import PAPER_COLOUR, Look, look
from bench.report.variants import filled, method_variants, pick_variant
from bench.results import stats

COST = "_step_cost"  # a run's training cost, as a column the cells' runs are read from
SMALL_N_KEY = "small n"
SMALL_N_LABEL = f"open marker: n < {stats.SMALL_N} runs, no std bar"


def _stats(runs: pd.DataFrame, metric: str = METRIC) -> tuple[float, float, int]:
    """Mean, sample std (0 for one run) and n of the runs a cell uses (group_of): the table's numbers."""
    g = group_of(runs, metric)
    if g.n == 0:
        return np.nan, np.nan, 0
    return g.mean, stats.sample_std(g.values) if g.n > 1 else 0.0, g.n


def _curve(runs: pd.DataFrame, key: str, metric: str = METRIC) -> pd.DataFrame:
    """Per value of ``key``: mean, std and n of ``metric`` over the runs a cell of that value uses."""
    xs = filled(runs, key)
    rows = []
    for x in sorted({float(v) for v in xs if v is not None}):
        mean, std, n = _stats(runs[xs.map(lambda v, x=x: v == x).astype(bool)], metric)
        if n:
            rows.append({"x": x, "mean": mean, "std": std, "n": n})
    return pd.DataFrame(rows, columns=["x", "mean", "std", "n"])


def _band(ax: plt.Axes, runs: pd.DataFrame, colour: ColorType, metric: str = METRIC) -> tuple[object, int] | None:
    """A horizontal line at the mean with a mean ± std band; (handle, n) or None without values.
    Dashed whatever the method's line style: a level to compare with, not a series."""
    mean, std, n = _stats(runs, metric)
    if not n:
        return None
    ax.axhspan(mean - std, mean + std, color=colour, alpha=0.15, lw=0)
    return ax.axhline(mean, color=colour, ls="--", lw=1.2), n


def _series(ax: plt.Axes, curve: pd.DataFrame, lk: Look) -> tuple[object, bool]:
    """The means joined by a line, ± std bars where a point has n ≥ SMALL_N runs; a point with fewer
    is an open marker without a bar (a std of one or two runs would look like a measured spread).
    Returns the series' handle and whether it has such a point."""
    small = curve["n"].to_numpy() < stats.SMALL_N
    yerr = curve["std"].to_numpy(dtype=float).copy()
    yerr[small] = np.nan
    handle = ax.errorbar(curve["x"], curve["mean"], yerr=yerr, ls=lk.linestyle, marker=lk.marker or "o", ms=4,
                         lw=1.4, capsize=3, color=lk.colour)
    if small.any():
        ax.plot(curve["x"][small], curve["mean"][small], "o", ms=6, mfc="white", mec=lk.colour, mew=1.4,
                zorder=3)
    return handle, bool(small.any())


def _paper_points(ax: plt.Axes, points: list[tuple[float, PaperValue]]) -> object | None:
    """The paper's numbers as open squares, at every value the paper gives."""
    if not points:
        return None
    return ax.plot([x for x, _ in points], [v.mean for _, v in points], "s", mfc="none", mec=PAPER_COLOUR, ms=7)[0]


def _looks(series: list[tuple[str, str]]) -> dict[str, Look]:
    """(label, method) of every series → its look; variants of one method get a marker each."""
    labels = list(dict.fromkeys(series))
    return {lb: look(m, [x for x, mx in labels if mx == m].index(lb)) for lb, m in labels}


def _small_n_handle() -> object:
    return plt.Line2D([], [], ls="none", marker="o", ms=6, mfc="white", mec="0.3", mew=1.4)


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
        sub = runs[(runs["dataset"] == ds) & (runs["arch"] == arch)]
        for variant in method_variants(sub[sub["method"].isin(lam_methods)], exclude=("lambda0",)):
            curve = _curve(variant.select(sub), "lambda0")
            if len(curve) > 1:
                series.append((ax, variant.label(), variant.method, curve))
    labels = list(dict.fromkeys(label for _, label, _, _ in series))
    looks = _looks([(label, method) for _, label, method, _ in series])
    handles: dict[str, object] = {}
    ns: dict[str, list[int]] = {}
    small_n = False
    for ax, label, _, curve in series:
        handle, small = _series(ax, curve, looks[label])
        handles.setdefault(label, handle)
        small_n |= small
        ns.setdefault(label, []).extend(int(n) for n in curve["n"])
    for ax, (ds, arch) in zip(axes, cells):
        sub = runs[(runs["dataset"] == ds) & (runs["arch"] == arch)]
        if (sub["method"] == "ce").any():
            band = _band(ax, pick_variant(sub, "ce", set()), look("ce").colour)
            if band:
                handles.setdefault("CE", band[0])
                ns.setdefault("CE", []).append(band[1])
        points = paper.optional_points("lambda_sensitivity", ds, arch, "lambda0")
        mark = _paper_points(ax, points)
        if mark is not None:
            handles.setdefault("paper", mark)
        # The axis spans the paper's values too, where they reach beyond the ones the sweep ran.
        xs = sorted({x for a, _, _, c in series if a is ax for x in c["x"]} | {x for x, _ in points})
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
    if small_n:
        handles[SMALL_N_KEY] = _small_n_handle()
    order = [lb for lb in ["CE", *labels, "paper", SMALL_N_KEY] if lb in handles]
    names = {"CE": "CE, mean ± std", "paper": "paper", SMALL_N_KEY: SMALL_N_LABEL}
    suptitle(fig, "Test error vs λ0 (mean ± std over seeds)")
    legend_below(fig, [handles[lb] for lb in order],
                 [_legend_label(lb, names, ns, band="CE") for lb in order], laid_out=True)
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
    runs = runs.assign(**{COST: cost.reindex(runs.index)})
    fig, axes = grid(2 * len(cells), ncols_max=2, width=4.8, height=3.3)
    per_cell = []
    for ds, arch in cells:
        sub = runs[(runs["dataset"] == ds) & (runs["arch"] == arch)]
        variants = [(v.label(), v.select(sub)) for v in method_variants(sub[sub["method"] == EXPLICIT_METHOD],
                                                                          exclude=(SAMPLES,))]
        isda = pick_variant(sub, LAMBDA_METHOD, set()) if (sub["method"] == LAMBDA_METHOD).any() else sub.iloc[:0]
        per_cell.append((ds, arch, variants, isda))
    labels = list(dict.fromkeys(label for *_, variants, _ in per_cell for label, _ in variants))
    looks = _looks([(label, EXPLICIT_METHOD) for label in labels])
    handles: dict[str, object] = {}
    ns: dict[str, list[int]] = {}
    small_n = False
    for i, (ds, arch, variants, isda) in enumerate(per_cell):
        for ax, is_error in ((axes[2 * i], True), (axes[2 * i + 1], False)):
            metric = METRIC if is_error else COST
            xs: set[float] = set()
            for label, exp in variants:
                curve = _curve(exp, SAMPLES, metric)
                if len(curve):
                    handle, small = _series(ax, curve, looks[label])
                    handles.setdefault(label, handle)
                    small_n |= small
                    xs.update(curve["x"])
                    if is_error:
                        ns.setdefault(label, []).extend(int(n) for n in curve["n"])
            band = _band(ax, isda, look(LAMBDA_METHOD).colour, metric) if len(isda) else None
            if band:
                handles.setdefault("ISDA", band[0])
                if is_error:
                    ns.setdefault("ISDA", []).append(band[1])
            if is_error:
                points = paper.optional_points("explicit", ds, arch, SAMPLES, method=EXPLICIT_METHOD)
                mark = _paper_points(ax, points)
                if mark is not None:
                    handles.setdefault("paper", mark)
                xs.update(x for x, _ in points)
            ticks = sorted(xs)
            if ticks:
                ax.set_xscale("log")
                ax.set_xlim(min(ticks) / 1.35, max(ticks) * 1.35)
                value_ticks(ax, ticks)
            if not is_error:
                ax.set_ylim(bottom=0)  # a cost is read as a ratio: from zero
            what = "test error" if is_error else "training cost"
            style_panel(ax, f"{panel_title(ds, arch)}: {what}", "M (features drawn per sample; log axis)",
                        "last-10-epoch test error (%)" if is_error else unit)
    if small_n:
        handles[SMALL_N_KEY] = _small_n_handle()
    order = [lb for lb in (*labels, "ISDA", "paper", SMALL_N_KEY) if lb in handles]
    names = {"ISDA": "ISDA (implicit, M → ∞): mean ± std", "paper": "paper (explicit)", SMALL_N_KEY: SMALL_N_LABEL}
    suptitle(fig, "Explicit semantic augmentation against M (mean ± std over seeds), and ISDA")
    legend_below(fig, [handles[lb] for lb in order],
                 [_legend_label(lb, names, ns, band="ISDA") for lb in order], laid_out=True)
    return fig


def explicit_figure(runs: pd.DataFrame, out_dir: Path) -> Figure | None:
    fig = draw_explicit(runs)
    return None if fig is None else save(fig, out_dir, "explicit", "Explicit augmentation vs M, and ISDA")
