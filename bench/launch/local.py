"""Run a sweep's runs: in-process (debug), as local subprocesses (local), or as SLURM arrays (slurm).

The launcher knows nothing of ISDA: it hands each run's resolved config to ``TrainJob``, which
trains it with ``bench.train.trainer.run`` and, being Checkpointable, resumes from the run's own newest
checkpoint on disk whenever it is restarted (after preemption, a time limit, ``scontrol requeue``
or a plain relaunch). SLURM submission and job-state tracking live in ``bench.launch.slurm``.

Files a job adds to its run directory (besides train.py's, .lock included: a job takes the lock
before it decides to train, so that of two duplicates of a run one trains and the other returns):
    job.json    who runs it: cluster, job and array ids, host, pid, start time, attempt count,
                and the last preemption/timeout signal (so status can tell "preempted" apart)
    logs/       stdout/stderr (local), or links to SLURM's log files (slurm)
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import submitit
from tqdm import tqdm

from bench.common.errors import ConfigError
from bench.common.files import atomic_write_json
from bench.experiment.resolve import resolve
from bench.experiment.runconfig import RunConfig
from bench.methods import plugins
from bench.rundir.lock import RunLock, lock_held
from bench.sweep.spec import Sweep

DONE_STATES = ("completed", "diverged", "failed")
JOB_FILE = "job.json"
# How long a starting job waits for a run lock before calling itself a duplicate. Longer than a
# `status` probe (microseconds) and than the overlap of a killed attempt with its successor.
LOCK_WAIT_S = 30.0
_HISTORY = 20  # starts kept in job.json


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def read_job_file(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((Path(run_dir) / JOB_FILE).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _job_identity() -> dict[str, Any]:
    """Where this process runs, from the scheduler's environment (absent keys: not under SLURM)."""
    env = os.environ
    array_job, array_task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
    slurm_id = env.get("SLURM_JOB_ID")
    job_id = f"{array_job}_{array_task}" if array_job and array_task else slurm_id
    return {
        "cluster": env.get("SUBMITIT_EXECUTOR") or "debug",
        "job_id": job_id, "slurm_job_id": slurm_id, "array_job_id": array_job,
        "array_task_id": int(array_task) if array_task and array_task.isdigit() else None,
        "restart_count": int(env.get("SLURM_RESTART_COUNT", "0") or 0),
        "host": socket.gethostname(), "pid": os.getpid(),
        "cuda_visible_devices": env.get("CUDA_VISIBLE_DEVICES"),
    }


def record_start(run_dir: Path) -> dict[str, Any]:
    """Write job.json at the start of an attempt; the attempt count survives requeues."""
    old = read_job_file(run_dir)
    ident = _job_identity()
    history = list(old.get("history", []))
    if old.get("started_at"):
        history.append({k: old.get(k) for k in ("job_id", "host", "started_at", "signal_at", "signal")})
    rec = {**ident, "attempt": int(old.get("attempt", 0)) + 1, "started_at": now_iso(),
           "started_unix": time.time(), "signal": None, "signal_at": None, "signal_unix": None,
           "history": history[-_HISTORY:]}
    atomic_write_json(Path(run_dir) / JOB_FILE, rec)
    return rec


def record_signal(run_dir: Path, kind: str) -> None:
    rec = read_job_file(run_dir)
    rec.update(signal=kind, signal_at=now_iso(), signal_unix=time.time())
    atomic_write_json(Path(run_dir) / JOB_FILE, rec)


def _link_slurm_logs(run_dir: Path) -> None:
    """Links in run_dir/logs/ to this task's SLURM log files, so every run's output is in its folder."""
    try:
        paths = submitit.JobEnvironment().paths
    except Exception:  # noqa: BLE001 - not under submitit: nothing to link
        return
    logs = Path(run_dir) / "logs"
    logs.mkdir(exist_ok=True)
    job_id = _job_identity()["job_id"] or "x"
    for name, target in (("out", paths.stdout), ("err", paths.stderr)):
        link = logs / f"slurm-{job_id}.{name}"
        if not link.is_symlink():
            try:
                link.symlink_to(os.path.relpath(target, logs))
            except OSError:
                pass  # a filesystem without links: the log stays in the sweep's .slurm folder


