"""The report's table model (:class:`Table` of :class:`Cell`) and how numbers become cell text.

Cell text is plain Unicode (``±``, ``†``, ``Δ``, ``λ0``); :mod:`bench.report.render` writes it as
Markdown, LaTeX or HTML. Conventions shared by every table:

- a cell of ours is ``mean ± std (n=k)`` of ``last10_test_error`` (percent, two decimals), with
  the sample standard deviation (n − 1) over seeds, and ``mean (n=1)`` for a single run;
- the runs a cell uses are :func:`group_of`'s, and every table and figure takes them from there: ``n``
  counts the *completed* runs with an error; runs in any other state (bench.rundir.state.RunState:
  pending, running, interrupted, diverged, failed …) are counted in the same cell ("n=2, 1 pending"),
  never averaged or drawn;
- ``†`` marks n < 3: no interval, test or probability of improvement is given (bench.results.stats);
- an outlier (:func:`bench.results.stats.outliers`) stays in its cell's mean and std, is counted in the
  cell ("1 outlier") and named, by run id, under the table;
- bold marks a winner where the data carry it (:data:`BOLD_RULE`, :func:`bold_lowest`);
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
from bench.report.citation import PaperValue
from bench.report.variants import fmt_value as fmt_value  # re-exported: tables format values from here
from bench.report.variants import off_recipe, setting_of
from bench.results import stats
from bench.rundir.state import RunState

METRIC = "last10_test_error"
DAGGER = "†"
SMALL_N_NOTE = (f"{DAGGER} n < {stats.SMALL_N}: no interval, test, probability of improvement or winner is given "
                f"with so few runs (the std is shown, but means little).")
NO_TEST_NOTE = f"Neither p nor P is given where a side has fewer than {stats.SMALL_N} runs (†)."
EXTENSION = "extension"
EXTENSION_NOTE = "extension: no counterpart in the paper's table (our addition; no paper number to compare)."
PRECISION_WORDS = {"bf16": "bf16 (bfloat16 autocast)", "fp32": "fp32 (full precision)"}
BOLD_RULE = (
    f"bold = the lowest error of ours among comparable cells of its row (of its column where the rows are "
    f"methods or settings): cells whose runs share the training data and budget (train_size, epochs, batch "
    f"size, processes, recipe), each with n ≥ {stats.SMALL_N} and no runs of it still to come or lost, and "
    f"lower than each of the others with Welch's p < {stats.ALPHA:g}; no bold where that does not hold"
)
OUTLIER_RULE = (
    f"an outlier is a completed run whose error lies more than {stats.OUTLIER_K:g} robust standard deviations "
    f"(1.4826 × the median absolute deviation) from its cell's median, and more than half that median and "
    f"{stats.OUTLIER_MIN_PP:g} percentage point away (cells of n ≥ {stats.SMALL_N}); it stays in the cell's "
    f"mean and std"
)


@dataclass
class Cell:
    text: str = ""
    bold: bool = False
    dagger: bool = False  # n < SMALL_N
    precision: str = ""  # of ours: "fp32", "bf16", "2 bf16, 1 fp32"; "" for any other cell
    outliers: tuple[str, ...] = ()  # of ours: each outlier run, named under the table


@dataclass
class Table:
    key: str
    title: str
    header: list[str]
    rows: list[list[Cell]]
    groups: list[tuple[str, int]] | None = None  # a spanning header row above ``header``
    notes: list[str] = field(default_factory=list)
    label_cols: int = 1  # leading text columns (left-aligned); the rest are numbers
    checks: list[PaperCheck] = field(default_factory=list)  # the paper's numbers beside ours, for the verdict
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


# --------------------------------------------------------------------------- a cell's runs


@dataclass
class Group:
    """The runs of one table cell: completed errors, and how many runs are not (yet) usable."""

    values: np.ndarray
    wall: np.ndarray
    not_done: dict[str, int]
    precisions: dict[str, int] = field(default_factory=dict)  # of the completed runs with a value
    run_ids: tuple[str, ...] = ()  # the runs of ``values``, in the same order
    setting: tuple = ()  # what comparable cells share (bench.report.variants.setting_of)
    networks: frozenset[tuple[str, str]] = frozenset()  # its runs' (dataset, arch) pairs

    @property
    def off_recipe(self) -> tuple[str, ...]:
        """How its runs trained otherwise than the paper's recipe (bench.report.variants.off_recipe)."""
        return off_recipe(self.networks, self.setting)

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

    @property
    def outliers(self) -> list[tuple[str, float]]:
        """(run id, error) of each outlier among the cell's values (bench.results.stats.outliers)."""
        flags = stats.outliers(self.values)
        return [(r, float(v)) for r, v, out in zip(self.run_ids, self.values, flags) if out]


def group_of(sub: pd.DataFrame, metric: str = METRIC) -> Group:
    """The runs a cell uses, out of ``sub`` (the cell's runs in every state): every table and figure
    takes a cell's values, n and counts from here."""
    status = sub["status"].astype(str)
    done = sub[(status == RunState.COMPLETED).to_numpy()]
    numbers = (pd.to_numeric(done[metric], errors="coerce").to_numpy(dtype=float) if metric in done
               else np.full(len(done), np.nan))
    finite = np.isfinite(numbers)
    usable, values = done[finite], numbers[finite]
    # A "completed" run without the metric (a malformed result) is not silently dropped either.
    no_value = len(done) - values.size
    tally = Counter(status.tolist())
    counts = {s.value: tally.get(s.value, 0) for s in RunState if s != RunState.COMPLETED}
    counts.update({k: v for k, v in tally.most_common() if k not in {s.value for s in RunState}})
    if no_value:
        counts["completed without result"] = no_value
    wall = stats.clean(pd.to_numeric(usable.get("wall_time_s", pd.Series(dtype=float)), errors="coerce"))
    prec = usable["precision"].tolist() if "precision" in usable else []
    precisions = Counter("unrecorded" if pd.isna(p) or str(p) in ("", "auto") else str(p) for p in prec)
    return Group(values=values, wall=wall, not_done={k: v for k, v in counts.items() if v},
                 precisions=dict(precisions), run_ids=tuple(str(r) for r in usable["run_id"].tolist()),
                 setting=setting_of(sub), networks=frozenset(zip(sub["dataset"].astype(str).tolist(),
                                                                 sub["arch"].astype(str).tolist())))


