"""Where each of the paper's numbers comes from: the paper table and version (NeurIPS 2019 or TPAMI)
a number's source names, the runs that table's caption says its mean ± std is over, which paper table
each report table reruns, and the notes that say so under a table. The numbers themselves are read by
:mod:`bench.report.paper`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NEURIPS = "NeurIPS 2019"
TPAMI = "TPAMI"


@dataclass(frozen=True)
class PaperTable:
    """One of the paper's tables as its caption describes it."""

    name: str  # "TPAMI Table 2"
    version: str  # NEURIPS or TPAMI
    runs: int | None  # the independent runs its caption says each mean ± std is over; None: not stated


# The tables whose captions are read here (/work/shared/reference/paper_tables/independent/ keeps each
# caption beside the transcribed numbers): NeurIPS's say "three independent experiments", TPAMI's CIFAR
# tables "five"; TPAMI's ImageNet table prints single numbers without a ±.
PAPER_TABLES: dict[str, PaperTable] = {t.name: t for t in (
    PaperTable(f"{NEURIPS} Table 1", NEURIPS, 3),
    PaperTable(f"{NEURIPS} Table 2", NEURIPS, 3),
    PaperTable(f"{TPAMI} Table 1", TPAMI, None),
    PaperTable(f"{TPAMI} Table 2", TPAMI, 5),
    PaperTable(f"{TPAMI} Table 4", TPAMI, 5),
)}

# What each report table reruns, by the table's key. The tables whose own numbers are not available
# here still show the main table's Basic and ISDA where they rerun those experiments.
REPRODUCES: dict[str, str] = {
    "cifar_main": f"{TPAMI} Table 2 (its numbers for the eight networks it shares with {NEURIPS} Table 1 are "
                  f"the same there; that caption says 3 runs, TPAMI's 5)",
    "augmentation": f"{TPAMI} Table 4 (Cutout and AutoAugment also in {NEURIPS} Table 2, with the same numbers "
                    "but for Wide-ResNet-28-10 Cutout+ISDA on CIFAR-100: 17.02 there, 16.95 in TPAMI)",
    "imagenet": f"{TPAMI} Table 1 (the journal's 300-epoch recipe)",
    "imagenet_neurips": f"the {NEURIPS} ImageNet results (120-epoch recipe); their numbers are not available here",
    "regularizers": "the paper's comparison with other regularisers; its table number and numbers are not "
                    "available here",
    "ablation": "the paper's ablation of ISDA; its table number and numbers are not available here",
    "lambda_sensitivity": "the paper's sensitivity analysis of λ0 (a figure); its numbers are not available here",
    "explicit": "the paper's comparison of explicit and implicit augmentation; its numbers are not available here",
}

_CITED = re.compile(r"\b(NeurIPS|TPAMI)\b(?:\s*20\d\d)?(?:\s+(?:Table|Tab\.)\s*(\d+))?", re.IGNORECASE)


@dataclass(frozen=True)
class PaperValue:
    """One number of the paper: its mean, its ± (None where the paper prints none) and where it is from.

    ``key`` names the number itself (reference table, dataset, network, row, metric), so that the same
    number reached from two report tables is recognised as one."""

    mean: float
    std: float | None
    source: str
    key: tuple[str, ...]

    @property
    def table(self) -> PaperTable | None:
        """The paper table ``source`` cites (the last one it names), known or not."""
        found = list(_CITED.finditer(self.source))
        if not found:
            return None
        word, number = found[-1].group(1), found[-1].group(2)
        version = NEURIPS if word.lower() == "neurips" else TPAMI
        name = f"{version} Table {number}" if number else f"{version} (table not named)"
        return PAPER_TABLES.get(name, PaperTable(name, version, None))

    @property
    def version(self) -> str:
        table = self.table
        return table.version if table else ""

    @property
    def runs(self) -> int | None:
        table = self.table
        return table.runs if table else None


def cite(value: PaperValue) -> str:
    """Where a number is from, for a reader: "TPAMI Table 2 (mean ± std over 5 runs)"."""
    table = value.table
    if table is None:
        return f"{value.source} (version not stated)"
    runs = f"mean ± std over {table.runs} runs" if table.runs else "runs per number not stated"
    if value.std is None and table.runs is None:
        runs = "single numbers, no ±"
    return f"{table.name} ({runs})"


def notes(table_key: str, used: list[tuple[str, PaperValue]]) -> list[str]:
    """What a report table says about the paper's numbers beside it: the paper table it reruns, and
    for each source the table and version of its numbers (``used``: (row or column label, number)),
    naming the rows where the numbers come from more than one source or from another table."""
    out = [f"Reproduces: {REPRODUCES[table_key]}."] if table_key in REPRODUCES else []
    by_source: dict[str, list[str]] = {}
    for label, value in used:
        labels = by_source.setdefault(value.source, [])
        if label not in labels:
            labels.append(label)
    for source, labels in sorted(by_source.items()):
        value = next(v for _, v in used if v.source == source)
        table = value.table
        borrowed = value.key[0] == "cifar_main" and table_key != "cifar_main"
        elsewhere = table is None or not REPRODUCES.get(table_key, "").startswith(table.name)
        where = f" for {', '.join(labels)}" if len(by_source) > 1 or elsewhere else ""
        same = ", the main table's numbers for the same experiments" if borrowed else ""
        out.append(f"Paper numbers{where}: {cite(value)}{same}; source: {source}.")
    return out
