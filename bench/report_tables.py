"""The report's tables, built once as data (:class:`Table`); :mod:`bench.report_render` writes
them as Markdown, LaTeX or HTML. Cell text is plain Unicode (``±``, ``†``, ``Δ``, ``λ0``).

Conventions shared by every table:

- a cell of ours is ``mean ± std (n=k)`` of ``last10_test_error`` (percent, two decimals), with
  the sample standard deviation (n − 1) over seeds, and ``mean (n=1)`` for a single run;
- ``n`` counts *completed* runs; runs that are missing, running, diverged or failed are counted
  in the same cell ("n=2, 1 missing"), never averaged;
- ``†`` marks n < 3 (an interval or test on so few runs is not meaningful);
- bold marks the lowest mean error of ours in a row (or per dataset in the main table).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench import paper, stats
from bench.config import EXPERIMENT_FIELDS
from bench.results import STATUSES

METRIC = "last10_test_error"
DAGGER = "†"
SMALL_N_NOTE = f"{DAGGER} n < {stats.SMALL_N}: std, intervals and tests are not meaningful with so few runs."
# Parameters that distinguish variants of one method inside a sweep (a λ0 sweep, say): every field
# of the experiment but the row's (dataset, arch), the column's method and the seed. Precision is
# left out: result.json holds the one the device chose, a missing run's config "auto".
VARIANT_KEYS: tuple[str, ...] = tuple(
    k for k in EXPERIMENT_FIELDS if k not in ("dataset", "arch", "method", "seed", "precision"))
_VARIANT_LABELS = {"lambda0": "λ0", "focal_gamma": "γ", "cov_mode": "cov"}
CIFAR = ("cifar10", "cifar100")
BASELINE_METHODS = ("ce", "focal", "cutout", "autoaugment", "isda", "isda+cutout", "isda+autoaugment")
AUGMENT_PAIRS = (
    ("cutout", "isda+cutout"),
    ("autoaugment", "isda+autoaugment"),
    ("randaugment", "isda+randaugment"),
)
TOP5_COLUMNS = (
    "last10_top5_test_error",
    "last10_test_top5_error",
    "last10_top5_error",
    "final_top5_test_error",
    "final_top5_error",
    "top5_test_error",
    "top5_error",
    "top5",
)


# --------------------------------------------------------------------------- the table model


@dataclass
class Cell:
    text: str = ""
    bold: bool = False
    dagger: bool = False  # n < SMALL_N


@dataclass
class Table:
    key: str
    title: str
    header: list[str]
    rows: list[list[Cell]]
    groups: list[tuple[str, int]] | None = None  # a spanning header row above ``header``
    notes: list[str] = field(default_factory=list)
    label_cols: int = 1  # leading text columns (left-aligned); the rest are numbers

    @property
    def has_dagger(self) -> bool:
        return any(c.dagger for row in self.rows for c in row)


# --------------------------------------------------------------------------- numbers → text


def fmt(x: float | None, digits: int = 2, signed: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def fmt_p(p: float) -> str:
    if not math.isfinite(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


@dataclass
class Group:
    """The runs of one table cell: completed errors, and how many runs are not (yet) usable."""

    values: np.ndarray
    wall: np.ndarray
    not_done: dict[str, int]

    @property
    def n(self) -> int:
        return int(self.values.size)

    @property
    def mean(self) -> float:
        return stats.mean(self.values)

    @property
    def total(self) -> int:
        return self.n + sum(self.not_done.values())


def group_of(sub: pd.DataFrame, metric: str = METRIC) -> Group:
    done = sub[sub["status"] == "completed"]
    values = stats.clean(pd.to_numeric(done[metric], errors="coerce")) if metric in done else np.array([])
    # A "completed" run without the metric (a malformed result) is not silently dropped either.
    no_value = len(done) - values.size
    counts = {s: int((sub["status"] == s).sum()) for s in STATUSES if s != "completed"}
    others = sub[~sub["status"].isin(STATUSES)]["status"].astype(str).value_counts()
    counts.update({str(k): int(v) for k, v in others.items()})
    if no_value:
        counts["without result"] = no_value
    wall = stats.clean(pd.to_numeric(done.get("wall_time_s", pd.Series(dtype=float)), errors="coerce"))
    return Group(values=values, wall=wall, not_done={k: v for k, v in counts.items() if v})


def ours_cell(g: Group | None, empty: str = "") -> Cell:
    if g is None or g.total == 0:
        return Cell(empty)
    extra = "".join(f", {k} {s}" for s, k in g.not_done.items())
    if g.n == 0:
        return Cell(f"– ({extra[2:]})")
    m = fmt(g.mean)
    body = f"{m} (n=1{extra})" if g.n == 1 else f"{m} ± {fmt(stats.sample_std(g.values))} (n={g.n}{extra})"
    return Cell(body, dagger=g.n < stats.SMALL_N)


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


def bold_lowest(cells: list[Cell], groups: list[Group | None]) -> None:
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
    return Cell(f"{gap} (p={p}, P={pi})", dagger=small)


# --------------------------------------------------------------------------- choosing runs


def _norm(v: object) -> object:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


def varying_keys(sub: pd.DataFrame) -> list[str]:
    """The variant parameters that take more than one value among the runs of one (dataset, arch).

    Values that differ only between architectures (each recipe's epochs and lr) make no variants.
    """
    keys = []
    for k in VARIANT_KEYS:
        if k in sub.columns and any(len({_norm(v) for v in grp[k]}) > 1
                                    for _, grp in sub.groupby(["dataset", "arch"], dropna=False)):
            keys.append(k)
    return keys


def _mask(df: pd.DataFrame, key: str, value: object) -> pd.Series:
    return df[key].isna() if value is None else df[key] == value


@dataclass(frozen=True)
class Variant:
    method: str
    params: tuple[tuple[str, object], ...] = ()

    def label(self, main_table: bool = False) -> str:
        name = paper.method_name(self.method, main_table=main_table)
        if not self.params:
            return name
        inner = ", ".join(f"{_VARIANT_LABELS.get(k, k)}={'–' if v is None else v}" for k, v in self.params)
        return f"{name} ({inner})"

    def select(self, df: pd.DataFrame) -> pd.DataFrame:
        m = df["method"] == self.method
        for k, v in self.params:
            m &= _mask(df, k, v)
        return df[m]


def method_variants(df: pd.DataFrame) -> list[Variant]:
    """One variant per method, or one per distinct value of a parameter that varies within it."""
    out: list[Variant] = []
    for method in sorted(df["method"].dropna().unique(), key=paper.method_sort_key):
        sub = df[df["method"] == method]
        keys = varying_keys(sub)
        if not keys:
            out.append(Variant(str(method)))
            continue
        combos = sorted(
            {tuple(_norm(r[k]) for k in keys) for _, r in sub.iterrows()}, key=lambda t: [str(x) for x in t]
        )
        out.extend(Variant(str(method), tuple(zip(keys, combo))) for combo in combos)
    return out


def pick_variant(sub: pd.DataFrame, method: str, notes: set[str]) -> pd.DataFrame:
    """The runs of ``method`` that a paper-style table compares: when the sweep holds several
    variants (e.g. several λ0), the one with the most completed runs, ties to λ0 nearest 0.5
    (the paper's CIFAR value). The choice is written into the table's notes."""
    runs = sub[sub["method"] == method]
    keys = varying_keys(runs)
    if not keys:
        return runs
    best_key, best = None, None
    for _, grp in runs.groupby([runs[k].astype(str) for k in keys], sort=True):
        done = int((grp["status"] == "completed").sum())
        lam = pd.to_numeric(grp["lambda0"], errors="coerce").iloc[0] if "lambda0" in grp else math.nan
        key = (-done, abs(lam - 0.5) if math.isfinite(lam) else math.inf)
        if best_key is None or key < best_key:
            best_key, best = key, grp
    assert best is not None
    chosen = ", ".join(f"{_VARIANT_LABELS.get(k, k)}={_norm(best[k].iloc[0])}" for k in keys)
    notes.add(
        f"{paper.method_name(method)} uses the runs with {chosen} "
        "(the sweep has several; the one with most completed runs)."
    )
    return best


def _rows_of(df: pd.DataFrame, datasets: Iterable[str] | None = None) -> list[tuple[str, str]]:
    sub = df if datasets is None else df[df["dataset"].isin(list(datasets))]
    pairs = {(str(d), str(a)) for d, a in zip(sub["dataset"], sub["arch"]) if pd.notna(d) and pd.notna(a)}
    order = {d: i for i, d in enumerate(paper.DATASET_NAMES)}
    return sorted(pairs, key=lambda p: (order.get(p[0], len(order)), p[0], paper.arch_name(p[1])))


def _sources_note(sources: Iterable[str]) -> list[str]:
    # One note per source: the sources themselves contain semicolons.
    return [f"Paper source: {s}" for s in sorted({s for s in sources if s})]


def _finish_notes(table: Table, notes: Iterable[str]) -> Table:
    table.notes = sorted(notes) + table.notes
    if table.has_dagger:
        table.notes.append(SMALL_N_NOTE)
    return table


# --------------------------------------------------------------------------- the tables


def generic_table(runs: pd.DataFrame) -> Table:
    """Every dataset × architecture of the sweep against every method (variant) in it."""
    variants = method_variants(runs) if len(runs) else []
    header = ["Dataset", "Architecture"] + [v.label() for v in variants]
    rows: list[list[Cell]] = []
    for ds, arch in _rows_of(runs):
        sub = runs[(runs["dataset"] == ds) & (runs["arch"] == arch)]
        groups = [group_of(v.select(sub)) for v in variants]
        cells = [ours_cell(g) for g in groups]
        bold_lowest(cells, groups)
        rows.append([Cell(paper.dataset_name(ds)), Cell(paper.arch_name(arch))] + cells)
    table = Table("generic", "All runs: last-10-epoch test error (%)", header, rows, label_cols=2)
    return _finish_notes(table, [])


def cifar_main_table(runs: pd.DataFrame, with_paper: bool = True) -> Table | None:
    """The paper's main table: CE ("Basic") and ISDA on CIFAR-10/100 per architecture."""
    scope = runs[runs["dataset"].isin(CIFAR) & runs["method"].isin(["ce", "isda"])]
    datasets = [d for d in CIFAR if (scope["dataset"] == d).any()]
    if not datasets:
        return None
    notes: set[str] = set()
    ours_archs = [a for _, a in _rows_of(scope)]
    archs = [paper.arch_name(a) for a in ours_archs]
    if with_paper:
        archs = [a for d in datasets for a in paper.main_table_archs(d)] + archs
    archs = list(dict.fromkeys(archs))
    gap_head = "ISDA − CE (p, P)"
    per_ds = ["Basic (ours)", "paper (Δ)", "ISDA (ours)", "paper (Δ)", gap_head]
    if not with_paper:
        per_ds = ["Basic (ours)", "ISDA (ours)", gap_head]
    header = ["Network", "Params"] + per_ds * len(datasets)
    groups = [("", 2)] + [(paper.dataset_name(d), len(per_ds)) for d in datasets]
    rows, sources = [], []
    for disp in archs:
        raw = paper.raw_arch(disp)
        row = [Cell(disp), Cell(paper.paper_params(raw) or "")]
        for ds in datasets:
            sub = scope[(scope["dataset"] == ds) & (scope["arch"].map(paper.arch_name) == disp)]
            ce = group_of(pick_variant(sub, "ce", notes)) if (sub["method"] == "ce").any() else None
            isda = group_of(pick_variant(sub, "isda", notes)) if (sub["method"] == "isda").any() else None
            ce_cell, isda_cell = ours_cell(ce, "–"), ours_cell(isda, "–")
            bold_lowest([ce_cell, isda_cell], [ce, isda])
            if with_paper:
                pce, pisda = paper.paper_value(ds, raw, "ce"), paper.paper_value(ds, raw, "isda")
                sources += [p["source"] for p in (pce, pisda) if p]
                row += [ce_cell, paper_delta_cell(ce, pce), isda_cell, paper_delta_cell(isda, pisda)]
            else:
                row += [ce_cell, isda_cell]
            row.append(gap_text_cell(isda, ce))
        rows.append(row)
    table = Table(
        "cifar_main",
        "CIFAR: Basic (CE) vs ISDA, last-10-epoch test error (%)",
        header,
        rows,
        groups=groups,
        notes=_sources_note(sources),
        label_cols=2,
    )
    if with_paper:
        table.notes.insert(
            0,
            "paper (Δ): the paper's mean ± std, and Δ = our mean − the paper's mean in percentage points. "
            "Rows without runs show the paper's numbers only.",
        )
    table.notes.insert(
        0,
        "ISDA − CE: difference of means in percentage points (negative = ISDA better); "
        "p: Welch's t-test; P: probability of improvement P(ISDA < CE), the chance that an "
        "ISDA run beats a CE run.",
    )
    return _finish_notes(table, notes)


def _method_table(
    runs: pd.DataFrame,
    key: str,
    title: str,
    methods: tuple[str, ...],
    trigger: tuple[str, ...],
    with_paper: bool,
    gaps: tuple[tuple[str, str], ...] = (),
) -> Table | None:
    scope = runs[runs["dataset"].notna() & runs["method"].isin(methods)]
    if not scope["method"].isin(trigger).any():
        return None
    present = [m for m in methods if (scope["method"] == m).any()]
    notes: set[str] = set()
    pairs = _rows_of(scope[scope["method"].isin(trigger)])
    has_paper = {m: with_paper and any(paper.paper_value(d, a, m) for d, a in pairs) for m in present}
    header = ["Dataset", "Architecture"]
    for m in present:
        header += [paper.method_name(m)] + (["paper (Δ)"] if has_paper[m] else [])
    gaps = tuple((b, t) for b, t in gaps if b in present and t in present)
    header += [f"{paper.method_name(t)} − {paper.method_name(b)}" for b, t in gaps]
    rows, sources = [], []
    for ds, arch in pairs:
        sub = scope[(scope["dataset"] == ds) & (scope["arch"] == arch)]
        groups = {
            m: group_of(pick_variant(sub, m, notes)) if (sub["method"] == m).any() else None for m in present
        }
        ours = {m: ours_cell(groups[m], "–") for m in present}
        bold_lowest(list(ours.values()), list(groups.values()))
        row = [Cell(paper.dataset_name(ds)), Cell(paper.arch_name(arch))]
        for m in present:
            row.append(ours[m])
            if has_paper[m]:
                pv = paper.paper_value(ds, arch, m)
                sources += [pv["source"]] if pv else []
                row.append(paper_delta_cell(groups[m], pv))
        row += [gap_text_cell(groups[t], groups[b]) for b, t in gaps]
        rows.append(row)
    table = Table(key, title, header, rows, notes=_sources_note(sources), label_cols=2)
    if gaps:
        table.notes.insert(
            0,
            "A − B: difference of means (negative = with ISDA better), p: Welch's t-test, "
            "P: probability that a run with ISDA beats one without.",
        )
    return _finish_notes(table, notes)


def baselines_table(runs: pd.DataFrame, with_paper: bool = True) -> Table | None:
    """ISDA against the other regularisers and augmentations (paper's comparison table)."""
    return _method_table(
        runs,
        "baselines",
        "Baselines: last-10-epoch test error (%)",
        BASELINE_METHODS,
        trigger=("focal", "cutout", "autoaugment", "isda+cutout", "isda+autoaugment"),
        with_paper=with_paper,
    )


def augmentation_table(runs: pd.DataFrame, with_paper: bool = True) -> Table | None:
    """The journal's table: Cutout / AutoAugment / RandAugment, each without and with ISDA."""
    methods = tuple(m for pair in AUGMENT_PAIRS for m in pair)
    return _method_table(
        runs,
        "augmentation",
        "Augmentation ± ISDA: last-10-epoch test error (%)",
        methods,
        trigger=methods,
        with_paper=with_paper,
        gaps=AUGMENT_PAIRS,
    )


def top5_column(runs: pd.DataFrame) -> str | None:
    """The result key holding top-5 error, if the ImageNet runs report one."""
    for col in TOP5_COLUMNS:
        if col in runs.columns and pd.to_numeric(runs[col], errors="coerce").notna().any():
            return col
    for col in runs.columns:
        if "top5" in col and pd.to_numeric(runs[col], errors="coerce").notna().any():
            return col
    return None


def _overhead(isda: Group | None, ce: Group | None) -> Cell:
    if isda is None or ce is None or isda.wall.size == 0 or ce.wall.size == 0:
        return Cell("–")
    return Cell(f"{100 * (isda.wall.mean() / ce.wall.mean() - 1):+.1f}%")


def imagenet_table(runs: pd.DataFrame, with_paper: bool = True) -> Table | None:
    scope = runs[(runs["dataset"] == "imagenet") & runs["method"].isin(["ce", "isda"])]
    if scope.empty:
        return None
    notes: set[str] = set()
    t5 = top5_column(scope)
    metrics = [("top-1", METRIC)] + ([("top-5", t5)] if t5 else [])
    header = ["Network", "Params"]
    for label, _ in metrics:
        header += [f"Basic {label}"] + (["paper"] if with_paper else [])
        header += [f"ISDA {label}"] + (["paper"] if with_paper else [])
        header += [f"ISDA − CE {label}"]
    header += ["ISDA time overhead"] + (["paper (8×V100)"] if with_paper else [])
    rows, sources = [], []
    for _, arch in _rows_of(scope):
        sub = scope[scope["arch"] == arch]
        ce_runs = pick_variant(sub, "ce", notes) if (sub["method"] == "ce").any() else None
        isda_runs = pick_variant(sub, "isda", notes) if (sub["method"] == "isda").any() else None
        pce, pisda = (
            (paper.paper_imagenet(arch, "ce"), paper.paper_imagenet(arch, "isda"))
            if with_paper
            else (None, None)
        )
        sources += [p["source"] for p in (pce, pisda) if p]
        row = [Cell(paper.arch_name(arch)), Cell(paper.paper_params(arch) or "")]
        for label, col in metrics:
            key = "top1" if label == "top-1" else "top5"
            ce = group_of(ce_runs, col) if ce_runs is not None else None
            isda = group_of(isda_runs, col) if isda_runs is not None else None
            c1, c2 = ours_cell(ce, "–"), ours_cell(isda, "–")
            bold_lowest([c1, c2], [ce, isda])
            row += [c1] + (
                [Cell(fmt(pce[key], 1) if pce and pce[key] is not None else "–")] if with_paper else []
            )
            row += [c2] + (
                [Cell(fmt(pisda[key], 1) if pisda and pisda[key] is not None else "–")] if with_paper else []
            )
            row.append(gap_text_cell(isda, ce))
        ce = group_of(ce_runs) if ce_runs is not None else None
        isda = group_of(isda_runs) if isda_runs is not None else None
        row.append(_overhead(isda, ce))
        if with_paper:
            extra = pisda["extra_wall_time_pct"] if pisda else None
            row.append(Cell("–" if extra is None else f"+{extra:.1f}%"))
        rows.append(row)
    table = Table(
        "imagenet",
        "ImageNet: last-10-epoch test error (%)",
        header,
        rows,
        notes=_sources_note(sources),
        label_cols=2,
    )
    table.notes.insert(
        0,
        "Time overhead = mean wall time of ISDA runs / mean wall time of CE runs − 1; comparable only "
        "when both ran on the same hardware. Paper: extra wall time on 8×V100. Paper's Basic is the "
        "authors' own 300-epoch cosine baseline.",
    )
    return _finish_notes(table, notes)


TABLE_BUILDERS: tuple[Callable[..., Table | None], ...] = (
    cifar_main_table,
    baselines_table,
    augmentation_table,
    imagenet_table,
)


def build_tables(runs: pd.DataFrame, with_paper: bool = True) -> list[Table]:
    """The generic table (always) and every paper-style table this sweep has runs for."""
    tables = [generic_table(runs)]
    for build in TABLE_BUILDERS:
        table = build(runs, with_paper=with_paper)
        if table is not None:
            tables.append(table)
    return tables
