"""Which runs make one table cell: a method's *variants* and the one a paper-style table compares.

A cell is one experiment. Runs of one method that differ in any field of the experiment (λ0,
cov_mode, lr, recipe, a plugin's parameter, ...) are separate variants, unless the value differs
only between architectures, as recipes' values do. The experiment's fields are those the code
knows (:func:`bench.experiment.runconfig.experiment_keys`) and every other key the runs' config.yaml files hold
(``runs.attrs["config_keys"]``, from :func:`bench.results.collect.collect`), so a report whose plugin is
not imported still keeps its parameter's values apart.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bench import methods
from bench.experiment import runconfig
from bench.experiment.recipes import recipe_for
from bench.report import paper
from bench.rundir.state import RunState

# Fields that place a run in a table (row, column, seed) rather than make it another experiment.
# Precision is left out too: result.json holds the one the device chose, a missing run's config "auto".
_NOT_VARIANTS = frozenset({"dataset", "arch", "method", "seed", "precision", "run_id"})
_LABELS = {"lambda0": "λ0", "focal_gamma": "γ", "focal_alpha": "α", "cov_mode": "cov",
           "lambda_schedule": "λ schedule", "explicit_samples": "M"}


def fmt_value(v: object) -> str:
    """A run field's value as people write it: 0.001 (not 0.0010000000000000002), 1 (not 1.0), – for none."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (int, float, np.integer, np.floating)):
        return f"{float(v):.6g}"
    return str(v)


def label_of(key: str) -> str:
    return _LABELS.get(key, key)


def variant_keys(df: pd.DataFrame) -> tuple[str, ...]:
    """The fields that make runs of one method different experiments (see the module's docstring)."""
    scheduling = set(runconfig.FIELD_NAMES) - set(runconfig.EXPERIMENT_FIELDS)
    known = [k for k in runconfig.experiment_keys() if k not in _NOT_VARIANTS]
    extra = sorted(set(df.attrs.get("config_keys", ())) - set(known) - _NOT_VARIANTS - scheduling)
    return tuple(known + extra)