class TrainJob(submitit.helpers.Checkpointable):
    """The submitted callable: plain data in, so it pickles small and resumes from disk, not memory.

    ``cuda_device``: the device string to expose as CUDA_VISIBLE_DEVICES (local launches).
    ``timeout_min``: the job's time limit, to tell a timeout signal from a preemption in job.json.
    ``master_port``: the rendezvous port of a multi-process local run, chosen free by the launcher
    (an inherited MASTER_PORT would be shared by every run started at once).
    ``plugin_paths``: folders the launching process added to sys.path to import the config's
    plugins (bench.methods.plugins), searched here too, whatever folder the job starts in; by default the
    launching process's.
    """

    def __init__(self, config: dict[str, Any], run_dir: str, cuda_device: str | None = None,
                 timeout_min: float | None = None, master_port: int | None = None,
                 plugin_paths: list[str] | None = None):
        self.config, self.run_dir = dict(config), str(run_dir)
        self.cuda_device, self.timeout_min, self.master_port = cuda_device, timeout_min, master_port
        self.plugin_paths = list(plugin_paths) if plugin_paths is not None else plugins.search_paths()

    def __call__(self) -> dict[str, Any]:
        if self.cuda_device is not None:
            # Before anything touches CUDA: the run sees exactly its own devices.
            os.environ["CUDA_VISIBLE_DEVICES"] = self.cuda_device
        if self.master_port is not None:
            os.environ["MASTER_PORT"] = str(self.master_port)
        from bench.train import distributed
        from bench.train.trainer import run

        plugins.add_search_paths(self.plugin_paths)
        cfg = resolve(self.config)  # imports the config's plugins first
        run_dir = Path(self.run_dir)
        rank, world, _ = distributed.environment()
        if world > 1:  # a multi-GPU run (sweep `resources`): every task is one rank of it
            distributed.init_from_env(cfg.device)
        # Rank 0 alone owns the run lock and the bookkeeping, and tells the other ranks whether to train.
        lock = RunLock(run_dir) if rank == 0 else None
        verdict = self._claim(run_dir, lock) if lock is not None else None
        if world > 1:
            verdict = distributed.broadcast_object(verdict)
        try:
            if verdict is not None:  # done already, or a duplicate: nothing to train
                return verdict
            if rank == 0:
                record_start(run_dir)
                if os.environ.get("SUBMITIT_EXECUTOR") == "slurm":
                    _link_slurm_logs(run_dir)
            # Resumes from run_dir/checkpoint.pt when there is one: never from submission-time state.
            return run(cfg, run_dir, progress=False, locked=True)  # rank 0 holds it: _claim
        finally:
            if lock is not None:
                lock.release()

    @staticmethod
    def _claim(run_dir: Path, lock: RunLock) -> dict[str, Any] | None:
        """None when this job is to train the run (holding its lock); else what to return instead."""
        result = run_dir / "result.json"
        if result.exists():  # the done-marker: a late duplicate or a requeue after the end
            return json.loads(result.read_text())
        if not lock.acquire(wait_s=LOCK_WAIT_S):
            owner = read_job_file(run_dir)
            print(f"run {run_dir.name} is being trained by job {owner.get('job_id')} on {owner.get('host')} "
                  f"(pid {owner.get('pid')}); this duplicate exits without training", file=sys.stderr)
            return {"run_id": run_dir.name, "status": "duplicate", "owner": owner.get("job_id")}
        if result.exists():  # finished while we waited for the lock
            lock.release()
            return json.loads(result.read_text())
        return None

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        """Called by submitit on the preemption/timeout signal, before it requeues the job.

        Nothing of the process's memory is carried over: the requeued job is a fresh TrainJob that
        reads the run's newest epoch checkpoint from disk (train.py writes one after every epoch).
        """
        kind = "preempted"
        started = read_job_file(Path(self.run_dir)).get("started_unix")
        if self.timeout_min and started:
            # submitit's own rule for "this signal is the time limit".
            limit = self.timeout_min * 60
            if time.time() - started >= min(0.8 * limit, limit - 600):
                kind = "timeout"
        try:
            record_signal(Path(self.run_dir), kind)
        except OSError:
            pass  # never let bookkeeping stop the requeue
        return submitit.helpers.DelayedSubmission(
            TrainJob(self.config, self.run_dir, self.cuda_device, self.timeout_min, self.master_port,
                     self.plugin_paths))


