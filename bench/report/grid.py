"""The layout of the paper's smaller tables: one row per setting (a method, an ablation, a λ0), one
column per network × dataset, each column ours beside the paper's (Δ = ours − paper).

The header spans each network over its datasets; a column the paper's table does not have is
marked "extension" (when the caller says which the paper has). Bold: the lowest error of ours in
each column.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bench.report import citation, paper
from bench.report.citation import PaperValue
from bench.report.model import (
    Cell,
    Group,
    PaperCheck,
    Table,
    bold_lowest,
    check_of,
    extension_label,
    finish_notes,
    ours_cell,
    paper_delta_cell,
)

Column = tuple[str, str]  # (raw arch, raw dataset)
_DATASET_ORDER = {d: i for i, d in enumerate(paper.DATASET_NAMES)}


@dataclass
class GridRow:
    label: str
    key: str = ""  # what the row is (a method, a setting), for the pairs whose gain the verdict judges
    ours: dict[Column, Group | None] = field(default_factory=dict)
    paper: dict[Column, PaperValue | None] = field(default_factory=dict)
    placeholder: str = ""  # text for ours where this row is never trained ("not run")
    extra: list[Cell] = field(default_factory=list)  # cells after the grid (a cost column, say)


def grid_columns(ours: Iterable[Column], paper_cols: Sequence[Column] = ()) -> list[Column]:
    """The sweep's columns (``ours``: its planned runs included): those of the paper's table first, in
    its order, then the others by network and dataset. A paper column the sweep does not have is left
    out rather than shown as if its runs were pending."""
    archs = paper.arch_order()
    ours = set(ours)
    rest = sorted(ours - set(paper_cols), key=lambda c: (paper.arch_sort_key(c[0], archs),
                                                          _DATASET_ORDER.get(c[1], len(_DATASET_ORDER)), c[1]))
    return [c for c in paper_cols if c in ours] + rest


def grid_table(
    key: str,
    title: str,
    first: str,
    rows: list[GridRow],
    cols: list[Column],
    with_paper: bool,
    paper_cols: Sequence[Column] | None = None,
    extra_header: Sequence[str] = (),
    notes: Iterable[str] = (),
    gains: Sequence[tuple[str, str]] = (),
) -> Table:
    """``first``: the row labels' header; ``paper_cols``: the paper's columns (others are marked
    extension), or None where the paper's layout is not known; ``gains``: (baseline, treatment) row keys
    whose difference the paper reports as ISDA's gain."""
    # A row the sweep has no run for is left out, not shown as if pending; a row never trained here
    # (a placeholder) stays where the paper gives a number for it.
    rows = [r for r in rows if r.ours or (r.placeholder and any(r.paper.values()))]
    per_col = ["ours", "paper (Δ)"] if with_paper else ["ours"]
    header = [first] + [f"{paper.dataset_name(ds)}: {h}" for _, ds in cols for h in per_col] + list(extra_header)
    groups: list[tuple[str, int]] = [("", 1)]
    for arch, ds in cols:
        name = paper.arch_name(arch)
        if with_paper and paper_cols is not None and (arch, ds) not in paper_cols:
            name = extension_label(name)
        if len(groups) > 1 and groups[-1][0] == name:
            groups[-1] = (name, groups[-1][1] + len(per_col))
        else:
            groups.append((name, len(per_col)))
    if extra_header:
        groups.append(("", len(extra_header)))
    cells = [{c: (Cell(r.placeholder) if r.placeholder else ours_cell(r.ours.get(c), "–")) for c in cols} for r in rows]
    for c in cols:
        bold_lowest([cs[c] for cs in cells], [r.ours.get(c) for r in rows])
    out, used = [], []
    for r, cs in zip(rows, cells):
        line = [Cell(r.label)]
        for c in cols:
            line.append(cs[c])
            if with_paper:
                pv = r.paper.get(c)
                used += [(r.label, pv)] if pv else []
                line.append(paper_delta_cell(r.ours.get(c), pv))
        out.append(line + list(r.extra))
    table = Table(key, title, header, out, groups=groups, notes=citation.notes(key, used) if with_paper else [],
                  checks=_checks(key, rows, cols, gains) if with_paper else [])
    if with_paper:
        table.notes.insert(0, "paper (Δ): the paper's mean ± std, and Δ = our mean − the paper's mean in "
                              "percentage points.")
    return finish_notes(table, notes)


def _checks(key: str, rows: list[GridRow], cols: list[Column], gains: Sequence[tuple[str, str]]) -> list[PaperCheck]:
    """Every paper number beside a cell of ours; a treatment row's check knows its baseline's."""
    treated = {t: b for b, t in gains}
    out: list[PaperCheck] = []
    for arch, ds in cols:
        experiment = f"{paper.dataset_name(ds)}, {paper.arch_name(arch)}"
        by_key: dict[str, PaperCheck] = {}
        for r in rows:
            if r.placeholder:
                continue
            base = by_key.get(treated.get(r.key, ""))
            check = check_of(key, experiment, r.label, r.ours.get((arch, ds)), r.paper.get((arch, ds)), base)
            if check is not None:
                by_key[r.key] = check
                out.append(check)
    return out


def missing_csv_note(name: str) -> str:
    return (f"The paper's own numbers for this table are not available here (–): bench/reference/{name}.csv "
            f"adds them (README: Paper numbers).")
