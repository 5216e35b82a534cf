"""Submitting a sweep's runs to SLURM: one array task per run, arrays chained so that the sweep keeps to its
profile's ``array_parallelism``; runs a live job already owns are not submitted again.

Every run becomes one array task; arrays hold at most ``max_array_size`` tasks. A run of several processes
(its config's ``world_size``) is one task per process. Each submission is recorded in the sweep's
``.jobs.json`` (bench.launch.jobs), which the merged status (bench.launch.status) reads.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.common.errors import ConfigError
from bench.experiment.runconfig import RunConfig
from bench.launch.job import TrainJob
from bench.launch.jobs import HISTORY, LOG_DIR, read_jobs, sweep_lock, write_jobs
from bench.launch.profiles import Profile, load_profile
from bench.launch.status import RunStatus, status_command, sweep_status
from bench.launch.wait import wait_sweep
from bench.rundir.job import now_iso
from bench.sweep.spec import Sweep


def chunks(items: Sequence[Any], size: int) -> list[list[Any]]:
    """Consecutive slices of at most ``size`` items (one SLURM array each)."""
    if size < 1:
        raise ValueError("size must be >= 1")
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def split_active(todo: Sequence[RunConfig], statuses: Sequence[RunStatus]) -> tuple[list[RunConfig],
                                                                                    list[RunStatus]]:
    """(runs to submit, runs refused because a job of theirs is queued or running)."""
    by_id = {s.cfg.run_id: s for s in statuses}
    submit, busy = [], []
    for cfg in todo:
        s = by_id.get(cfg.run_id)
        if s is not None and s.active:
            busy.append(s)
        else:
            submit.append(cfg)
    return submit, busy


def _executor(folder: Path, prof: Profile, job_name: str, world_size: int = 1, nodes: int = 1) -> Any:
    from submitit import SlurmExecutor

    ex = SlurmExecutor(folder=folder / "%j", max_num_timeout=prof.max_num_timeout)
    ex.update_parameters(**prof.executor_parameters(job_name, world_size, nodes))
    return ex


def submit_arrays(sweep: Sweep, runs: Sequence[RunConfig], results_root: Path, prof: Profile,
                  records: dict[str, dict[str, Any]]) -> list[str]:
    """Submit one array task per run; returns the array job ids. ``records`` is updated and saved
    after each array, so a failure halfway keeps the record of what was submitted."""
    sweep_dir = Path(results_root) / sweep.name
    nodes = sweep.resources.get("nodes", 1)  # where the processes go; how many there are is the run's
    by_world: dict[int, list[RunConfig]] = {}
    for cfg in runs:  # one executor per process count: its tasks per node are the runs'
        by_world.setdefault(cfg.world_size, []).append(cfg)
    array_ids: list[str] = []
    for world_size, group in by_world.items():
        ex = _executor(sweep_dir / LOG_DIR, prof, f"isda-{sweep.name}", world_size, nodes)
        for chunk in chunks(group, prof.max_array_size):
            if array_ids:
                # Chained arrays: the sweep never has more than array_parallelism tasks running.
                ex.update_parameters(dependency=f"afterany:{array_ids[-1]}")
            array_ids.append(_submit_chunk(ex, sweep, chunk, results_root, prof, records))
            write_jobs(sweep_dir, records)
    return array_ids


def _submit_chunk(ex: Any, sweep: Sweep, chunk: list[RunConfig], results_root: Path, prof: Profile,
                  records: dict[str, dict[str, Any]]) -> str:
    """One array of ``chunk``'s runs; its tasks are recorded in ``records``. Returns the array's job id."""
    fns = []
    for cfg in chunk:
        # CPU threads follow the allocation (threads is a scheduling field: same run id).
        cfg = replace(cfg, threads=cfg.threads or prof.cpus_per_task)
        fns.append(TrainJob(cfg.to_dict(), str(sweep.run_dir(results_root, cfg)), timeout_min=prof.timeout_min))
    jobs = ex.submit_array(fns)
    # submitit submits a single function as a plain job (id "123"), more as an array ("123_4").
    array_id = jobs[0].job_id.split("_")[0]
    for cfg, job in zip(chunk, jobs):
        task = job.job_id.partition("_")[2]
        old = records.get(cfg.run_id, {})
        history = (list(old.get("history", [])) + [old["job_id"]])[-HISTORY:] if old.get("job_id") else []
        records[cfg.run_id] = {
            "job_id": job.job_id, "array_job_id": array_id, "array_task_id": int(task) if task else None,
            "slug": cfg.slug, "submitted_at": now_iso(), "submitted_unix": time.time(),
            "log_dir": str(job.paths.folder), "stdout": str(job.paths.stdout),
            "stderr": str(job.paths.stderr), "profile": prof.source or prof.name, "history": history,
        }
    return array_id


def _sbatch_said(exc: Exception) -> str:
    """sbatch's own error lines, as one line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return "; ".join(errors or lines[:1]) or type(exc).__name__


def launch_slurm(sweep: Sweep, todo: list[RunConfig], results_root: Path, profile: Any = None,
                 wait: bool = False, poll_s: float = 10.0,
                 on_submit: Callable[[list[RunConfig]], None] | None = None,
                 on_refused: Callable[[list[RunConfig]], None] | None = None) -> int:
    """Submit the runs of ``todo`` that no job already owns; print job ids, logs, status command.

    ``on_submit(runs)`` is called once the set to submit is known (the CLI resets failed runs there);
    if sbatch then refuses the request, ``on_refused(runs)`` gets the runs left unsubmitted and a
    ConfigError names the profile with sbatch's words. Returns 0, or with ``wait`` the exit status
    of ``wait_sweep``.
    """
    from submitit.core.utils import FailedJobError

    prof = load_profile(profile, sweep.path)
    root = Path(results_root)
    sweep_dir = root / sweep.name
    with sweep_lock(sweep_dir):
        records = read_jobs(sweep_dir)
        statuses = sweep_status(sweep, root)
        submit, busy = split_active(todo, statuses)
        if busy:
            ids = ", ".join(sorted({s.job_id or "local" for s in busy})[:10])
            print(f"not submitting {len(busy)} runs again: already queued or running (jobs {ids})")
        if submit:
            if on_submit is not None:
                on_submit(submit)
            before = {cfg.run_id: records.get(cfg.run_id, {}).get("job_id") for cfg in submit}
            try:
                # submitit prints a refusing sbatch's stderr itself; the error below says it in one line.
                with contextlib.redirect_stderr(io.StringIO()):
                    arrays = submit_arrays(sweep, submit, root, prof, records)
            except FailedJobError as exc:
                left = [cfg for cfg in submit if records.get(cfg.run_id, {}).get("job_id") == before[cfg.run_id]]
                if on_refused is not None:
                    on_refused(left)
                done = len(submit) - len(left)
                submitted = f"{done} runs were submitted before, " if done else ""
                raise ConfigError("profile", prof.source or prof.name, f"a request sbatch accepts ({submitted}"
                                  f"sbatch said: {_sbatch_said(exc)})") from exc
            n_arrays = len(arrays)
            print(f"submitted {len(submit)} runs as {n_arrays} job array{'s' * (n_arrays > 1)} "
                  f"(profile {prof.source or prof.name}): job ids {', '.join(arrays)} "
                  f"(tasks {arrays[0]}_0..; at most {prof.array_parallelism} running)")
            print(f"logs: {sweep_dir / LOG_DIR} (linked from each run's logs/)")
        else:
            print("nothing submitted")
        print(f"status: {status_command(sweep, root)}")
    if wait:
        return wait_sweep(sweep, root, poll_s=poll_s)
    return 0


