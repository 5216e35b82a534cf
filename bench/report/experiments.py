"""The experiments of one network: runs of one (dataset, arch) that differ in a field every method
ran at several values (a train size, ImageNet's recipe) are separate experiments, each drawn apart
in the figures (its own panel, its own gap), never as two variants of each method in one panel.

A field that varies within one method only (ISDA's λ0, the ablation's cov_mode) makes variants of
that method instead (:mod:`bench.report.variants`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bench.report.model import fmt_value
from bench.report.variants import filled, is_default, label_of, varying_keys


@dataclass(frozen=True)
class Experiment:
    params: tuple[tuple[str, object], ...]
    runs: pd.DataFrame

    @property
    def name(self) -> str:
        """"" for a network's only experiment, else its values: "train_size=1000"."""
        return ", ".join(f"{label_of(k)}={fmt_value(v)}" for k, v in self.params)


def experiment_keys(sub: pd.DataFrame) -> list[str]:
    """The fields of one (dataset, arch)'s runs that take several values within two methods or more."""
    methods = [grp for _, grp in sub.groupby("method")]
    return [k for k in varying_keys(sub) if sum(len(set(filled(grp, k))) > 1 for grp in methods) >= 2]


def _order(params: tuple[tuple[str, object], ...], ds: str, arch: str) -> tuple:
    # The recipe's defaults first (the journal's ImageNet recipe), then numbers in order, then text.
    off = sum(not is_default(k, v, ds, arch) for k, v in params)
    return (off, [(isinstance(v, str), v if isinstance(v, float) else 0.0, str(v)) for _, v in params])


def experiments(sub: pd.DataFrame) -> list[Experiment]:
    """The experiments of one (dataset, arch)'s runs, the recipe's defaults first."""
    if sub.empty:
        return []
    keys = experiment_keys(sub)
    if not keys:
        return [Experiment((), sub)]
    values = pd.Series(list(zip(*(filled(sub, k) for k in keys))), index=sub.index, dtype=object)
    ds, arch = str(sub["dataset"].iloc[0]), str(sub["arch"].iloc[0])
    out = [Experiment(tuple(zip(keys, combo)), sub[values.map(lambda c, combo=combo: c == combo).astype(bool)])
           for combo in dict.fromkeys(values)]
    return sorted(out, key=lambda e: _order(e.params, ds, arch))
