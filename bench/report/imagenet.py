"""The ImageNet tables: CE ("Basic") and ISDA per network, top-1 and top-5, and ISDA's time overhead.

The journal (TPAMI) and the conference (NeurIPS) trained ImageNet with different recipes (300 epochs
with a cosine schedule, batch 512; 120 epochs with lr ÷10 at 30/60/90, batch 256), so their runs are
different experiments: each recipe (the run field ``recipe``) gets its own table beside its own
paper's numbers.
"""

from __future__ import annotations

import pandas as pd

from bench.report import citation, paper
from bench.report.citation import PaperValue
from bench.report.model import (
    METRIC,
    Cell,
    Group,
    Table,
    bold_lowest,
    check_of,
    finish_notes,
    fmt,
    gap_text_cell,
    group_of,
    ours_cell,
    rows_of,
)
from bench.report.variants import pick_variant, recipes_of

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
RECIPE_TITLES = {
    "tpami": "TPAMI recipe: 300 epochs, cosine",
    "neurips": "NeurIPS recipe: 120 epochs, lr ÷10 at 30/60/90",
}


def top5_column(runs: pd.DataFrame) -> str | None:
    """The result key holding top-5 error, if the ImageNet runs report one."""
    for col in TOP5_COLUMNS:
        if col in runs.columns and pd.to_numeric(runs[col], errors="coerce").notna().any():
            return col
    for col in runs.columns:
        if "top5" in col and pd.to_numeric(runs[col], errors="coerce").notna().any():
            return col
    return None


def _paper_top(value: PaperValue | None) -> Cell:
    # The paper prints ImageNet errors with one decimal.
    return Cell("–" if value is None else fmt(value.mean, 1))


def _overhead(isda: Group | None, ce: Group | None) -> Cell:
    if isda is None or ce is None or isda.wall.size == 0 or ce.wall.size == 0:
        return Cell("–")
    return Cell(f"{100 * (isda.wall.mean() / ce.wall.mean() - 1):+.1f}%")


def _table(scope: pd.DataFrame, recipe: str, with_paper: bool) -> Table:
    notes: set[str] = set()
    table_key = "imagenet" if recipe == "tpami" else f"imagenet_{recipe}"
    t5 = top5_column(scope)
    metrics = [("top-1", METRIC)] + ([("top-5", t5)] if t5 else [])
    header = ["Network", "Params"]
    for label, _ in metrics:
        header += [f"{paper.method_name('ce')} {label}"] + (["paper"] if with_paper else [])
        header += [f"ISDA {label}"] + (["paper"] if with_paper else [])
        header += [f"ISDA − CE {label}"]
    # Only the journal's table gives the extra wall time.
    paper_wall = with_paper and recipe == "tpami"
    header += ["ISDA time overhead"] + (["paper (8×V100)"] if paper_wall else [])
    rows, used, checks = [], [], []
    for _, arch in rows_of(scope):
        sub = scope[scope["arch"] == arch]
        ce_runs = pick_variant(sub, "ce", notes) if (sub["method"] == "ce").any() else None
        isda_runs = pick_variant(sub, "isda", notes) if (sub["method"] == "isda").any() else None
        pce, pisda = (
            (paper.paper_imagenet(arch, "ce", recipe), paper.paper_imagenet(arch, "isda", recipe))
            if with_paper
            else (None, None)
        )
        row = [Cell(paper.arch_name(arch)), Cell(paper.paper_params(arch) or "")]
        for label, col in metrics:
            key = "top1" if label == "top-1" else "top5"
            ce = group_of(ce_runs, col) if ce_runs is not None else None
            isda = group_of(isda_runs, col) if isda_runs is not None else None
            c1, c2 = ours_cell(ce, "–"), ours_cell(isda, "–")
            bold_lowest([c1, c2], [ce, isda])
            vce, visda = (pce or {}).get(key), (pisda or {}).get(key)
            used += [(f"{name} {label}", v) for name, v in ((paper.method_name("ce"), vce), ("ISDA", visda)) if v]
            experiment = f"ImageNet, {paper.arch_name(arch)}"
            base = check_of(table_key, experiment, f"{paper.method_name('ce')} {label}", ce, vce)
            checks += [c for c in (base, check_of(table_key, experiment, f"ISDA {label}", isda, visda, base)) if c]
            row += [c1] + ([_paper_top(vce)] if with_paper else [])
            row += [c2] + ([_paper_top(visda)] if with_paper else [])
            row.append(gap_text_cell(isda, ce))
        ce = group_of(ce_runs) if ce_runs is not None else None
        isda = group_of(isda_runs) if isda_runs is not None else None
        row.append(_overhead(isda, ce))
        if paper_wall:
            extra = pisda["extra_wall_time_pct"] if pisda else None
            row.append(Cell("–" if extra is None else f"+{extra:.1f}%"))
        rows.append(row)
    what = RECIPE_TITLES.get(recipe, f"recipe {recipe}")
    table = Table(table_key, f"ImageNet ({what}): last-10-epoch test error (%)", header, rows,
                  notes=citation.notes(table_key, used) if with_paper else [], label_cols=2, checks=checks)
    table.notes.insert(
        0,
        "Time overhead = mean wall time of ISDA runs / mean wall time of CE runs − 1; comparable only "
        "when both ran on the same hardware." + (" Paper: extra wall time on 8×V100." if paper_wall else ""),
    )
    if with_paper and recipe == "tpami":
        table.notes.insert(1, "The paper's Basic is the authors' own 300-epoch cosine baseline.")
    if with_paper and recipe == "neurips" and paper.optional_table("imagenet_neurips") is None:
        table.notes.insert(1, "The NeurIPS table's numbers are not shipped (–): bench/reference/imagenet_neurips.csv "
                              "adds them (README: Paper numbers).")
    return finish_notes(table, notes)


def imagenet_tables(runs: pd.DataFrame, with_paper: bool = True) -> list[Table]:
    """One table per ImageNet recipe that has CE or ISDA runs, the journal's first."""
    scope = runs[(runs["dataset"] == "imagenet") & runs["method"].isin(["ce", "isda"])]
    if scope.empty:
        return []
    recipes = recipes_of(scope)
    order = list(RECIPE_TITLES) + sorted(set(recipes) - set(RECIPE_TITLES))
    return [_table(scope[recipes == r], r, with_paper) for r in order if (recipes == r).any()]
