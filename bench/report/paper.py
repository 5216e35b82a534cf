"""The paper's numbers (package data in ``bench/reference/``) and the display names that link them to ours.

Runs name things the way the code does (``cifar100``, ``wrn28_10``, ``isda+cutout``); the paper's
tables name them the way the paper does (``CIFAR-100``, ``Wide-ResNet-28-10``, ``Cutout+ISDA``).
Every mapping between the two lives here, so that a report and a paper table can never disagree
about what "the same cell" means. Unknown raw names fall back to themselves.
"""

from __future__ import annotations

import io
import math
import os
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from bench.common.errors import ConfigError
from bench.experiment.archs import ARCHS

DATASET_NAMES: dict[str, str] = {
    "digits": "Digits",
    "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100",
    "fashion_mnist": "Fashion-MNIST",
    "imagenet": "ImageNet",
    "synthetic": "Synthetic",
}

# "Basic (CE)" is the main table's wording; the other tables say "CE".
METHOD_NAMES: dict[str, str] = {
    "ce": "CE",
    "isda": "ISDA",
    "focal": "Focal",
    "cutout": "Cutout",
    "autoaugment": "AutoAugment",
    "randaugment": "RandAugment",
    "isda+cutout": "Cutout+ISDA",
    "isda+autoaugment": "AutoAugment+ISDA",
    "isda+randaugment": "RandAugment+ISDA",
    "large_margin": "Large Margin",
    "disturblabel": "Disturb Label",
    "center": "Center Loss",
    "lq": "Lq Loss",
    "explicit": "Explicit",
    "isda+dropout": "ISDA+Dropout",
    "ce+dropout": "CE+Dropout",
    "dropout": "Dropout",
}
MAIN_TABLE_CE = "Basic (CE)"

ARCH_NAMES: dict[str, str] = {name: arch.paper_name for name, arch in ARCHS.items()}

# Order in which method columns appear: baselines first, then ISDA and its combinations.
METHOD_ORDER: tuple[str, ...] = (
    "ce",
    "ce+dropout",
    "dropout",
    "large_margin",
    "disturblabel",
    "focal",
    "center",
    "lq",
    "explicit",
    "cutout",
    "autoaugment",
    "randaugment",
    "isda",
    "isda+cutout",
    "isda+autoaugment",
    "isda+randaugment",
    "isda+dropout",
)

# Which version of the augmentation table counts: the journal (TPAMI) one. The other rows in
# cifar_augmentation.csv are earlier drafts, kept in the CSV for provenance only.
AUGMENTATION_VERSION = "TPAMI"
IMAGENET_BASIC = "Basic (authors' 300ep cosine impl.)"


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


def dataset_name(raw: object) -> str:
    return DATASET_NAMES.get(str(raw), str(raw))


def arch_name(raw: object) -> str:
    return ARCH_NAMES.get(str(raw), str(raw))


def method_name(raw: object, main_table: bool = False) -> str:
    """Display name of a method; ``main_table`` uses the main table's "Basic (CE)" for ``ce``."""
    raw = str(raw)
    if raw == "ce" and main_table:
        return MAIN_TABLE_CE
    if raw in METHOD_NAMES:
        return METHOD_NAMES[raw]
    # Combinations not in the paper (e.g. focal+cutout) follow its "Augmentation+Loss" pattern.
    if "+" in raw:
        loss, aug = raw.split("+", 1)
        return f"{METHOD_NAMES.get(aug, aug)}+{METHOD_NAMES.get(loss, loss)}"
    return raw


def method_sort_key(raw: object) -> tuple[int, str]:
    raw = str(raw)
    return (METHOD_ORDER.index(raw) if raw in METHOD_ORDER else len(METHOD_ORDER), raw)


# A folder whose CSVs are read before the shipped ones of the same name: the paper's numbers that
# do not ship (see OPTIONAL_LAYOUTS), added without editing an installed package.
REFERENCE_ENV = "ISDA_BENCH_REFERENCE"
# The paper's tables whose numbers are not available here: a report shows "–" for them until a CSV
# of this name and with these columns is put into bench/reference/ (or $ISDA_BENCH_REFERENCE).
# dataset and arch take our names (cifar10, wrn28_10) or the paper's (CIFAR-10, Wide-ResNet-28-10);
# method takes our method names; error_std may be empty.
OPTIONAL_LAYOUTS: dict[str, tuple[str, ...]] = {
    "regularizers": ("dataset", "arch", "method", "error_mean", "error_std", "source"),
    "ablation": ("dataset", "arch", "setting", "error_mean", "error_std", "source"),
    "lambda_sensitivity": ("dataset", "arch", "lambda0", "error_mean", "error_std", "source"),
    "explicit": ("dataset", "arch", "method", "explicit_samples", "error_mean", "error_std", "source"),
    "imagenet_neurips": ("arch", "method", "top1_error", "top5_error", "source"),
}


