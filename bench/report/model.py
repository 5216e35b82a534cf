"""The report's table model (:class:`Table` of :class:`Cell`) and how numbers become cell text.

Cell text is plain Unicode (``±``, ``†``, ``Δ``, ``λ0``); :mod:`bench.report.render` writes it as
Markdown, LaTeX or HTML. Conventions shared by every table:

- a cell of ours is ``mean ± std (n=k)`` of ``last10_test_error`` (percent, two decimals), with
  the sample standard deviation (n − 1) over seeds, and ``mean (n=1)`` for a single run;
- ``n`` counts *completed* runs; runs in any other state (bench.rundir.state.RunState: pending, running,
  interrupted, diverged, failed …) are counted in the same cell ("n=2, 1 pending"), never averaged;
- ``†`` marks n < 3 (an interval or test on so few runs is not meaningful);
- bold marks the lowest mean error of ours in a row (or column, where the rows are methods);
- every cell of ours knows the precision its runs trained in (result.json ``precision``): a table
  whose cells share one says so in a note, a table that mixes them says it in each cell.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.report import paper
from bench.results import stats
from bench.rundir.state import RunState

METRIC = "last10_test_error"
DAGGER = "†"
SMALL_N_NOTE = f"{DAGGER} n < {stats.SMALL_N}: std, intervals and tests are not meaningful with so few runs."
EXTENSION = "extension"
EXTENSION_NOTE = "extension: no counterpart in the paper's table (our addition; no paper number to compare)."
PRECISION_WORDS = {"bf16": "bf16 (bfloat16 autocast)", "fp32": "fp32 (full precision)"}


@dataclass
class Cell:
    text: str = ""
    bold: bool = False
    dagger: bool = False  # n < SMALL_N
    precision: str = ""  # of ours: "fp32", "bf16", "2 bf16, 1 fp32"; "" for any other cell


@dataclass
class Table:
    key: str
    title: str
    header: list[str]
    rows: list[list[Cell]]
    groups: list[tuple[str, int]] | None = None  # a spanning header row above ``header``
    notes: list[str] = field(default_factory=list)
    label_cols: int = 1  # leading text columns (left-aligned); the rest are numbers
    # How many columns after the labels belong together, in order (an augmentation without and with
    # ISDA and their gap): a page too narrow for the table splits it between blocks. None: each
    # spanning group is a block, else each column with the paper's column that follows it.
    blocks: list[int] | None = None

    @property
    def has_dagger(self) -> bool:
        return any(c.dagger for row in self.rows for c in row)


# --------------------------------------------------------------------------- numbers → text


def fmt(x: float | None, digits: int = 2, signed: bool = False) -> str:
    """``x`` to ``digits`` decimals, with its sign if ``signed``; a number that rounds to zero has no
    sign ("0.00", never "-0.00" or "+0.00")."""
    if x is None or not math.isfinite(x):
        return "–"
    if round(x, digits) == 0:
        return f"{0.0:.{digits}f}"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def fmt_p(p: float) -> str:
    """A p-value with its name: "p=0.012", "p<0.001", "p=–" where there is none."""
    if not math.isfinite(p):
        return "p=–"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def fmt_value(v: object) -> str:
    """A run field's value as people write it: 0.001 (not 0.0010000000000000002), 1 (not 1.0), – for none."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (int, float, np.integer, np.floating)):
        return f"{float(v):.6g}"
    return str(v)


# --------------------------------------------------------------------------- a cell's runs


@dataclass
class Group:
    """The runs of one table cell: completed errors, and how many runs are not (yet) usable."""

    values: np.ndarray
    wall: np.ndarray
    not_done: dict[str, int]
    precisions: dict[str, int] = field(default_factory=dict)  # of the completed runs with a value

    @property
    def n(self) -> int:
        return int(self.values.size)

    @property
    def mean(self) -> float:
        return stats.mean(self.values)

    @property
    def total(self) -> int:
        return self.n + sum(self.not_done.values())

    @property
    def precision(self) -> str:
        if len(self.precisions) == 1:
            return next(iter(self.precisions))
        return ", ".join(f"{k} {p}" for p, k in sorted(self.precisions.items(), key=lambda pk: (-pk[1], pk[0])))


def group_of(sub: pd.DataFrame, metric: str = METRIC) -> Group:
    done = sub[sub["status"] == RunState.COMPLETED]
    numbers = pd.to_numeric(done[metric], errors="coerce") if metric in done else pd.Series(dtype=float)
    values = stats.clean(numbers)
    # A "completed" run without the metric (a malformed result) is not silently dropped either.
    no_value = len(done) - values.size
    counts = {s.value: int((sub["status"] == s).sum()) for s in RunState if s != RunState.COMPLETED}
    others = sub[~sub["status"].isin([s.value for s in RunState])]["status"].astype(str).value_counts()
    counts.update({str(k): int(v) for k, v in others.items()})
    if no_value:
        counts["without result"] = no_value
    wall = stats.clean(pd.to_numeric(done.get("wall_time_s", pd.Series(dtype=float)), errors="coerce"))
    has_value = done[np.isfinite(numbers.to_numpy(dtype=float))] if len(done) else done
    prec = has_value["precision"] if "precision" in has_value else pd.Series("", index=has_value.index)
    precisions = Counter("unrecorded" if pd.isna(p) or str(p) in ("", "auto") else str(p) for p in prec)
    return Group(values=values, wall=wall, not_done={k: v for k, v in counts.items() if v},
                 precisions=dict(precisions))


