"""The report's figures (matplotlib, Agg backend: no display needed on a cluster node).

Each figure is written as PNG (for Markdown and the HTML page) and PDF (for LaTeX), atomically,
and only when the sweep has what it shows: learning curves whenever there are curves, the ISDA − CE
gap when both ran; the figures against λ0 and against M are in :mod:`bench.report.param_figures`.
Every figure draws the runs that its table cell uses (bench.report.model.group_of), with that cell's n.
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
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.transforms import Bbox, ScaledTranslation  # noqa: E402

from bench.common.files import atomic_write_bytes  # noqa: E402
from bench.report import paper  # noqa: E402
from bench.report.experiments import experiments  # noqa: E402
from bench.report.model import METRIC, group_of, rows_of  # noqa: E402
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
    # The panels lie inside the figure (grid's margins, or tight_layout's); the legend below it and a
    # title wider than one panel may not: the box to save is theirs together, measured once ("tight"
    # would measure every artist, for each file).
    canvas = fig.canvas
    assert isinstance(canvas, FigureCanvasAgg)  # matplotlib.use("Agg") above
    renderer = canvas.get_renderer()
    boxes = [fig.bbox, *(a.get_window_extent(renderer) for a in (*fig.legends, *fig.texts))]
    box = Bbox.union(boxes).transformed(fig.dpi_scale_trans.inverted()).padded(plt.rcParams["savefig.pad_inches"])
    for ext in ("png", "pdf"):
        buf = io.BytesIO()
        # No creation date in the PDF: the same results give the same bytes (committed reports).
        meta = {"CreationDate": None} if ext == "pdf" else {}
        # zlib's fastest level for the PNG: a third less time than its default level, for files 7 % larger.
        if ext == "png":
            fig.savefig(buf, format=ext, dpi=DPI, bbox_inches=box, metadata=meta, pil_kwargs={"compress_level": 1})
        else:
            fig.savefig(buf, format=ext, dpi=DPI, bbox_inches=box, metadata=meta)
        paths.append(atomic_write_bytes(out_dir / f"{key}.{ext}", buf.getvalue()))
    plt.close(fig)
    return Figure(key, title, paths[0], paths[1])


# A grid's margins, in inches: fixed, so that no layout pass measures every tick label (tight_layout
# takes most of the time a many-panel figure costs); the saved file is cropped to what is drawn.
_LEFT, _RIGHT, _BELOW, _ABOVE, _TITLE = 0.8, 0.2, 0.6, 0.4, 0.45
# Where a panel's axis labels sit, in inches from its axes: beyond tick labels of up to four characters.
_XLABEL_OFFSET, _YLABEL_OFFSET = 0.3, 0.5


def grid(n: int, ncols_max: int = 3, width: float = 4.6, height: float = 3.4) -> tuple[plt.Figure, list[plt.Axes]]:
    """``n`` panels of ``width`` × ``height`` inches each (labels included), at most ``ncols_max`` a row,
    with room above for the figure's title (:func:`suptitle`), laid out once and for all."""
    ncols = min(ncols_max, 2 if n == 4 else n)
    nrows = math.ceil(n / ncols)
    w, h = width * ncols, height * nrows + _TITLE
    fig, axes = plt.subplots(nrows, ncols, figsize=(w, h), squeeze=False)
    aw, ah = width - _LEFT - _RIGHT, height - _BELOW - _ABOVE
    fig.subplots_adjust(left=_LEFT / w, right=1 - _RIGHT / w, bottom=_BELOW / h, top=1 - (_ABOVE + _TITLE) / h,
                        wspace=(_LEFT + _RIGHT) / aw, hspace=(_BELOW + _ABOVE) / ah)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def suptitle(fig: plt.Figure, text: str) -> None:
    """The figure's title, in the room :func:`grid` leaves above its panels."""
    fig.suptitle(text, fontsize=11, y=1 - 0.5 * _TITLE / fig.get_figheight(), va="center")


def panels(df: pd.DataFrame) -> list[tuple[str, str]]:
    """(dataset, arch) pairs in the tables' order (:func:`bench.report.model.rows_of`)."""
    return rows_of(df)


def panel_title(ds: str, arch: str) -> str:
    return f"{paper.dataset_name(ds)} / {paper.arch_name(arch)}"