def run_state(run_dir: Path) -> str:
    """completed | diverged | failed from result.json; running (a process holds the run lock);
    interrupted (a checkpoint, no result, nobody on it); pending."""
    result = run_dir / "result.json"
    if result.exists():
        try:
            return str(json.loads(result.read_text()).get("status", "failed"))
        except (OSError, ValueError):
            return "failed"
    if lock_held(run_dir):
        return "running"
    return "interrupted" if (run_dir / "checkpoint.pt").exists() else "pending"


def epochs_done(run_dir: Path) -> int:
    try:
        with open(run_dir / "metrics.csv", "rb") as fh:
            return max(0, sum(1 for _ in fh) - 1)
    except OSError:
        return 0


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count()


def visible_gpus() -> list[str]:
    """The devices this process may use, as CUDA_VISIBLE_DEVICES entries (indices, UUIDs or MIG ids).

    A child's CUDA_VISIBLE_DEVICES is read against the physical list, so a launcher started with
    CUDA_VISIBLE_DEVICES=2,3 must hand out "2" and "3", not "0" and "1".
    """
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        entries = [e.strip() for e in env.split(",") if e.strip()]
        # CUDA stops at the first invalid entry (-1 hides everything).
        return [] if not entries or entries[0].startswith("-") else entries[: _gpu_count()]
    return [str(i) for i in range(_gpu_count())]


def plan_todo(sweep: Sweep, results_root: Path, retry_failed: bool = False,
              states: list[str] | None = None) -> list[RunConfig]:
    """The runs still to do (not finished, not being trained by a live process).

    With ``retry_failed`` failed runs count as to do again; nothing is changed on disk here
    (``reset_failed`` does that, once the launch is certain to go ahead). ``states``: the runs'
    ``run_state``s in sweep order, if the caller has read them already.
    """
    if states is None:
        states = [run_state(sweep.run_dir(results_root, cfg)) for cfg in sweep.runs]
    todo = []
    for cfg, state in zip(sweep.runs, states, strict=True):
        if state == "failed" and retry_failed:
            state = "interrupted"
        if state not in DONE_STATES and state != "running":
            todo.append(cfg)
    return todo


def reset_failed(run_dir: Path) -> bool:
    """Set a failed run's result.json aside (result.failed.json) so the run trains again from its
    last checkpoint. Returns True if there was one."""
    result = run_dir / "result.json"
    if result.exists() and run_state(run_dir) == "failed":
        result.replace(run_dir / "result.failed.json")
        return True
    return False


def restore_failed(run_dir: Path) -> None:
    """Undo ``reset_failed`` for a run that was not submitted after all."""
    aside = run_dir / "result.failed.json"
    if aside.exists() and not (run_dir / "result.json").exists():
        aside.replace(run_dir / "result.json")


def check_fits(cluster: str, todo: list[RunConfig]) -> None:
    """Refuse, before anything is written, runs that ``cluster`` cannot give their processes."""
    need = max((cfg.world_size for cfg in todo), default=1)
    if need == 1 or cluster == "slurm":
        return
    if cluster == "debug":
        raise ConfigError("--cluster", "debug", f"local or slurm: these runs have {need} processes each, "
                          "and debug trains in this one process")
    gpus = visible_gpus()
    on_gpus = max((cfg.world_size for cfg in todo if _uses_gpus(cfg, gpus)), default=1)
    if on_gpus > len(gpus) > 0:
        raise ConfigError("world_size", on_gpus, f"at most {len(gpus)} here (the GPUs visible to this launch)")


def _uses_gpus(cfg: RunConfig, gpus: list[str]) -> bool:
    return bool(gpus) and cfg.device != "cpu"


