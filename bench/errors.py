"""The one error type that the command line turns into a single line and exit status 2."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class ConfigError(ValueError):
    """Bad user input: names the key, the offending value and what is allowed."""

    def __init__(self, key: str, value: Any, allowed: str | Iterable[Any]):
        if not isinstance(allowed, str):
            allowed = "one of: " + ", ".join(str(a) for a in allowed)
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}: {value!r} is not allowed; {allowed}")