def _source(name: str) -> tuple[str, str] | None:
    """(where, text) of reference table ``name``: $ISDA_BENCH_REFERENCE's copy, else the shipped one."""
    folder = os.environ.get(REFERENCE_ENV)
    if folder and (Path(folder) / name).is_file():
        path = Path(folder) / name
        return str(path), path.read_text(encoding="utf-8")
    shipped = resources.files("bench").joinpath("reference", name)
    if shipped.is_file():
        return f"bench/reference/{name}", shipped.read_text(encoding="utf-8")
    return None


@cache
def _parse(where: str, text: str) -> pd.DataFrame:
    try:
        return pd.read_csv(io.StringIO(text))
    except (ValueError, pd.errors.ParserError) as exc:
        raise ConfigError(where, "its content", f"a CSV file ({exc})") from exc


def load_table(name: str) -> pd.DataFrame:
    """One of the shipped paper tables (``cifar_main``, ``cifar_augmentation``, ``imagenet``), a copy."""
    found = _source(f"{name}.csv")
    if found is None:
        raise FileNotFoundError(f"bench/reference/{name}.csv")
    return _parse(*found).copy()


def optional_table(name: str) -> pd.DataFrame | None:
    """One of :data:`OPTIONAL_LAYOUTS`' tables if its CSV exists (a copy), else None. A CSV without
    the layout's columns is a :class:`ConfigError` naming the file and the columns it needs."""
    found = _source(f"{name}.csv")
    if found is None:
        return None
    df = _parse(*found)
    missing = [c for c in OPTIONAL_LAYOUTS[name] if c not in df.columns]
    if missing:
        raise ConfigError(found[0], f"no column {', '.join(missing)}",
                          f"its columns must be: {','.join(OPTIONAL_LAYOUTS[name])}")
    return df.copy()


def _matches(column: pd.Series, value: object) -> pd.Series:
    if value is None:
        return column.isna()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return pd.to_numeric(column, errors="coerce") == float(value)
    return column.astype(str).str.strip() == str(value)


def optional_value(name: str, dataset: str, arch: str, **match: object) -> PaperValue | None:
    """The paper's error for one cell of an optional table (by raw or display names, and the
    table's own columns in ``match``, e.g. ``method="focal"``), or None. Only that table's CSV is read:
    :func:`lookup` adds the main table's numbers for the rows that rerun its experiments."""
    df = optional_table(name)
    if df is None:
        return None
    same = (df["dataset"].map(dataset_name) == dataset_name(dataset)) & (df["arch"].map(arch_name) == arch_name(arch))
    hit = df[same]
    for key, value in match.items():
        hit = hit[_matches(hit[key], value)]
    if hit.empty:
        return None
    row = hit.iloc[0]
    which = (name, dataset_name(dataset), arch_name(arch), *(f"{k}={v}" for k, v in sorted(match.items())))
    return PaperValue(float(row["error_mean"]), _nan_to_none(row["error_std"]), str(row["source"]), which)


# The rows of the smaller tables that rerun an experiment of the main table: the paper's Basic (CE) and
# ISDA on the same network and dataset with the same recipe, whose numbers the main table gives. Per
# table: the column that names a row, and which of its values are the main table's CE and ISDA.
MAIN_TABLE_ROWS: dict[str, tuple[str, dict[str, str]]] = {
    "regularizers": ("method", {"ce": "ce", "isda": "isda"}),
    "ablation": ("setting", {"ce": "ce", "isda": "isda"}),
    "explicit": ("method", {"isda": "isda"}),
}


def lookup(name: str, dataset: str, arch: str, **match: object) -> PaperValue | None:
    """The one lookup of a paper number that every table and figure uses.

    ``name`` is a reference table: ``cifar_main`` and ``cifar_augmentation`` (``method=`` our method name)
    or one of :data:`OPTIONAL_LAYOUTS` (its own columns in ``match``). A row of an optional table that
    reruns a main-table experiment (:data:`MAIN_TABLE_ROWS`) takes the main table's number unless that
    table's CSV gives one of its own."""
    if name in ("cifar_main", "cifar_augmentation"):
        return paper_value(dataset, arch, str(match["method"]))
    found = optional_value(name, dataset, arch, **match)
    if found is not None or name not in MAIN_TABLE_ROWS:
        return found
    column, rows = MAIN_TABLE_ROWS[name]
    if set(match) == {column} and str(match[column]) in rows:
        return paper_value(dataset, arch, rows[str(match[column])])
    return None