def n_text(ns: Sequence[int]) -> str:
    lo, hi = min(ns), max(ns)
    return f"n={lo}" if lo == hi else f"n={lo}–{hi}"


def legend_below(fig: plt.Figure, handles: list, labels: list[str], laid_out: bool = False) -> None:
    """One legend for the whole figure, under its panels: it covers no curve. A figure not ``laid_out``
    (by :func:`grid`) is laid out tight first."""
    if not laid_out:
        fig.tight_layout()
        # tight_layout leaves a placeholder layout engine behind, for which every save draws the
        # figure twice: the layout is done, so the figure needs none.
        fig.set_layout_engine(None)
    ncol = max(1, min(len(labels), 4 if max((len(s) for s in labels), default=0) < 28 else 2))
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=ncol, fontsize=8,
               frameon=False)


@dataclass(eq=False)
class Series:
    label: str
    method: str
    rows: pd.DataFrame  # its runs' curve rows, cut to the epochs every one of them has
    n: int  # the runs its table cell uses (group_of)
    lost: int  # of those, the runs without a readable curve


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


def _series(runs: pd.DataFrame, curves: pd.DataFrame) -> list[Series]:
    """One series per method variant of ``runs`` (one experiment of a network): the runs its table
    cell uses (group_of), their curves cut to the epochs every one of them has."""
    out = []
    for variant in method_variants(runs):
        group = group_of(variant.select(runs))
        rows = curves[curves["run_id"].isin(set(group.run_ids))]
        if group.n == 0 or rows.empty:
            continue
        drawn = rows["run_id"].nunique()
        # A mean over fewer runs from some epoch on would step there as a learning-rate decay does.
        shared = rows.groupby("epoch")["run_id"].nunique()
        rows = rows[rows["epoch"].isin(shared.index[shared == drawn])]
        out.append(Series(variant.label(), variant.method, rows, group.n, group.n - drawn))
    return out


def curve_panels(runs: pd.DataFrame, curves: pd.DataFrame) -> list[tuple[str, list[Series]]]:
    """(title, series) per panel: one per network and experiment, split when it has too many series."""
    out = []
    for ds, arch in panels(runs):
        sub = runs[(runs["dataset"] == ds) & (runs["arch"] == arch)]
        for exp in experiments(sub):
            series = _series(exp.runs, curves)
            if not series:
                continue
            title = panel_title(ds, arch) + (f", {exp.name}" if exp.name else "")
            parts = split_series(series)
            out += [(title + (f" ({k} of {len(parts)})" if len(parts) > 1 else ""), part)
                    for k, part in enumerate(parts, 1)]
    return out


