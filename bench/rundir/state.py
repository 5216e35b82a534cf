"""The one vocabulary of run states (RunState), what a run directory alone says of its run, and epochs done.

Every part that names a run's state uses RunState: ``plan`` and ``launch`` decide on it, ``status`` merges
it with the scheduler's view (bench.launch.status, which adds PREEMPTED and REQUEUED), results and
reports count runs by it. Read from the directory alone (``run_state``):

    COMPLETED | DIVERGED | FAILED   result.json exists; its ``status`` (a damaged or unknown one: FAILED,
                                    and so is "completed" beside a RESULT_ERROR_KEY that is not a number)
    RUNNING                         no result.json, and a process holds the run lock
    INTERRUPTED                     no result.json, nobody on it, an epoch checkpoint to resume from
    PENDING                         nothing to resume from: never started, or no folder at all
"""

from __future__ import annotations

import math
from enum import StrEnum
from pathlib import Path
from typing import Any

from bench.rundir.files import CHECKPOINT_FILE, read_result
from bench.rundir.lock import lock_held
from bench.rundir.metrics import rows_written


class RunState(StrEnum):
    """A run's state; a member is its own lower-case name as a string. Listed in the order reports give them."""

    COMPLETED = "completed"  # result.json: every epoch trained
    DIVERGED = "diverged"  # result.json: a loss became non-finite; no error to report
    FAILED = "failed"  # result.json: an exception ended it, or its job ended without a result
    RUNNING = "running"  # a process trains it now
    PREEMPTED = "preempted"  # SLURM preempted its job; it resumes from its checkpoint
    REQUEUED = "requeued"  # its job was requeued (time limit, or from outside) and waits to resume
    INTERRUPTED = "interrupted"  # stopped with a checkpoint and no live job: a relaunch resumes it
    PENDING = "pending"  # not started (or queued and not started yet)

    @property
    def ended(self) -> bool:
        """Whether the run has its result: nothing will train it again (unless a failed one is retried)."""
        return self in ENDED


ENDED = frozenset({RunState.COMPLETED, RunState.DIVERGED, RunState.FAILED})
# The number a completed run's result.json is for (bench.train.result): the last-10-epoch test error.
RESULT_ERROR_KEY = "last10_test_error"


def result_state(result: dict[str, Any]) -> RunState:
    """The state result.json records; a status that is not one of the ended states counts as FAILED,
    and so does "completed" with a RESULT_ERROR_KEY that is there but not a finite number (damaged:
    the run has no result to report, and ``launch --retry-failed`` trains it again)."""
    status = result.get("status")
    if status not in ENDED:
        return RunState.FAILED
    if status == RunState.COMPLETED and RESULT_ERROR_KEY in result:
        value = result[RESULT_ERROR_KEY]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return RunState.FAILED
    return RunState(status)


def run_state(run_dir: Path) -> RunState:
    """The state of the run in ``run_dir`` as its files and its lock say (see the module's table)."""
    run_dir = Path(run_dir)
    try:
        result = read_result(run_dir)
    except (OSError, ValueError):
        return RunState.FAILED
    if result is not None:
        return result_state(result)
    if lock_held(run_dir):
        return RunState.RUNNING
    return RunState.INTERRUPTED if (run_dir / CHECKPOINT_FILE).exists() else RunState.PENDING


def epochs_done(run_dir: Path, result: dict[str, Any] | None = None) -> int:
    """Epochs the run has finished: result.json's count once the run has ended, else metrics.csv's rows.

    ``result``: result.json's object when the caller has read it already."""
    if result is None:
        try:
            result = read_result(run_dir)
        except (OSError, ValueError):
            result = None
    done = (result or {}).get("epochs_done")
    if isinstance(done, (int, float)) and not isinstance(done, bool) and done >= 0 and float(done).is_integer():
        return int(done)
    return rows_written(run_dir)