def optional_pairs(name: str, **match: object) -> list[tuple[str, str]]:
    """(raw dataset, raw arch) of every row of an optional table (matching ``match``), in file order."""
    df = optional_table(name)
    if df is None:
        return []
    for key, value in match.items():
        df = df[_matches(df[key], value)]
    return list(dict.fromkeys((raw_dataset(str(d)), raw_arch(arch_name(a))) for d, a in zip(df["dataset"], df["arch"])))


def cifar_main() -> pd.DataFrame:
    return load_table("cifar_main")


def cifar_augmentation(version: str | None = AUGMENTATION_VERSION) -> pd.DataFrame:
    df = load_table("cifar_augmentation")
    return df if version is None else df[df["version"] == version].reset_index(drop=True)


def imagenet() -> pd.DataFrame:
    return load_table("imagenet")


def _nan_to_none(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def paper_value(dataset: str, arch: str, method: str) -> PaperValue | None:
    """The paper's CIFAR number for one cell, by *raw* names, or None.

    CE and ISDA come from the main table; the augmentation baselines and their ISDA combinations
    from the journal's augmentation table. Focal has no number in the shipped tables.
    """
    ds, ar = dataset_name(dataset), arch_name(arch)
    if method in ("ce", "isda"):
        name, table, label = "cifar_main", cifar_main(), method_name(method, main_table=True)
    else:
        name, table, label = "cifar_augmentation", cifar_augmentation(), method_name(method)
    hit = table[(table["dataset"] == ds) & (table["arch"] == ar) & (table["method"] == label)]
    if hit.empty:
        return None
    row = hit.iloc[0]
    return PaperValue(float(row["error_mean"]), _nan_to_none(row["error_std"]), str(row["source"]),
                      (name, ds, ar, f"method={method}"))


def paper_params(arch: str) -> str | None:
    """The paper's rounded parameter count ("0.5M") for an architecture, by raw or display name."""
    ar = arch_name(arch)
    for table in (cifar_main(), imagenet()):
        hit = table[table["arch"] == ar]
        if not hit.empty:
            return str(hit.iloc[0]["params"])
    return None


def paper_imagenet(arch: str, method: str, recipe: str = "tpami") -> dict | None:
    """ImageNet row for ``ce`` (the authors' own baseline) or ``isda``: ``top1`` and ``top5``
    (:class:`PaperValue` or None; single numbers without ±), ``extra_wall_time_pct`` and ``source``.
    ``recipe`` "tpami" reads the journal's table (imagenet.csv), "neurips" the conference's
    (imagenet_neurips.csv, when present)."""
    label: str | None
    if recipe == "neurips":
        name, table, label = "imagenet_neurips", optional_table("imagenet_neurips"), method
    elif recipe == "tpami":
        name, table, label = "imagenet", imagenet(), {"ce": IMAGENET_BASIC, "isda": "ISDA"}.get(method)
    else:
        return None
    if table is None or label is None:
        return None
    hit = table[(table["arch"].map(arch_name) == arch_name(arch)) & (table["method"].astype(str) == label)]
    if hit.empty:
        return None
    row = hit.iloc[0]
    extra = row.get("extra_wall_time_8xV100")
    extra_pct = None if extra is None or pd.isna(extra) else float(str(extra).rstrip("%"))
    source = str(row["source"])

    def value(metric: str) -> PaperValue | None:
        mean = _nan_to_none(row[f"{metric}_error"])
        return None if mean is None else PaperValue(mean, None, source,
                                                    (name, "ImageNet", arch_name(arch), f"method={method}", metric))

    return {"top1": value("top1"), "top5": value("top5"), "extra_wall_time_pct": extra_pct, "source": source}


def main_table_archs(dataset: str) -> list[str]:
    """Display names of the architectures the paper's main table lists for ``dataset`` (raw name)."""
    table = cifar_main()
    return list(dict.fromkeys(table.loc[table["dataset"] == dataset_name(dataset), "arch"]))


def raw_dataset(display: str) -> str:
    """Inverse of :func:`dataset_name` (falls back to the name itself)."""
    for raw, disp in DATASET_NAMES.items():
        if disp == display:
            return raw
    return display


def raw_arch(display: str) -> str:
    """Inverse of :func:`arch_name` (falls back to the display name itself)."""
    for raw, disp in ARCH_NAMES.items():
        if disp == display:
            return raw
    return display