def draw_curves(runs: pd.DataFrame, curves: pd.DataFrame) -> plt.Figure | None:
    """Test error per epoch: per panel (dataset × arch, and experiment) one line per method variant,
    the mean over the runs its table cell uses (completed, with an error), with their min–max range
    shaded."""
    if curves.empty or not {"run_id", "epoch", "test_error"} <= set(curves.columns) or runs.empty:
        return None
    # The columns drawn: every selection below copies what it keeps, and curves carry each run's config.
    curves = curves[["run_id", "epoch", "test_error"]].assign(
        test_error=pd.to_numeric(curves["test_error"], errors="coerce"))
    cells = curve_panels(runs, curves)
    if not cells:
        return None
    every = [s for _, series in cells for s in series]
    method_of = {s.label: s.method for s in every}
    first = list(dict.fromkeys(s.label for s in every))
    labels = sorted(first, key=lambda lb: (paper.method_sort_key(method_of[lb]), first.index(lb)))
    # Variants of one method: its look, and a marker each (in the legend's order).
    looks = {lb: look(method_of[lb], [x for x in labels if method_of[x] == method_of[lb]].index(lb)) for lb in labels}
    ns: dict[str, list[int]] = {label: [] for label in labels}
    without: dict[str, int] = dict.fromkeys(labels, 0)
    fig, axes = grid(len(cells))
    handles: dict[str, object] = {}
    counted: set[int] = set()  # a series split over several panels counts its runs once
    for ax, (title, series) in zip(axes, cells):
        for s in series:
            lk = looks[s.label]
            if id(s) not in counted:
                counted.add(id(s))
                ns[s.label].append(s.n)
                without[s.label] += s.lost
            by_epoch = s.rows.groupby("epoch")["test_error"]
            mean = by_epoch.mean()
            (line,) = ax.plot(mean.index + 1, mean.to_numpy(), lw=1.4, color=lk.colour, ls=lk.linestyle,
                              marker=lk.marker or None, ms=4, markevery=max(1, len(mean) // 8))
            handles.setdefault(s.label, line)
            if s.rows["run_id"].nunique() > 1:
                ax.fill_between(mean.index + 1, by_epoch.min().to_numpy(), by_epoch.max().to_numpy(),
                                color=lk.colour, alpha=0.15, lw=0)
        # Log scale: the last epochs, where methods differ by a point or less, are not squeezed
        # under the first ones' tens of points.
        lows = [s.rows["test_error"].min() for s in series]
        scale = log_y(ax, min((float(v) for v in lows if pd.notna(v)), default=1.0))
        # Epochs are whole numbers; five ticks at most, so that four-digit epochs (Shake-Shake's 1800) fit.
        ax.xaxis.set_major_locator(ticker.MaxNLocator(nbins=5, integer=True))
        style_panel(ax, title, "epoch", f"test error (%, {scale})")
    suptitle(fig, "Test error per epoch (mean over completed runs; band: min–max)")
    names = [f"{lb} ({n_text(ns[lb])}{f', {without[lb]} without a readable curve' if without[lb] else ''})"
             for lb in labels]
    legend_below(fig, [handles[lb] for lb in labels], names, laid_out=True)
    return fig


def curves_figure(runs: pd.DataFrame, curves: pd.DataFrame, out_dir: Path) -> Figure | None:
    fig = draw_curves(runs, curves)
    return None if fig is None else save(fig, out_dir, "curves", "Test error per epoch")


def log_y(ax: plt.Axes, lowest: float) -> str:
    """A log y axis labelled with plain numbers (1, 2, 5, 10, 20, 50 …; 2, 3, 5 within a decade; every
    integer step on a short range). ``lowest``: the smallest value drawn; a 0 % error (a small test set)
    gets a symmetric-log axis, linear below 1 %, so that it is drawn rather than dropped."""
    if lowest > 0:
        ax.set_yscale("log")
    else:
        ax.set_yscale("symlog", linthresh=1.0, linscale=0.5)
        ax.set_ylim(bottom=0)
    lo, hi = ax.get_ylim()
    span = hi / max(lo, 1.0)  # a few ticks a decade: more where the axis spans less than a decade
    subs = (1.0, 2.0, 5.0) if span > 10 else (1.0, 2.0, 3.0, 5.0) if span > 4 else tuple(float(k) for k in range(1, 10))
    ax.yaxis.set_major_locator(ticker.SymmetricalLogLocator(base=10, linthresh=1.0, subs=subs) if lowest <= 0
                               else ticker.LogLocator(base=10, subs=subs))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda y, _: f"{y:g}"))
    ax.yaxis.set_minor_locator(ticker.NullLocator())
    return "log scale" if lowest > 0 else "log scale above 1"


