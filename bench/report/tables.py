"""The report's tables, built once as data (:class:`~bench.report.model.Table`); :mod:`bench.report.render`
writes them as Markdown, LaTeX or HTML.

Every report has the generic table ("All runs": every dataset × architecture against every method
variant). The paper-style tables follow, each only when the sweep has runs for it and each laid out
like the paper's, on the paper's datasets: the CIFAR main table (here), the comparison with other
regularisers (:mod:`bench.report.regularizers`), the augmentation table (here), the ablation
(:mod:`bench.report.ablation`), λ0 sensitivity and explicit augmentation (:mod:`bench.report.sensitivity`)
and ImageNet per recipe (:mod:`bench.report.imagenet`). Cell conventions: :mod:`bench.report.model`.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from bench.report import citation, paper
from bench.report.ablation import ablation_table
from bench.report.imagenet import imagenet_tables
from bench.report.model import (
    NO_TEST_NOTE,
    Cell,
    Group,
    PaperCheck,
    Table,
    bold_lowest,
    check_of,
    extension_label,
    finish_notes,
    gap_text_cell,
    group_of,
    ours_cell,
    paper_delta_cell,
    rows_of,
)
from bench.report.regularizers import regularizers_table
from bench.report.sensitivity import explicit_table, lambda_table
from bench.report.variants import method_variants, pick_variant

CIFAR = ("cifar10", "cifar100")
AUGMENT_PAIRS = (
    ("cutout", "isda+cutout"),
    ("autoaugment", "isda+autoaugment"),
    ("randaugment", "isda+randaugment"),
)
BASELINE_OF = {t: b for b, t in AUGMENT_PAIRS}  # an augmentation with ISDA → the same without
RANDAUGMENT_NOTE = (
    "RandAugment (N, M): the authors did not publish theirs; ours are an assumption, the RandAugment "
    "paper's CIFAR values for each network (Cubuk et al., 2020)."
)


def generic_table(runs: pd.DataFrame) -> Table:
    """Every dataset × architecture of the sweep against every method (variant) in it."""
    variants = method_variants(runs) if len(runs) else []
    header = ["Dataset", "Architecture"] + [v.label() for v in variants]
    rows: list[list[Cell]] = []
    for ds, arch in rows_of(runs):
        sub = runs[(runs["dataset"] == ds) & (runs["arch"] == arch)]
        groups = [group_of(v.select(sub)) for v in variants]
        cells = [ours_cell(g) for g in groups]
        bold_lowest(cells, groups)
        rows.append([Cell(paper.dataset_name(ds)), Cell(paper.arch_name(arch))] + cells)
    table = Table("generic", "All runs: last-10-epoch test error (%)", header, rows, label_cols=2)
    return finish_notes(table, [])


def cifar_main_table(runs: pd.DataFrame, with_paper: bool = True) -> Table | None:
    """The paper's main table: CE ("Basic") and ISDA on CIFAR-10/100, one row per network of the sweep
    (its planned runs included); the paper's other rows are named in a note, not shown as if pending."""
    scope = runs[runs["dataset"].isin(CIFAR) & runs["method"].isin(["ce", "isda"])]
    datasets = [d for d in CIFAR if (scope["dataset"] == d).any()]
    if not datasets:
        return None
    notes: set[str] = set()
    ours_archs = sorted({a for _, a in rows_of(scope)}, key=paper.arch_sort_key)
    archs = [paper.arch_name(a) for a in ours_archs]
    if with_paper:
        order = [a for d in datasets for a in paper.main_table_archs(d)]
        archs.sort(key=lambda a: order.index(a) if a in order else len(order))
    gap_head = "ISDA − CE (p, P)"
    ce_head, isda_head = (f"{paper.method_name(m)} (ours)" for m in ("ce", "isda"))
    per_ds = [ce_head, "paper (Δ)", isda_head, "paper (Δ)", gap_head]
    if not with_paper:
        per_ds = [ce_head, isda_head, gap_head]
    header = ["Network", "Params"] + per_ds * len(datasets)
    groups = [("", 2)] + [(paper.dataset_name(d), len(per_ds)) for d in datasets]
    rows, used, checks = [], [], []
    for disp in archs:
        raw = paper.raw_arch(disp)
        in_paper = any(paper.paper_value(ds, raw, m) for ds in datasets for m in ("ce", "isda"))
        row = [Cell(disp if in_paper or not with_paper else extension_label(disp)),
               Cell(paper.paper_params(raw) or "")]
        for ds in datasets:
            sub = scope[(scope["dataset"] == ds) & (scope["arch"].map(paper.arch_name) == disp)]
            ce = group_of(pick_variant(sub, "ce", notes)) if (sub["method"] == "ce").any() else None
            isda = group_of(pick_variant(sub, "isda", notes)) if (sub["method"] == "isda").any() else None
            ce_cell, isda_cell = ours_cell(ce, "–"), ours_cell(isda, "–")
            bold_lowest([ce_cell, isda_cell], [ce, isda])
            if with_paper:
                pce, pisda = paper.lookup("cifar_main", ds, raw, method="ce"), paper.lookup("cifar_main", ds, raw,
                                                                                            method="isda")
                used += [(disp, p) for p in (pce, pisda) if p]
                experiment = f"{paper.dataset_name(ds)}, {disp}"
                base = check_of("cifar_main", experiment, paper.method_name("ce"), ce, pce)
                treat = check_of("cifar_main", experiment, "ISDA", isda, pisda, base)
                checks += [c for c in (base, treat) if c]
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
        notes=citation.notes("cifar_main", used) if with_paper else [],
        label_cols=2,
        checks=checks,
    )
    if with_paper:
        table.notes.insert(
            0,
            "paper (Δ): the paper's mean ± std, and Δ = our mean − the paper's mean in percentage points.",
        )
        others = [a for a in dict.fromkeys(a for d in datasets for a in paper.main_table_archs(d)) if a not in archs]
        foreign = [a for a in others if paper.raw_arch(a) == a]  # no architecture of ours has this name
        if len(others) > len(foreign):
            table.notes.append(f"The paper's table also has {', '.join(a for a in others if a not in foreign)}: "
                               "not in this sweep.")
        if foreign:
            table.notes.append(f"{', '.join(foreign)}, in the paper's table, {'is' if len(foreign) == 1 else 'are'} "
                               "no network of this project.")
    table.notes.insert(
        0,
        "ISDA − CE: difference of means in percentage points (negative = ISDA better); "
        "p: Welch's t-test; P=k/m: in k of the m pairs of an ISDA run and a CE run, ISDA's error is lower "
        "(ties count ½; the probability of improvement, counted). " + NO_TEST_NOTE,
    )
    return finish_notes(table, notes)


