"""Retrying a failed run: its result.json is set aside (result.failed.json) so that it trains again from its
last checkpoint, and put back if the launch does not go ahead after all."""

from __future__ import annotations

from pathlib import Path

from bench.rundir.files import FAILED_RESULT_FILE, RESULT_FILE
from bench.rundir.state import RunState, run_state


def reset_failed(run_dir: Path) -> bool:
    """Set a failed run's result.json aside; True if there was one. Any other run is left as it is."""
    result = Path(run_dir) / RESULT_FILE
    if result.exists() and run_state(run_dir) == RunState.FAILED:
        result.replace(Path(run_dir) / FAILED_RESULT_FILE)
        return True
    return False


def restore_failed(run_dir: Path) -> None:
    """Undo ``reset_failed`` for a run that was not submitted after all."""
    aside = Path(run_dir) / FAILED_RESULT_FILE
    if aside.exists() and not (Path(run_dir) / RESULT_FILE).exists():
        aside.replace(Path(run_dir) / RESULT_FILE)
