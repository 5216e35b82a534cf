"""Tables of test error against one swept number: ISDA's strength λ0, and the number M of explicitly
drawn features that explicit semantic augmentation (the method ISDA replaces) trains with.

Their figures are in :mod:`bench.report.param_figures`. The paper's numbers are not shipped:
``bench/reference/lambda_sensitivity.csv`` and ``bench/reference/explicit.csv`` (layouts in
:data:`bench.report.paper.OPTIONAL_LAYOUTS`) add them; CE (λ0 table) and ISDA (explicit table) rerun the
main table's experiments and show its numbers.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.report import paper
from bench.report.grid import GridRow, grid_columns, grid_table, missing_csv_note
from bench.report.model import Cell, Table, fmt, fmt_value, group_of, rows_of
from bench.report.variants import filled, pick_variant
from bench.rundir.state import RunState

CIFAR = ("cifar10", "cifar100")
LAMBDA_METHOD = "isda"
EXPLICIT_METHOD = "explicit"
SAMPLES = "explicit_samples"


def swept_values(runs: pd.DataFrame, method: str, key: str) -> dict[tuple[str, str], list[float]]:
    """Per (arch, dataset): the sorted values of ``key`` among ``method``'s runs, where there are several."""
    out: dict[tuple[str, str], list[float]] = {}
    sub = runs[runs["method"] == method]
    if sub.empty or key not in sub:
        return out
    for (ds, arch), grp in sub.groupby(["dataset", "arch"]):
        values = sorted({float(v) for v in filled(grp, key) if v is not None})
        if len(values) > 1:
            out[str(arch), str(ds)] = values
    return out


COST_UNIT = "ms per training step"


def step_cost(runs: pd.DataFrame) -> tuple[pd.Series, str]:
    """Each completed run's training cost in :data:`COST_UNIT` (batch size / training throughput, from
    result.json's images_per_s) and that unit; NaN for a run that recorded no throughput. One unit
    whatever the runs hold: a table compares costs only in one."""
    done = runs[runs["status"] == RunState.COMPLETED]
    ips = pd.to_numeric(done.get("images_per_s", pd.Series(np.nan, index=done.index)), errors="coerce")
    batch = pd.to_numeric(done.get("batch_size", pd.Series(np.nan, index=done.index)), errors="coerce")
    return (1000.0 * batch / ips).where((ips > 0) & (batch > 0)), COST_UNIT


def _cost_cell(values: pd.Series) -> Cell:
    """Mean ± std with three significant digits in the mean, and the std to the same decimals."""
    v = values.to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Cell("–")
    mean = float(v.mean())
    digits = int(min(3, max(0, 2 - math.floor(math.log10(abs(mean))))) if mean else 2)
    return Cell(fmt(mean, digits) if v.size == 1 else f"{fmt(mean, digits)} ± {fmt(float(v.std(ddof=1)), digits)}")


def lambda_table(runs: pd.DataFrame, with_paper: bool = True) -> Table | None:
    """ISDA at each λ0 the sweep ran (and CE), per network × CIFAR dataset; shown when some network
    ran ISDA at several λ0."""
    scope = runs[runs["dataset"].isin(CIFAR) & runs["method"].isin(["ce", LAMBDA_METHOD])]
    swept = swept_values(scope, LAMBDA_METHOD, "lambda0")
    if not swept:
        return None
    cols = grid_columns(list(swept))
    values = sorted({v for vs in swept.values() for v in vs})
    notes: set[str] = set()
    rows = [GridRow("CE", "ce")]
    for v in values:
        rows.append(GridRow(f"ISDA, λ0 = {fmt_value(v)}", f"lambda0={v}"))
    for arch, ds in cols:
        sub = scope[(scope["dataset"] == ds) & (scope["arch"] == arch)]
        if (sub["method"] == "ce").any():
            rows[0].ours[arch, ds] = group_of(pick_variant(sub, "ce", notes))
        if with_paper:
            rows[0].paper[arch, ds] = paper.lookup("cifar_main", ds, arch, method="ce")
        isda = sub[sub["method"] == LAMBDA_METHOD]
        lam = filled(isda, "lambda0") if len(isda) else pd.Series(dtype=object)
        for row, v in zip(rows[1:], values):
            at = isda[lam.map(lambda x, v=v: x == v).astype(bool)] if len(isda) else isda
            if len(at):
                row.ours[arch, ds] = group_of(pick_variant(at, LAMBDA_METHOD, notes))
            if with_paper:
                row.paper[arch, ds] = paper.lookup("lambda_sensitivity", ds, arch, lambda0=v)
    extra = ["CE reruns the main table's Basic and shows its numbers; λ0's are from the paper's sensitivity figure."]
    if with_paper and paper.optional_table("lambda_sensitivity") is None:
        extra.append(missing_csv_note("lambda_sensitivity"))
    return grid_table("lambda_sensitivity", "ISDA's sensitivity to λ0: last-10-epoch test error (%)", "Setting",
                      rows, cols, with_paper, notes=notes | set(extra))