# --------------------------------------------------------------------------- cells


def ours_cell(g: Group | None, empty: str = "") -> Cell:
    if g is None or g.total == 0:
        return Cell(empty)
    extra = "".join(f", {k} {s}" for s, k in g.not_done.items())
    if g.n == 0:
        return Cell(f"– ({extra[2:]})")
    m = fmt(g.mean)
    body = f"{m} (n=1{extra})" if g.n == 1 else f"{m} ± {fmt(stats.sample_std(g.values))} (n={g.n}{extra})"
    return Cell(body, dagger=g.n < stats.SMALL_N, precision=g.precision)


def paper_cell(pv: dict | None) -> Cell:
    if pv is None:
        return Cell("–")
    return Cell(fmt(pv["mean"]) if pv.get("std") is None else f"{fmt(pv['mean'])} ± {fmt(pv['std'])}")


def paper_delta_cell(g: Group | None, pv: dict | None) -> Cell:
    """The paper's value, and Δ = ours − paper when we have a mean to compare."""
    cell = paper_cell(pv)
    if g is not None and g.n and pv is not None:
        cell.text += f" (Δ {fmt(g.mean - pv['mean'], signed=True)})"
    return cell


def bold_lowest(cells: list[Cell], groups: Sequence[Group | None]) -> None:
    means = [g.mean if g is not None and g.n else math.inf for g in groups]
    best = min(means, default=math.inf)
    if math.isfinite(best):
        for cell, m in zip(cells, means):
            if m == best:
                cell.bold = True


def gap_text_cell(treat: Group | None, control: Group | None) -> Cell:
    """Treatment − control: gap of means, Welch's p and P(treatment < control) in one cell."""
    if treat is None or control is None or treat.n == 0 or control.n == 0:
        return Cell("–")
    gap = fmt(treat.mean - control.mean, signed=True)
    p = fmt_p(stats.welch_p(treat.values, control.values))
    pi = fmt(stats.prob_improvement(treat.values, control.values))
    small = treat.n < stats.SMALL_N or control.n < stats.SMALL_N
    return Cell(f"{gap} ({p}, P={pi})", dagger=small)


# --------------------------------------------------------------------------- rows and notes


def rows_of(df: pd.DataFrame, datasets: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """The (dataset, arch) pairs of ``df`` in the paper's order: datasets as :data:`paper.DATASET_NAMES`
    lists them, then architectures as the paper's tables do (:func:`paper.arch_sort_key`). Every table
    and figure orders its networks by this rule."""
    sub = df if datasets is None else df[df["dataset"].isin(list(datasets))]
    pairs = {(str(d), str(a)) for d, a in zip(sub["dataset"], sub["arch"]) if pd.notna(d) and pd.notna(a)}
    return sorted(pairs, key=pair_sort_key())


def pair_sort_key() -> Callable[[tuple[str, str]], tuple]:
    """A sort key of (raw dataset, raw arch) pairs: :func:`rows_of`'s order."""
    datasets = {d: i for i, d in enumerate(paper.DATASET_NAMES)}
    archs = paper.arch_order()
    return lambda p: (datasets.get(p[0], len(datasets)), p[0], paper.arch_sort_key(p[1], archs))


def sources_note(sources: Iterable[str]) -> list[str]:
    # One note per source: the sources themselves contain semicolons.
    return [f"Paper source: {s}" for s in sorted({s for s in sources if s})]


def _precision_note(table: Table) -> str | None:
    cells = [c for row in table.rows for c in row if c.precision]
    kinds = sorted({c.precision for c in cells})
    if not kinds:
        return None
    if len(kinds) == 1 and "," not in kinds[0]:
        word = PRECISION_WORDS.get(kinds[0], kinds[0])
        return f"Precision: {word} in every cell of ours (each run's result.json)."
    # Mixed: each cell names its own, inside its "(n=...)".
    for cell in cells:
        if cell.text.endswith(")"):
            cell.text = f"{cell.text[:-1]}; {cell.precision})"
    used = sorted({k for c in cells for k in PRECISION_WORDS if k in c.precision})
    words = ", ".join(PRECISION_WORDS[k] for k in used)
    return (f"Precision differs between cells: each cell of ours names the precision its runs trained in "
            f"({words}; from each run's result.json).")


def finish_notes(table: Table, notes: Iterable[str]) -> Table:
    """Put the table's sorted ``notes`` first, then its precision note and the † footnote."""
    table.notes = sorted(notes) + table.notes
    precision = _precision_note(table)
    if precision:
        table.notes.append(precision)
    if any(c.text.endswith(f"({EXTENSION})") or c.text == EXTENSION for row in table.rows for c in row) or (
        table.groups and any(g.endswith(f"({EXTENSION})") for g, _ in table.groups)
    ):
        table.notes.append(EXTENSION_NOTE)
    if table.has_dagger:
        table.notes.append(SMALL_N_NOTE)
    return table


def extension_label(text: str) -> str:
    return f"{text} ({EXTENSION})"