def _norm(v: object) -> object:
    """A value that compares and hashes as its meaning: lists (or their JSON text) as tuples, numbers as floats."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, str) and v.startswith("["):
        try:
            return _norm(json.loads(v))
        except ValueError:
            return v
    if isinstance(v, (list, tuple)):
        return tuple(_norm(x) for x in v)
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    return v


def _filled(df: pd.DataFrame, key: str) -> list[object]:
    out = []
    defaults: dict[tuple[str, str], object] = {}  # the runs of a table share a few (dataset, arch) pairs
    for v, ds, arch in zip(df[key].tolist(), df["dataset"].tolist(), df["arch"].tolist()):
        v = _norm(v)
        if v is None:
            pair = (str(ds), str(arch))
            if pair not in defaults:
                defaults[pair] = _norm(default_value(key, *pair))
            v = defaults[pair]
        out.append(v)
    return out


def filled(df: pd.DataFrame, key: str) -> pd.Series:
    """``df[key]`` as comparable values, a missing one read as the default of its run's (dataset,
    arch): runs recorded before a field existed ran what is now its default."""
    return pd.Series(_filled(df, key), index=df.index, dtype=object)


def varying_keys(sub: pd.DataFrame, keys: Sequence[str] | None = None) -> list[str]:
    """The variant fields that take more than one value among the runs of one (dataset, arch).

    Values that differ only between architectures (each recipe's epochs and lr) make no variants.
    """
    out = []
    pairs = list(zip(sub["dataset"].astype(str), sub["arch"].astype(str)))
    for k in variant_keys(sub) if keys is None else keys:
        if k not in sub.columns:
            continue
        raw = sub[k].tolist()
        if raw and _norm(raw[0]) is not None and all(v == raw[0] for v in raw):
            continue  # one value, set in every run: most fields of a sweep
        seen: dict[tuple[str, str], set] = {}
        for pair, value in zip(pairs, _filled(sub, k)):
            seen.setdefault(pair, set()).add(value)
        if any(len(values) > 1 for values in seen.values()):
            out.append(k)
    return out


@dataclass(frozen=True)
class Variant:
    method: str
    params: tuple[tuple[str, object], ...] = ()

    def label(self) -> str:
        name = paper.method_name(self.method)
        if not self.params:
            return name
        inner = ", ".join(f"{label_of(k)}={fmt_value(v)}" for k, v in self.params)
        return f"{name} ({inner})"

    def select(self, df: pd.DataFrame) -> pd.DataFrame:
        m = (df["method"] == self.method).to_numpy(dtype=bool, copy=True)
        for k, v in self.params:
            m &= np.fromiter((x == v for x in _filled(df, k)), dtype=bool, count=len(df))
        return df[m]


def _combos(sub: pd.DataFrame, keys: list[str]) -> list[tuple[object, ...]]:
    combos = set(zip(*(_filled(sub, k) for k in keys)))
    # Numbers in numeric order (λ0 0.25 before 1), text alphabetically, blanks last.
    return sorted(combos, key=lambda t: [(x is None, isinstance(x, str), x if isinstance(x, float) else 0.0,
                                          str(x)) for x in t])


def method_variants(df: pd.DataFrame, exclude: Sequence[str] = ()) -> list[Variant]:
    """One variant per method, or one per distinct combination of the fields that vary within it
    (``exclude``: fields a figure puts on its x axis instead)."""
    out: list[Variant] = []
    keys_all = [k for k in variant_keys(df) if k not in exclude]
    for method in sorted(df["method"].dropna().unique(), key=paper.method_sort_key):
        sub = df[df["method"] == method]
        keys = varying_keys(sub, keys_all)
        if not keys:
            out.append(Variant(str(method)))
            continue
        out.extend(Variant(str(method), tuple(zip(keys, combo))) for combo in _combos(sub, keys))
    return out


def default_value(key: str, dataset: str, arch: str) -> Any:
    """What a run of (dataset, arch) takes for ``key`` when nobody sets it: the paper's recipe
    (λ0 0.5 on CIFAR, 7.5 for ResNet-50 on ImageNet, ...), else the method parameter's or the run
    field's default."""
    recipe = recipe_for(dataset, arch)
    if hasattr(recipe, key):
        return getattr(recipe, key)
    if key in methods.param_names():
        return methods.param(key).default_for(dataset, arch)
    field = {f.name: f for f in dataclasses.fields(runconfig.RunConfig)}.get(key)
    return field.default if field is not None and field.default is not dataclasses.MISSING else None


def is_default(key: str, value: object, dataset: str, arch: str) -> bool:
    """A missing value counts as the default: the run was recorded before the field existed."""
    value = _norm(value)
    return value is None or value == _norm(default_value(key, dataset, arch))


def pick_variant(sub: pd.DataFrame, method: str, notes: set[str]) -> pd.DataFrame:
    """The runs of ``method`` that a paper-style table compares, among one (dataset, arch)'s.

    When the sweep holds several variants (several λ0, say), the one with the most completed runs;
    ties go to the variant closest to the recipe's defaults: fewest fields off their default, then
    λ0 nearest the recipe's (0.5 on CIFAR, 7.5 for ResNet-50 on ImageNet). The choice is written
    into the table's notes."""
    runs = sub[sub["method"] == method]
    keys = varying_keys(runs)
    if not keys or runs.empty:
        return runs
    dataset, arch = str(runs["dataset"].iloc[0]), str(runs["arch"].iloc[0])
    lam_default = float(default_value("lambda0", dataset, arch))
    best_key, best = None, None
    for combo in _combos(runs, keys):
        grp = Variant(method, tuple(zip(keys, combo))).select(runs)
        done = int((grp["status"] == RunState.COMPLETED).sum())
        off = sum(not is_default(k, v, dataset, arch) for k, v in zip(keys, combo))
        lam = pd.to_numeric(grp["lambda0"], errors="coerce").iloc[0] if "lambda0" in grp else math.nan
        key = (-done, off, abs(lam - lam_default) if math.isfinite(lam) else math.inf)
        if best_key is None or key < best_key:
            best_key, best = key, grp
    assert best is not None
    chosen = ", ".join(f"{label_of(k)}={fmt_value(filled(best, k).iloc[0])}" for k in keys)
    notes.add(
        f"{paper.method_name(method)} uses the runs with {chosen} (the sweep has several; the one with most "
        f"completed runs, then the one closest to the recipe's defaults: λ0 = {fmt_value(lam_default)} here)."
    )
    return best


# What two cells must share for one to be called lower than the other: the training data and budget.
# A method's own parameters, and the schedule, dropout or policy its recipe gives it (AutoAugment's
# cosine schedule, RandAugment's N and M), may differ between cells that are compared.
SETTING_KEYS = ("train_size", "epochs", "batch_size", "world_size", "recipe")


def setting_of(runs: pd.DataFrame) -> tuple[tuple[str, tuple[object, ...]], ...]:
    """The values of each SETTING_KEYS field among ``runs`` (a missing one read as its default):
    cells with equal settings are comparable."""
    if runs.empty:
        return ()
    out = []
    for key in SETTING_KEYS:
        values = (_filled(runs, key) if key in runs else
                  [_norm(default_value(key, str(d), str(a))) for d, a in zip(runs["dataset"], runs["arch"])])
        out.append((key, tuple(sorted(set(values), key=repr))))
    return tuple(out)


# The training budget of the paper's numbers: a cell trained with another is not the paper's experiment.
BUDGET_KEYS = ("train_size", "epochs", "batch_size")


def off_recipe(networks: frozenset[tuple[str, str]], setting: tuple[tuple[str, tuple[object, ...]], ...]
               ) -> tuple[str, ...]:
    """How the runs of one cell (``networks``: its (dataset, arch) pairs; ``setting``: theirs, as
    :func:`setting_of` gives it) trained otherwise than the paper's recipe: one phrase per budget field
    whose values differ ("epochs 12 (paper: 300)"); () when they follow it, or span several networks."""
    values = dict(setting)
    if len(networks) != 1 or len(values.get("recipe", ())) > 1:
        return ()
    (dataset, arch), name = next(iter(networks)), str((values.get("recipe") or (runconfig.RunConfig.recipe,))[0])
    recipe = recipe_for(dataset, arch, name)
    paper = {"train_size": None, "epochs": float(recipe.epochs), "batch_size": float(recipe.batch_size)}
    out = []
    for key in BUDGET_KEYS:
        other = [v for v in values.get(key, ()) if v != paper[key]]
        if other:
            want = "the whole training set" if paper[key] is None else f"{fmt_value(paper[key])}"
            out.append(f"{label_of(key)} {'/'.join(fmt_value(v) for v in other)} (paper: {want})")
    return tuple(out)


def recipes_of(runs: pd.DataFrame) -> pd.Series:
    """Each run's recipe name; runs recorded before the field existed ran the journal's."""
    default = runconfig.RunConfig.recipe
    if "recipe" not in runs:
        return pd.Series(default, index=runs.index, dtype=object)
    return runs["recipe"].map(lambda r: default if r is None or pd.isna(r) else str(r))