def _take_gpus(n: int, free: list[str], gpus: list[str], busy: list[list[str]]) -> list[str]:
    """``n`` different devices: free ones first, then (with --parallel) the least used others."""
    taken = [free.pop(0) for _ in range(min(n, len(free)))]
    if len(taken) < n:
        use = Counter(g for held in busy for g in held)
        others = sorted((g for g in gpus if g not in taken), key=lambda g: use[g])  # ties: list order
        taken += others[: n - len(taken)]
    return taken


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_debug(sweep: Sweep, todo: list[RunConfig], results_root: Path) -> int:
    check_fits("debug", todo)
    failed = 0
    for cfg in todo:
        try:
            result = TrainJob(cfg.to_dict(), str(sweep.run_dir(results_root, cfg)))()
        except ConfigError:  # bad input, the same for the runs after this one
            raise
        except Exception as exc:  # noqa: BLE001 - result.json holds the traceback; the other runs go on
            print(f"run {cfg.run_id} ({cfg.slug}) failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed += 1
            continue
        failed += result.get("status") == "failed"
    return failed


def launch_local(sweep: Sweep, todo: list[RunConfig], results_root: Path, parallel: int | None = None) -> int:
    """Subprocesses, at most ``parallel`` runs at once, each with one GPU per process where there are GPUs.

    A run of ``world_size`` processes is one submitit job of that many tasks (gloo on the CPU),
    started once that many GPUs are free. Each run's stdout/stderr land in its own folder
    (``logs/``). Returns the number of failed runs.
    """
    check_fits("local", todo)
    gpus = visible_gpus()
    need = max((cfg.world_size for cfg in todo), default=1)
    slots = parallel or (len(gpus) // need if gpus else max(1, min(len(todo), _cpu_count() // need))) or 1
    threads = 0 if gpus else max(1, _cpu_count() // (slots * need))
    free_gpus = list(gpus)
    queue = list(todo)
    running: list[tuple[Any, RunConfig, list[str]]] = []
    failed = finished = 0
    # disable=None: the bar is drawn on a terminal only, so logs stay quiet.
    with tqdm(total=len(todo), desc=f"sweep {sweep.name}", unit="run", file=sys.stderr, disable=None) as bar:
        while queue or running:
            # With --parallel, runs may share GPUs; without it a run waits until it has its own.
            while queue and len(running) < slots and (
                    parallel or not _uses_gpus(queue[0], gpus) or len(free_gpus) >= queue[0].world_size):
                cfg = queue.pop(0)
                n = cfg.world_size
                run_dir = sweep.run_dir(results_root, cfg)
                executor = submitit.LocalExecutor(folder=run_dir / "logs")
                taken = _take_gpus(n, free_gpus, gpus, [t for _, _, t in running]) if _uses_gpus(cfg, gpus) else []
                params: dict[str, Any] = {"timeout_min": 60 * 24 * 7, "tasks_per_node": n}
                if taken and all(g.isdigit() for g in taken):
                    # submitit sets CUDA_VISIBLE_DEVICES itself before the processes start.
                    params.update(gpus_per_node=n, visible_gpus=tuple(int(g) for g in taken))
                executor.update_parameters(**params)
                cfg = replace(cfg, threads=cfg.threads or threads)
                job = executor.submit(TrainJob(cfg.to_dict(), str(run_dir), cuda_device=",".join(taken) or None,
                                               master_port=_free_port() if n > 1 else None))
                running.append((job, cfg, taken))
            time.sleep(0.5)
            still = []
            for job, cfg, taken in running:
                if not job.done():
                    still.append((job, cfg, taken))
                    continue
                free_gpus.extend(g for g in taken if g not in free_gpus)
                if job.exception() is not None:
                    failed += 1
                    tqdm.write(f"run {cfg.run_id} ({cfg.slug}) failed; log: {job.paths.stderr}",
                               file=sys.stderr)
                bar.update(1)
                finished += 1
                if bar.disable:  # not a terminal: one plain line per finished run
                    print(f"sweep {sweep.name}: {finished}/{len(todo)} runs finished", file=sys.stderr, flush=True)
            running = still
    return failed