def style_panel(ax: plt.Axes, title: str, xlabel: str, ylabel: str) -> None:
    """A panel of a :func:`grid`: its title and axis labels at fixed distances from the axes, inside
    the grid's margins (placed by default, matplotlib measures every tick label of every panel again
    at each save to place them)."""
    ax.set_title(title, fontsize=10, y=1.0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    inches = ax.figure.dpi_scale_trans
    ax.xaxis.set_label_coords(0.5, 0.0, transform=ax.transAxes + ScaledTranslation(0.0, -_XLABEL_OFFSET, inches))
    ax.yaxis.set_label_coords(0.0, 0.5, transform=ax.transAxes + ScaledTranslation(-_YLABEL_OFFSET, 0.0, inches))
    ax.grid(alpha=0.3)


def completed(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs that cells use (bench.report.model.group_of's population), of every cell at once."""
    done = runs[runs["status"] == RunState.COMPLETED].copy()
    done[METRIC] = pd.to_numeric(done[METRIC], errors="coerce")
    return done[np.isfinite(done[METRIC].to_numpy(dtype=float))]


def _gap_items(runs: pd.DataFrame) -> list[tuple[str, stats.Comparison, bool]]:
    """(label, ISDA − CE, has an outlier) per dataset × architecture × recipe where both have runs a cell uses."""
    items = []
    notes: set[str] = set()
    for ds, arch in panels(completed(runs)):
        sub = runs[(runs["dataset"] == ds) & (runs["arch"] == arch)]
        # Each experiment of a network (ImageNet's two recipes, two train sizes) has its own gap.
        for exp in experiments(sub):
            runs_r = exp.runs
            if not ((runs_r["method"] == "ce").any() and (runs_r["method"] == "isda").any()):
                continue
            isda, ce = (group_of(pick_variant(runs_r, m, notes)) for m in ("isda", "ce"))
            if isda.n == 0 or ce.n == 0:
                continue
            flagged = len(isda.outliers) + len(ce.outliers)
            which = f", {exp.name}" if exp.name else ""
            more = f"; {flagged} outlier{'s' if flagged > 1 else ''}" if flagged else ""
            label = f"{panel_title(ds, arch)}{which}\n(n={isda.n} ISDA, {ce.n} CE{more})"
            items.append((label, stats.compare(isda.values, ce.values), bool(flagged)))
    return items


def draw_gap(runs: pd.DataFrame) -> plt.Figure | None:
    """ISDA − CE per dataset × architecture with Welch's 95 % interval of the difference where both
    sides have n ≥ SMALL_N (the interval excludes 0 exactly where the table's Welch p < 0.05)."""
    items = _gap_items(runs)
    if not items:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.75 * len(items)))
    y = np.arange(len(items))[::-1]
    gaps = np.array([c.gap for _, c, _ in items])
    lo = np.array([c.gap_ci_low for _, c, _ in items])
    hi = np.array([c.gap_ci_high for _, c, _ in items])
    has_ci = np.array([not c.small_n for _, c, _ in items]) & np.isfinite(lo) & np.isfinite(hi)
    handles: list[Any] = []
    labels: list[str] = []
    if has_ci.any():
        handles.append(ax.errorbar(gaps[has_ci], y[has_ci], xerr=[gaps[has_ci] - lo[has_ci], hi[has_ci] - gaps[has_ci]],
                                   fmt="o", color="C0", capsize=4))
        labels.append("mean gap, Welch's 95% interval")
    if (~has_ci).any():
        handles.append(ax.plot(gaps[~has_ci], y[~has_ci], "x", color="C3")[0])
        labels.append(f"n < {stats.SMALL_N} on a side: no interval")
    ax.axvline(0, color="k", lw=1)
    ax.set_yticks(y, [label for label, *_ in items], fontsize=8)
    ax.set_ylim(-0.6, len(items) - 0.4)
    flagged = np.array([f for *_, f in items])
    if flagged.any() and not flagged.all():
        _axis_of_the_others(ax, y, np.where(has_ci, lo, gaps), np.where(has_ci, hi, gaps), gaps, flagged)
    ax.set_xlabel("ISDA − CE last-10-epoch test error (percentage points; < 0: ISDA better)")
    ax.grid(alpha=0.3, axis="x")
    ax.set_title("ISDA − CE gap per architecture", fontsize=11)
    legend_below(fig, handles, labels)
    return fig


def _axis_of_the_others(ax: plt.Axes, y: np.ndarray, lo: np.ndarray, hi: np.ndarray, gaps: np.ndarray,
                        flagged: np.ndarray) -> None:
    """The x axis spans the items without an outlier (and 0); a flagged item's interval or point beyond
    it is cut at the edge, where an arrow gives the value it reaches."""
    ends = np.concatenate([lo[~flagged], hi[~flagged], [0.0]])
    span = float(np.ptp(ends)) or 1.0
    left, right = float(ends.min()) - 0.3 * span, float(ends.max()) + 0.3 * span
    ax.set_xlim(left, right)
    for yi, a, g, b in zip(y[flagged], lo[flagged], gaps[flagged], hi[flagged]):
        if a < left:
            ax.annotate(f"◀ {a:+.1f}" + (f" (mean {g:+.1f})" if g < left else ""), (left, yi), xytext=(2, 5),
                        textcoords="offset points", fontsize=7, ha="left", color="C3")
        if b > right:
            ax.annotate((f"(mean {g:+.1f}) " if g > right else "") + f"{b:+.1f} ▶", (right, yi), xytext=(-2, 5),
                        textcoords="offset points", fontsize=7, ha="right", color="C3")


def gap_figure(runs: pd.DataFrame, out_dir: Path) -> Figure | None:
    fig = draw_gap(runs)
    return None if fig is None else save(fig, out_dir, "gap", "ISDA − CE gap")
