"""The paper's numbers (package data in ``bench/reference/``) and the display names that link them to ours.

Runs name things the way the code does (``cifar100``, ``wrn28_10``, ``isda+cutout``); the paper's
tables name them the way the paper does (``CIFAR-100``, ``Wide-ResNet-28-10``, ``Cutout+ISDA``).
Every mapping between the two lives here, so that a report and a paper table can never disagree
about what "the same cell" means. Unknown raw names fall back to themselves. :func:`lookup` is the one
way every table and figure reads a paper number; where each number comes from (its table, version and
runs) is :mod:`bench.report.citation`'s.
"""

from __future__ import annotations

import io
import math
import os
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from bench.common.errors import ConfigError
from bench.experiment.archs import ARCHS
from bench.report.citation import PaperValue
from bench.report.method_code import declared_name

DATASET_NAMES: dict[str, str] = {
    "digits": "Digits",
    "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100",
    "fashion_mnist": "Fashion-MNIST",
    "imagenet": "ImageNet",
    "synthetic": "Synthetic",
}

# One display name per method, in every table, figure and note. The paper calls plain cross-entropy
# "Basic" (its main table's row is "Basic (CE)", the label its CSV matches: CSV_METHOD_LABELS).
METHOD_NAMES: dict[str, str] = {
    "ce": "CE",
    "isda": "ISDA",
    "focal": "Focal Loss",
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
# How the paper's main table (bench/reference/cifar_main.csv) labels a method where it differs.
CSV_METHOD_LABELS: dict[str, str] = {"ce": "Basic (CE)"}

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


def dataset_name(raw: object) -> str:
    return DATASET_NAMES.get(str(raw), str(raw))


def arch_name(raw: object) -> str:
    return ARCH_NAMES.get(str(raw), str(raw))


def method_name(raw: object) -> str:
    """The one display name of a method (tables, figures, notes)."""
    raw = str(raw)
    if raw in METHOD_NAMES:
        return METHOD_NAMES[raw]
    # Combinations not in the paper (e.g. focal+cutout) follow its "Augmentation+Loss" pattern; a
    # plugin's loss is named as its plugin declares.
    if "+" in raw:
        loss, aug = raw.split("+", 1)
        return f"{METHOD_NAMES.get(aug, aug)}+{METHOD_NAMES.get(loss) or declared_name(loss) or loss}"
    return declared_name(raw) or raw


def method_sort_key(raw: object) -> tuple[int, str]:
    raw = str(raw)
    return (METHOD_ORDER.index(raw) if raw in METHOD_ORDER else len(METHOD_ORDER), raw)


def arch_order() -> dict[str, int]:
    """Every known architecture's display name → its place: the paper's own row order (its main
    table, then ImageNet, then the augmentation table), then the architecture facts' order."""
    names = [a for name in ("cifar_main", "imagenet", "cifar_augmentation") for a in _arch_column(name)]
    names += [arch.paper_name for arch in ARCHS.values()]
    return {name: i for i, name in enumerate(dict.fromkeys(names))}


def _arch_column(name: str) -> list[str]:
    found = _source(f"{name}.csv")
    return [] if found is None else [str(a) for a in _parse(*found)["arch"]]


def arch_sort_key(raw: object, order: dict[str, int] | None = None) -> tuple[int, str]:
    """Sorts architectures (raw or display names) in the paper's order; unknown ones after, by name.
    ``order``: :func:`arch_order`'s result, when sorting many."""
    order = arch_order() if order is None else order
    name = arch_name(raw)
    return (order.get(name, len(order)), name)


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


def optional_points(name: str, dataset: str, arch: str, column: str, **match: object) -> list[tuple[float, PaperValue]]:
    """Every number an optional table gives for one network and dataset along ``column`` (λ0, M),
    sorted by that value: the paper's points of a figure, whichever values the sweep ran."""
    df = optional_table(name)
    if df is None:
        return []
    same = (df["dataset"].map(dataset_name) == dataset_name(dataset)) & (df["arch"].map(arch_name) == arch_name(arch))
    xs = sorted({float(x) for x in pd.to_numeric(df.loc[same, column], errors="coerce").dropna()})
    points = [(x, optional_value(name, dataset, arch, **match, **{column: x})) for x in xs]
    return [(x, v) for x, v in points if v is not None]


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
        name, table, label = "cifar_main", cifar_main(), CSV_METHOD_LABELS.get(method, method_name(method))
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
