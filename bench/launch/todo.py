"""Which runs of a sweep a launch trains: those that have not ended and that no live process trains,
and those that ended under other code of their method than the one installed now.

A run's result is that of the code that computed it: a plugin method's run records it (result.json's
``method_code``, bench.methods.plugins.method_code), and once the plugin has changed (another package
version, another source) its result is not "done": a launch and ``train`` train it again from its
first epoch, setting the old files aside (bench.rundir.retry.set_aside). Failed runs are not done
either, and not trained again unless asked (``--retry-failed``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.experiment.runconfig import RunConfig
from bench.methods import parse_method
from bench.methods.plugins import method_code, plugin_of
from bench.rundir.files import read_result
from bench.rundir.state import RunState, run_state
from bench.sweep.spec import Sweep


def plan_todo(sweep: Sweep, results_root: Path, retry_failed: bool = False,
              states: list[RunState] | None = None, superseded: set[str] | None = None) -> list[RunConfig]:
    """The runs still to do, in sweep order.

    With ``retry_failed`` failed runs count as to do again; nothing is changed on disk here
    (bench.rundir.retry does that, once the launch is certain to go ahead). ``states``: the runs'
    ``run_state``s in sweep order, if the caller has read them already; ``superseded``: the ids of
    the runs whose method has changed since (``changed_method``), if the caller knows them.
    """
    if states is None:
        states = [run_state(sweep.run_dir(results_root, cfg)) for cfg in sweep.runs]
    if superseded is None:
        superseded = {cfg.run_id for cfg, state in zip(sweep.runs, states, strict=True)
                      if changed_method(cfg, sweep.run_dir(results_root, cfg), state)}
    return [cfg for cfg, state in zip(sweep.runs, states, strict=True)
            if to_train(state, retry_failed) or cfg.run_id in superseded]


def to_train(state: RunState, retry_failed: bool = False) -> bool:
    """Whether a launch trains a run in ``state`` (read from its directory)."""
    if state == RunState.FAILED:
        return retry_failed
    return not state.ended and state != RunState.RUNNING


def recorded_code(cfg: RunConfig, result: dict[str, Any]) -> str | None:
    """The code of its method that a result records: ``method_code``, or for a run recorded before
    that key, its plugin's package and version (result.json's ``plugins``); None if unknown."""
    code = result.get("method_code")
    if isinstance(code, str):
        return code
    info = plugin_of(parse_method(cfg.method).loss)
    for rec in result.get("plugins") or []:
        if (info is not None and info.package and isinstance(rec, dict) and rec.get("module") == info.module
                and rec.get("package") and rec.get("version")):
            return f"{rec['package']} {rec['version']}"
    return None


def changed_method(cfg: RunConfig, run_dir: Path, state: RunState | None = None) -> str | None:
    """``recorded → now`` when the run has ended under other code of its method than this process
    has loaded; None when it has not ended, its method is built in, or the record says nothing."""
    if state is not None and not state.ended:
        return None
    now = method_code(parse_method(cfg.method).loss)
    if now is None:
        return None
    try:
        result = read_result(run_dir)
    except (OSError, ValueError):
        return None
    recorded = recorded_code(cfg, result) if result is not None else None
    return f"{recorded} → {now}" if recorded is not None and recorded != now else None
