"""Which runs of a sweep a launch trains: those that have not ended and that no live process trains."""

from __future__ import annotations

from pathlib import Path

from bench.experiment.runconfig import RunConfig
from bench.rundir.state import RunState, run_state
from bench.sweep.spec import Sweep


def plan_todo(sweep: Sweep, results_root: Path, retry_failed: bool = False,
              states: list[RunState] | None = None) -> list[RunConfig]:
    """The runs still to do, in sweep order.

    With ``retry_failed`` failed runs count as to do again; nothing is changed on disk here
    (bench.rundir.retry.reset_failed does that, once the launch is certain to go ahead). ``states``:
    the runs' ``run_state``s in sweep order, if the caller has read them already.
    """
    if states is None:
        states = [run_state(sweep.run_dir(results_root, cfg)) for cfg in sweep.runs]
    return [cfg for cfg, state in zip(sweep.runs, states, strict=True)
            if to_train(state, retry_failed)]


def to_train(state: RunState, retry_failed: bool = False) -> bool:
    """Whether a launch trains a run in ``state`` (read from its directory)."""
    if state == RunState.FAILED:
        return retry_failed
    return not state.ended and state != RunState.RUNNING
