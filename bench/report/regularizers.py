"""The paper's comparison with other regularisers (NeurIPS Table 3 / TPAMI): one row per method, one
column per network × CIFAR dataset, ours beside the paper's.

The paper's numbers for this table are not shipped; ``bench/reference/regularizers.csv`` (layout in
:data:`bench.report.paper.OPTIONAL_LAYOUTS`) adds them, else its cells show "–", but for Basic and ISDA,
which rerun the main table's experiments and show its numbers. The generator-based rows are never
trained here: they appear when that CSV has their numbers, marked "not run".
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bench.methods import AUGMENTS
from bench.report import paper
from bench.report.grid import GridRow, grid_columns, grid_table, missing_csv_note
from bench.report.model import Table, extension_label, group_of, rows_of
from bench.report.variants import pick_variant

CIFAR = ("cifar10", "cifar100")
NOT_RUN = "not run"


@dataclass(frozen=True)
class Row:
    method: str  # our method name; the key of regularizers.csv's `method` column
    label: str = ""  # a row no method of ours trains names itself; ours take paper.method_name's
    trained: bool = True  # False: the paper's number only (generator-based augmentation)
    in_paper: bool = True  # False: our addition to the paper's rows

    @property
    def name(self) -> str:
        return self.label or paper.method_name(self.method)


# The table's rows, in the paper's order: edit here to add a row (names: bench.report.paper.METHOD_NAMES).
ROWS: tuple[Row, ...] = (
    Row("ce"),
    Row("large_margin"),
    Row("disturblabel"),
    Row("focal"),
    Row("center"),
    Row("lq"),
    Row("wgan", "WGAN", trained=False),
    Row("cgan", "CGAN", trained=False),
    Row("acgan", "ACGAN", trained=False),
    Row("infogan", "infoGAN", trained=False),
    Row("ce+dropout"),
    Row("isda"),
    Row("isda+dropout"),
)
# The paper's columns: its two networks on CIFAR-10 and CIFAR-100.
PAPER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("resnet110", "cifar10"), ("resnet110", "cifar100"), ("wrn28_10", "cifar10"), ("wrn28_10", "cifar100"))
# Methods of ROWS that call for the table: a sweep of CE and ISDA alone has the main table.
_TRIGGERS = tuple(r.method for r in ROWS if r.trained and r.method not in ("ce", "isda"))
# Methods other paper tables show: augmentations and ISDA's explicit counterpart.
_ELSEWHERE = ("explicit",)


def regularizers_table(runs: pd.DataFrame, with_paper: bool = True) -> Table | None:
    """Shown when the sweep ran one of the paper's other regularisers (not only CE and ISDA) on CIFAR."""
    scope = runs[runs["dataset"].isin(CIFAR) & runs["method"].notna()]
    if not scope["method"].isin(_TRIGGERS).any():
        return None
    listed = {r.method for r in ROWS}
    # Methods of the sweep the paper's table does not list (a plugin's loss, say) are rows of their own;
    # augmentations are the augmentation table's.
    extra = [str(m) for m in scope["method"].drop_duplicates() if m not in listed and m not in _ELSEWHERE
             and not set(str(m).split("+")) & set(AUGMENTS)]
    specs = list(ROWS) + [Row(m, in_paper=False) for m in extra]
    scope = scope[scope["method"].isin([r.method for r in specs])]
    cols = grid_columns([(a, d) for d, a in rows_of(scope)], PAPER_COLUMNS)
    notes: set[str] = set()
    rows = []
    for spec in specs:
        row = GridRow(spec.name, spec.method, placeholder="" if spec.trained else NOT_RUN)
        for arch, ds in cols:
            sub = scope[(scope["dataset"] == ds) & (scope["arch"] == arch)]
            if (sub["method"] == spec.method).any():
                row.ours[arch, ds] = group_of(pick_variant(sub, spec.method, notes))
            if with_paper:
                row.paper[arch, ds] = paper.lookup("regularizers", ds, arch, method=spec.method)
        if not spec.in_paper and not any(row.paper.values()):
            row.label = extension_label(row.label)
        rows.append(row)
    extra_notes = []
    if any(r.placeholder and any(r.paper.values()) for r in rows):
        extra_notes.append(f"{NOT_RUN}: generator-based augmentation is not trained here; the paper's number only.")
    if with_paper and paper.optional_table("regularizers") is None:
        extra_notes.append(missing_csv_note("regularizers"))
    title = "Comparison with other regularisers: last-10-epoch test error (%)"
    return grid_table("regularizers", title, "Method", rows, cols, with_paper, PAPER_COLUMNS,
                      notes=notes | set(extra_notes), gains=[("ce", "isda")])