def _schedule_cell(sub: pd.DataFrame, present: list[str]) -> tuple[Cell, str]:
    """The lr schedule(s) the row's runs used, short; and, where its methods differ, which method used
    which (for a note under the table: a cell that long pushes the numbers off the page)."""
    if "schedule" not in sub:
        return Cell("–"), ""
    per_method = {m: "/".join(sorted({str(s) for s in sub.loc[sub["method"] == m, "schedule"].dropna()}))
                  for m in present}
    values = sorted({s for v in per_method.values() if v for s in v.split("/")})
    if len(values) <= 1:
        return Cell(values[0] if values else "–"), ""
    by_schedule: dict[str, list[str]] = {}
    for m, v in per_method.items():
        if v:
            by_schedule.setdefault(v, []).append(paper.method_name(m))
    return Cell(", ".join(values)), "; ".join(f"{v} for {', '.join(ms)}" for v, ms in by_schedule.items())


def augmentation_table(runs: pd.DataFrame, with_paper: bool = True) -> Table | None:
    """The journal's table: Cutout / AutoAugment / RandAugment, each without and with ISDA, on CIFAR;
    shown when the sweep has an augmentation with and without ISDA, or one beside the paper's."""
    methods = tuple(m for pair in AUGMENT_PAIRS for m in pair)
    scope = runs[runs["dataset"].isin(CIFAR) & runs["method"].isin(methods)]
    present = [m for m in methods if (scope["method"] == m).any()]
    pairs = rows_of(scope)
    has_paper = {m: with_paper and any(paper.paper_value(d, a, m) for d, a in pairs) for m in present}
    gaps = tuple((b, t) for b, t in AUGMENT_PAIRS if b in present and t in present)
    if not gaps and not any(has_paper.values()):
        return None
    notes: set[str] = set()
    # Each augmentation's columns side by side: without ISDA, with it, and the gap between them.
    plan = [[m for m in pair if m in present] + ([pair] if pair in gaps else []) for pair in AUGMENT_PAIRS]
    plan = [cols for cols in plan if cols]
    header = ["Dataset", "Architecture", "Schedule"]
    for col in (c for cols in plan for c in cols):
        if isinstance(col, str):
            header += [paper.method_name(col)] + (["paper (Δ)"] if has_paper[col] else [])
        else:
            header.append(f"{paper.method_name(col[1])} − {paper.method_name(col[0])}")
    rows, used, checks = [], [], []
    mixed: dict[str, list[str]] = {}  # per-method schedules → the rows that have them
    for ds, arch in pairs:
        sub = scope[(scope["dataset"] == ds) & (scope["arch"] == arch)]
        schedule, per_method = _schedule_cell(sub, present)
        if per_method:
            mixed.setdefault(per_method, []).append(f"{paper.dataset_name(ds)} {paper.arch_name(arch)}")
        groups: dict[str, Group | None] = {
            m: group_of(pick_variant(sub, m, notes)) if (sub["method"] == m).any() else None for m in present
        }
        ours = {m: ours_cell(groups[m], "–") for m in present}
        bold_lowest(list(ours.values()), list(groups.values()))
        in_paper = any(paper.paper_value(ds, arch, m) for m in methods)
        name = paper.arch_name(arch)
        row = [Cell(paper.dataset_name(ds)), Cell(name if in_paper or not with_paper else extension_label(name)),
               schedule]
        found: dict[str, PaperCheck | None] = {}
        for col in (c for cols in plan for c in cols):
            if not isinstance(col, str):
                row.append(gap_text_cell(groups[col[1]], groups[col[0]]))
                continue
            row.append(ours[col])
            if has_paper[col]:
                pv = paper.lookup("cifar_augmentation", ds, arch, method=col)
                used += [(paper.method_name(col), pv)] if pv else []
                row.append(paper_delta_cell(groups[col], pv))
                base = found.get(BASELINE_OF.get(col, ""))
                found[col] = check_of("augmentation", f"{paper.dataset_name(ds)}, {name}", paper.method_name(col),
                                      groups[col], pv, base)
        rows.append(row)
        checks += [c for c in found.values() if c]
    title = "Augmentation ± ISDA: last-10-epoch test error (%)"
    blocks = [sum(1 + has_paper[c] if isinstance(c, str) else 1 for c in cols) for cols in plan]
    table = Table("augmentation", title, header, rows, notes=citation.notes("augmentation", used) if with_paper else [],
                  label_cols=3, checks=checks, blocks=blocks)
    table.notes.insert(0, "Schedule: the learning-rate schedule the row's runs used (their config's `schedule`)"
                          + "".join(f"; {' and '.join(where)}: {what}" for what, where in mixed.items()) + ".")
    if gaps:
        table.notes.insert(
            0,
            "A − B: difference of means (negative = with ISDA better), p: Welch's t-test, "
            "P=k/m: in k of the m pairs of a run with ISDA and one without, the one with ISDA has the lower "
            "error (ties count ½). " + NO_TEST_NOTE,
        )
    if any(m in present for m in ("randaugment", "isda+randaugment")):
        table.notes.append(RANDAUGMENT_NOTE)
    return finish_notes(table, notes)


TableBuilder = Callable[..., "Table | list[Table] | None"]
TABLE_BUILDERS: tuple[TableBuilder, ...] = (
    cifar_main_table,
    regularizers_table,
    augmentation_table,
    ablation_table,
    lambda_table,
    explicit_table,
    imagenet_tables,
)


def build_tables(runs: pd.DataFrame, with_paper: bool = True) -> list[Table]:
    """The generic table (always) and every paper-style table this sweep has runs for."""
    tables = [generic_table(runs)]
    for build in TABLE_BUILDERS:
        built = build(runs, with_paper=with_paper)
        tables += built if isinstance(built, list) else [built] if built is not None else []
    return tables
