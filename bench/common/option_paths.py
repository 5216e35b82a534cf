"""Options that only some paths of a command use: each command's table says, for every such option,
on which path (the facts of the command line, once read) the command uses it, and an option given
where the command then goes another way is refused as one line instead of being ignored.

The tables live with their commands (``bench.cli.plans`` for ``train``, ``launch`` and ``status``,
``bench.perf.plans`` for the benchmarks); the rule is here, once.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.common.errors import ConfigError


@dataclass(frozen=True)
class Uses:
    """The path on which a command uses an option: the facts of that path, and how a user asks for it."""

    facts: Mapping[str, tuple[Any, ...]]  # fact → the values on which the path uses the option
    path: str  # e.g. "with --cluster local", "without --shape"


def check_option_paths(table: Mapping[str, Uses], args: argparse.Namespace, facts: Mapping[str, Any]) -> None:
    """Refuse each option of ``table`` that ``args`` gives (not None, not False) on a path whose
    ``facts`` do not use it; the line names the path the option belongs to, and this one's facts."""
    for option, uses in table.items():
        value = getattr(args, option)
        if value is None or value is False:
            continue
        unmet = [fact for fact, values in uses.facts.items() if facts[fact] not in values]
        if unmet:
            now = [f"the {fact} is {facts[fact]}" for fact in unmet if not isinstance(facts[fact], bool)]
            raise ConfigError("--" + option.replace("_", "-"), value, f"only {uses.path}"
                              + (f" ({'; '.join(now)})" if now else ""))
