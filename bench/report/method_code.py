"""What a report says of plugin methods: the name a method declares for reports, and a warning where
one table cell holds runs computed by two versions of its method's code (result.json's
``method_code``, bench.train.result)."""

from __future__ import annotations

import pandas as pd

from bench.rundir.state import ENDED


def declared_name(loss: str) -> str | None:
    """The display name the loss's plugin declared (register_loss(..., display=)), if any."""
    from bench.methods import get_loss

    try:
        return get_loss(loss).display or None
    except KeyError:  # a method whose plugin is not loaded here: its own name
        return None


def mixed_code_lines(runs: pd.DataFrame) -> list[tuple[str, bool]]:
    """A warning line for each (dataset, network, method) whose ended runs record more than one
    version of the method's code: their mean would mix two methods."""
    if "method_code" not in runs or runs.empty:
        return []
    ended = runs[runs["status"].isin([str(s) for s in ENDED]) & runs["method_code"].notna()]
    lines = []
    for (dataset, arch, method), cell in ended.groupby(["dataset", "arch", "method"], sort=True):
        counts = cell["method_code"].astype(str).value_counts()
        if len(counts) > 1:
            versions = ", ".join(f"{code}: {n} run{'s' if n > 1 else ''}" for code, n in sorted(counts.items()))
            lines.append((f"Mixed versions of a method: {method} on {dataset} / {arch} has runs of "
                          f"{len(counts)} versions of its code ({versions}); `isda-bench launch` trains again "
                          "those of another version than the one installed.", True))
    return lines