def explicit_table(runs: pd.DataFrame, with_paper: bool = True) -> Table | None:
    """ISDA against explicit augmentation with M drawn features per sample, per network × CIFAR
    dataset, error and training cost; shown when the sweep ran the explicit method."""
    scope = runs[runs["dataset"].isin(CIFAR) & runs["method"].isin([LAMBDA_METHOD, EXPLICIT_METHOD])]
    explicit = scope[scope["method"] == EXPLICIT_METHOD]
    if explicit.empty or SAMPLES not in explicit:
        return None
    cols = grid_columns([(a, d) for d, a in rows_of(explicit)])
    samples = sorted({float(v) for v in filled(explicit, SAMPLES) if v is not None})
    cost, unit = step_cost(scope)
    notes: set[str] = set()
    rows = [GridRow("ISDA (implicit, M → ∞)", "isda")] + [GridRow(f"Explicit, M = {fmt_value(m)}", f"M={m}")
                                                          for m in samples]
    for arch, ds in cols:
        sub = scope[(scope["dataset"] == ds) & (scope["arch"] == arch)]
        chosen = []
        if (sub["method"] == LAMBDA_METHOD).any():
            chosen.append(pick_variant(sub, LAMBDA_METHOD, notes))
        else:
            chosen.append(sub.iloc[:0])
        exp = sub[sub["method"] == EXPLICIT_METHOD]
        m_of = filled(exp, SAMPLES) if len(exp) else pd.Series(dtype=object)
        for m in samples:
            at = exp[m_of.map(lambda x, m=m: x == m).astype(bool)] if len(exp) else exp
            chosen.append(pick_variant(at, EXPLICIT_METHOD, notes) if len(at) else at)
        for i, (row, runs_i) in enumerate(zip(rows, chosen)):
            if len(runs_i):
                row.ours[arch, ds] = group_of(runs_i)
            if with_paper:
                row.paper[arch, ds] = (paper.lookup("explicit", ds, arch, method=LAMBDA_METHOD) if i == 0 else
                                       paper.lookup("explicit", ds, arch, method=EXPLICIT_METHOD,
                                                    **{SAMPLES: samples[i - 1]}))
            done = runs_i[runs_i["status"] == RunState.COMPLETED].index if len(runs_i) else []
            row.extra.append(_cost_cell(cost.reindex(done)))
    cost_head = [f"{paper.arch_name(a)} · {paper.dataset_name(d)}" for a, d in cols]
    extra = [f"Cost columns: {unit} (batch size / the run's training throughput, result.json's images_per_s), "
             "mean ± std over the cell's completed runs that recorded it; comparable only between runs on the same "
             "hardware and precision."]
    if with_paper and paper.optional_table("explicit") is None:
        extra.append(missing_csv_note("explicit"))
    table = grid_table("explicit", "Explicit vs implicit (ISDA) semantic augmentation: last-10-epoch test error (%)",
                       "Method", rows, cols, with_paper, extra_header=cost_head, notes=notes | set(extra))
    if table.groups:
        table.groups[-1] = (unit, len(cost_head))
    return table