# --------------------------------------------------------------------------- cells


def ours_cell(g: Group | None, empty: str = "") -> Cell:
    if g is None or g.total == 0:
        return Cell(empty)
    outliers = g.outliers
    counts = {**g.not_done, **({"outlier" if len(outliers) == 1 else "outliers": len(outliers)} if outliers else {})}
    extra = "".join(f", {k} {s}" for s, k in counts.items())
    if g.n == 0:
        return Cell(f"– ({extra[2:]})")
    m = fmt(g.mean)
    body = f"{m} (n=1{extra})" if g.n == 1 else f"{m} ± {fmt(stats.sample_std(g.values))} (n={g.n}{extra})"
    median = fmt(float(np.median(g.values)))
    named = tuple(f"{r} ({fmt(v)}; its cell's median {median})" for r, v in outliers)
    return Cell(body, dagger=g.n < stats.SMALL_N, precision=g.precision, outliers=named)


def paper_cell(pv: PaperValue | None) -> Cell:
    if pv is None:
        return Cell("–")
    return Cell(fmt(pv.mean) if pv.std is None else f"{fmt(pv.mean)} ± {fmt(pv.std)}")


def paper_delta_cell(g: Group | None, pv: PaperValue | None) -> Cell:
    """The paper's value, and Δ = ours − paper when we have a mean to compare."""
    cell = paper_cell(pv)
    if g is not None and g.n and pv is not None:
        cell.text += f" (Δ {fmt(g.mean - pv.mean, signed=True)})"
    return cell


@dataclass(eq=False)
class PaperCheck:
    """One number of the paper beside a cell of ours, as :mod:`bench.report.verdict` judges it.
    ``baseline``: for a cell with ISDA, the check of the run without ISDA its gain is measured against."""

    experiment: str  # "CIFAR-10, ResNet-110"
    what: str  # the row or column the table gives it ("ISDA", "Cutout+ISDA", "Identity matrix")
    paper: PaperValue
    ours: Group
    table: str  # the report table's key
    baseline: PaperCheck | None = None


def check_of(table: str, experiment: str, what: str, g: Group | None, pv: PaperValue | None,
             baseline: PaperCheck | None = None) -> PaperCheck | None:
    """A check where the sweep has runs for a paper number (whatever their state), else None."""
    if g is None or g.total == 0 or pv is None:
        return None
    return PaperCheck(experiment, what, pv, g, table, baseline)


def bold_lowest(cells: list[Cell], groups: Sequence[Group | None]) -> None:
    """Bold the winner of each set of comparable cells among ``cells`` (:data:`BOLD_RULE`): cells of
    one setting, every one of which has n ≥ SMALL_N and no runs still to come or lost, where one cell's
    mean is lower than each other's with Welch's p < ALPHA (a claim that needs all of its tests to
    hold, so it needs no correction for their number)."""
    by_setting: dict[tuple, list[tuple[Cell, Group]]] = {}
    for cell, g in zip(cells, groups):
        if g is not None and g.total:
            by_setting.setdefault(g.setting, []).append((cell, g))
    for members in by_setting.values():
        if len(members) < 2 or any(g.n < stats.SMALL_N or g.not_done for _, g in members):
            continue
        cell, best = min(members, key=lambda cg: cg[1].mean)
        if all(stats.lower_supported(best.values, g.values) for _, g in members if g is not best):
            cell.bold = True


def gap_text_cell(treat: Group | None, control: Group | None) -> Cell:
    """Treatment − control: the gap of means, and with n ≥ SMALL_N on both sides Welch's p and the
    probability of improvement as the pairs of runs it counts (P=k/m: in k of the m pairs of a
    treatment run and a control run the treatment's error is lower, ties counting ½)."""
    if treat is None or control is None or treat.n == 0 or control.n == 0:
        return Cell("–")
    cmp = stats.compare(treat.values, control.values)
    gap = fmt(cmp.gap, signed=True)
    if cmp.small_n:
        return Cell(gap, dagger=True)
    won = cmp.p_improvement * cmp.pairs
    return Cell(f"{gap} ({fmt_p(cmp.p_value)}, P={won:g}/{cmp.pairs})")


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


def _outlier_note(table: Table) -> str | None:
    named = list(dict.fromkeys(o for row in table.rows for c in row for o in c.outliers))
    if not named:
        return None
    return f"Outlier{'s' if len(named) > 1 else ''}: {', '.join(named)}. Rule: {OUTLIER_RULE}."


def finish_notes(table: Table, notes: Iterable[str]) -> Table:
    """Put the table's sorted ``notes`` first, then its outliers, its precision note and the † footnote."""
    table.notes = sorted(notes) + table.notes
    outliers = _outlier_note(table)
    if outliers:
        table.notes.append(outliers)
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
