"""The merged status of a sweep's runs, which ``status``, ``launch`` and ``--wait`` use on every cluster: what each
run's directory says (bench.rundir.state) merged with what the scheduler says of the job last submitted for it.

A run's directory is the truth once it has ended, or while a live process holds its lock; otherwise the
state of its job (squeue/sacct, one call for the whole sweep) and its job record (job.json: started? ended
on which signal?) tell a queued run from a preempted, requeued or lost one. Runs never submitted to SLURM
(local and debug launches) have no job: their directory alone says their state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.experiment.runconfig import RunConfig
from bench.launch import scheduler
from bench.launch.jobs import read_jobs
from bench.rundir.job import read_job_file
from bench.rundir.state import RunState, epochs_done, run_state
from bench.sweep.spec import Sweep

# A fresh submission can be missing from both squeue and sacct for a moment; after this it is lost.
UNKNOWN_GRACE_S = 600


@dataclass(frozen=True)
class RunStatus:
    cfg: RunConfig
    state: RunState
    active: bool  # SLURM or a live process still owns the run: do not submit it again
    job_id: str | None = None
    slurm_state: str | None = None
    epochs_done: int = 0
    detail: str = ""

    @property
    def ended(self) -> bool:
        return self.state.ended


def merge_state(disk_state: RunState, started: bool, signal: str | None, slurm_state: str | None,
                record_age_s: float | None = None) -> tuple[RunState, bool, str]:
    """(state, active, detail) of one run from its directory and its job's SLURM state.

    ``disk_state``: run_state() of the directory; ``started``: a job has started it before (job.json);
    ``signal``: "preempted" | "timeout" when the last attempt ended on submitit's signal;
    ``slurm_state``: squeue/sacct state of its last job (None: no job or unknown);
    ``record_age_s``: seconds since that job was submitted (None: no job record).
    """
    disk_state = RunState(disk_state)
    if disk_state.ended:
        return disk_state, False, ""
    if disk_state == RunState.RUNNING:  # a live process holds the run lock: the truth, whatever SLURM says
        return RunState.RUNNING, True, ""
    if slurm_state is None:
        if record_age_s is not None and record_age_s < UNKNOWN_GRACE_S:
            return RunState.PENDING, True, "just submitted; not yet visible to SLURM"
        return disk_state, False, "no live job" if record_age_s is not None else ""
    if slurm_state in scheduler.RUNNING_SLURM:
        return RunState.RUNNING, True, ""
    if slurm_state in scheduler.ACTIVE_SLURM:
        if not started:
            return RunState.PENDING, True, "queued"
        if signal == "preempted":
            return RunState.PREEMPTED, True, "checkpointed on the preemption signal; requeued, waiting to resume"
        why = "time limit" if signal == "timeout" else "requeued from outside (no signal)"
        return RunState.REQUEUED, True, f"{why}; will resume from its epoch checkpoint"
    if slurm_state == "PREEMPTED":
        # Not a failure: the next launch resumes it from its checkpoint.
        return RunState.PREEMPTED, False, "preempted and not requeued by SLURM; relaunch to resume"
    return RunState.FAILED, False, f"job ended {slurm_state} without result.json"


def sweep_status(sweep: Sweep, results_root: Path,
                 query: Callable[[Sequence[str]], Mapping[str, str]] | None = None) -> list[RunStatus]:
    """Every run of the sweep with its merged state (one squeue/sacct call for the whole sweep).

    ``query``: job ids → SLURM states; default ``scheduler.query_states`` (tests pass a fake)."""
    sweep_dir = Path(results_root) / sweep.name
    records = read_jobs(sweep_dir)
    ids = [records[c.run_id]["job_id"] for c in sweep.runs if c.run_id in records]
    slurm = (query or scheduler.query_states)(ids) if ids else {}
    now = time.time()
    out = []
    for cfg in sweep.runs:
        run_dir = sweep.run_dir(results_root, cfg)
        disk = run_state(run_dir)
        rec = records.get(cfg.run_id)
        job = read_job_file(run_dir)
        job_id = rec.get("job_id") if rec else None
        # Only the attempts of the recorded job count: a run resubmitted after a failure restarts
        # the story (job.json of an older job does not make the new one "requeued").
        started = bool(job.get("started_at")) and (rec is None or job.get("job_id") == job_id)
        signal = job.get("signal") if started else None
        age = now - float(rec.get("submitted_unix", 0)) if rec else None
        slurm_state = slurm.get(job_id) if job_id else None
        state, active, detail = merge_state(disk, started, signal, slurm_state, age)
        out.append(RunStatus(cfg, state, active, job_id, slurm_state, epochs_done(run_dir), detail))
    return out


def count_states(statuses: Sequence[RunStatus]) -> dict[RunState, int]:
    """How many runs are in each state, in RunState's order, states without runs left out."""
    counts: dict[RunState, int] = {}
    for s in statuses:
        counts[s.state] = counts.get(s.state, 0) + 1
    return {k: counts[k] for k in RunState if k in counts}


def format_counts(counts: Mapping[RunState, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "no runs"


def status_command(sweep: Sweep, results_root: Path) -> str:
    """The command line that shows this sweep's status."""
    cmd = f"isda-bench status {sweep.path or sweep.name}"
    if Path(results_root) != Path("results"):
        cmd += f" --results {results_root}"
    return cmd
