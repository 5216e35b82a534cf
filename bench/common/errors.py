"""Bad input as one line and exit status 2: the error type the command line reports, and an
argument parser that reports its own errors the same way."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any, NoReturn


class ConfigError(ValueError):
    """Bad user input: names the key, the offending value and what is allowed, on one line."""

    def __init__(self, key: str, value: Any, allowed: str | Iterable[Any]):
        if not isinstance(allowed, str):
            allowed = "one of: " + ", ".join(str(a) for a in allowed)
        allowed = " ".join(allowed.split())  # texts quoted from elsewhere (a parser, sbatch) may span lines
        key = key if str(key).isprintable() else repr(key)  # a --set key is the user's text
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}: {value!r} is not allowed; {allowed}")


class OneLineParser(argparse.ArgumentParser):
    """argparse, with its errors as one line (no usage block); sub-parsers inherit it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")
