"""The paper's ablation of ISDA (TPAMI): what each part of the method contributes, laid out like the
paper's table, one row per setting and one column per network × CIFAR dataset.

Settings are ISDA runs told apart by their ``cov_mode`` (the class covariance: full, its diagonal,
the identity, or one covariance shared by all classes) and ``lambda_schedule`` (λ grows linearly to
λ0, or is λ0 from the first epoch). The paper's numbers for the ablated settings are not shipped;
``bench/reference/ablation.csv`` (layout in :data:`bench.report.paper.OPTIONAL_LAYOUTS`, ``setting`` = a key
of :data:`SETTINGS`) adds them. Basic and ISDA rerun the main table's experiments and show its numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from bench.report import paper
from bench.report.grid import GridRow, grid_columns, grid_table, missing_csv_note
from bench.report.model import Table, group_of, rows_of
from bench.report.variants import filled, pick_variant

CIFAR = ("cifar10", "cifar100")


@dataclass(frozen=True)
class Setting:
    key: str  # ablation.csv's `setting`
    label: str  # as the paper's table names it
    method: str
    fields: dict[str, object] = field(default_factory=dict)  # a field missing here takes any value


# The paper's rows, in its order.
SETTINGS: tuple[Setting, ...] = (
    Setting("ce", paper.method_name("ce"), "ce"),
    Setting("identity", "Identity matrix", "isda", {"cov_mode": "identity", "lambda_schedule": "linear"}),
    Setting("diagonal", "Diagonal covariance", "isda", {"cov_mode": "diagonal", "lambda_schedule": "linear"}),
    Setting("shared", "Single covariance matrix", "isda", {"cov_mode": "shared", "lambda_schedule": "linear"}),
    Setting("constant_lambda", "Constant λ0", "isda", {"cov_mode": "full", "lambda_schedule": "constant"}),
    Setting("isda", "ISDA", "isda", {"cov_mode": "full", "lambda_schedule": "linear"}),
)
PAPER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("resnet110", "cifar10"), ("resnet110", "cifar100"), ("wrn28_10", "cifar10"), ("wrn28_10", "cifar100"))


def _select(sub: pd.DataFrame, setting: Setting) -> pd.DataFrame:
    """The runs of ``setting`` (a run that does not record a field ran its default)."""
    runs = sub[sub["method"] == setting.method]
    for key, value in setting.fields.items():
        if runs.empty:
            break
        values = filled(runs.assign(**{key: None}) if key not in runs else runs, key)
        runs = runs[values.map(lambda v, value=value: v == value).astype(bool)]
    return runs


def _is_ablation(runs: pd.DataFrame) -> pd.Series:
    """Runs of ISDA in a setting other than the paper's method itself."""
    isda = runs["method"] == "isda"
    out = pd.Series(False, index=runs.index)
    for s in SETTINGS:
        if s.method == "isda" and s.key != "isda":
            out |= runs.index.isin(_select(runs[isda], s).index)
    return out


def ablation_table(runs: pd.DataFrame, with_paper: bool = True) -> Table | None:
    """Shown when the sweep ran ISDA in one of the ablation's settings on CIFAR."""
    scope = runs[runs["dataset"].isin(CIFAR) & runs["method"].isin({s.method for s in SETTINGS})]
    if scope.empty or not _is_ablation(scope).any():
        return None
    ablated = scope[_is_ablation(scope)]
    cols = grid_columns([(a, d) for d, a in rows_of(ablated)], PAPER_COLUMNS)
    notes: set[str] = set()
    rows = []
    for s in SETTINGS:
        row = GridRow(s.label, s.key)
        for arch, ds in cols:
            chosen = _select(scope[(scope["dataset"] == ds) & (scope["arch"] == arch)], s)
            if not chosen.empty:
                row.ours[arch, ds] = group_of(pick_variant(chosen, s.method, notes))
            if with_paper:
                row.paper[arch, ds] = paper.lookup("ablation", ds, arch, setting=s.key)
        rows.append(row)
    extra = ["Settings: ISDA's class covariance (cov_mode: identity, diagonal, one shared by all classes, or "
             "full) and λ schedule (linear: λ = λ0·epoch/epochs; constant: λ0 from the first epoch)."]
    if with_paper and paper.optional_table("ablation") is None:
        extra.append(missing_csv_note("ablation"))
    return grid_table("ablation", "Ablation of ISDA: last-10-epoch test error (%)", "Setting", rows, cols,
                      with_paper, PAPER_COLUMNS, notes=notes | set(extra), gains=[("ce", "isda")])
