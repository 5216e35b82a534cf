"""Training a run again: a failed run's result.json is set aside (result.failed.json) so that it trains
again from its last checkpoint; a run whose method has changed has all its records set aside
(superseded/<n>/) so that it trains again from its first epoch. Both are put back if the launch
does not go ahead after all."""

from __future__ import annotations

from pathlib import Path

from bench.rundir.files import FAILED_RESULT_FILE, RESULT_FILE, RUN_MARKERS, SUPERSEDED_DIR
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


def set_aside(run_dir: Path) -> Path | None:
    """Move a run's records (config, metrics, checkpoint, result) into ``superseded/<n>/`` so that it
    trains again from its first epoch, the old ones kept there; the folder, or None if it held none."""
    run_dir = Path(run_dir)
    names = [n for n in (*RUN_MARKERS, FAILED_RESULT_FILE) if (run_dir / n).exists()]
    if not names:
        return None
    parent = run_dir / SUPERSEDED_DIR
    n = 1
    while (parent / str(n)).exists():
        n += 1
    folder = parent / str(n)
    folder.mkdir(parents=True)
    for name in names:
        (run_dir / name).replace(folder / name)
    return folder


def restore_aside(run_dir: Path, folder: Path) -> None:
    """Undo ``set_aside`` for a run that was not submitted after all."""
    for path in Path(folder).iterdir():
        if not (Path(run_dir) / path.name).exists():
            path.replace(Path(run_dir) / path.name)
    Path(folder).rmdir()
