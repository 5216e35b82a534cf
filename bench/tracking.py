"""Experiment tracking. Placeholder until W&B support lands: every mode tracks nothing."""

from __future__ import annotations

from typing import Any


def make_tracker(mode: str) -> Any:
    return None
