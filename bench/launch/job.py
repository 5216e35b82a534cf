"""TrainJob: the callable every launcher runs for a run (in-process, as a local subprocess, or as a SLURM task).

It knows nothing of ISDA: it trains the run's resolved config with ``bench.train.trainer.run`` and, being
Checkpointable, resumes from the run's own newest checkpoint on disk whenever it is restarted (after
preemption, a time limit, ``scontrol requeue`` or a plain relaunch). It takes the run lock before it decides
to train, so that of two duplicates of a run one trains and the other returns; rank 0 keeps the job record
(job.json) and, under SLURM, links the task's log files into the run's logs/.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import submitit

from bench.common.errors import ConfigError
from bench.experiment.resolve import resolve
from bench.methods import plugins
from bench.rundir.files import LOG_DIR, read_result
from bench.rundir.job import job_identity, read_job_file, record_signal, record_start
from bench.rundir.lock import RunLock

# How long a starting job waits for a run lock before calling itself a duplicate. Longer than a
# `status` probe (microseconds) and than the overlap of a killed attempt with its successor.
LOCK_WAIT_S = 30.0


def _link_slurm_logs(run_dir: Path) -> None:
    """Links in run_dir/logs/ to this task's SLURM log files, so every run's output is in its folder."""
    try:
        paths = submitit.JobEnvironment().paths
    except Exception:  # noqa: BLE001 - not under submitit: nothing to link
        return
    logs = Path(run_dir) / LOG_DIR
    logs.mkdir(exist_ok=True)
    job_id = job_identity()["job_id"] or "x"
    for name, target in (("out", paths.stdout), ("err", paths.stderr)):
        link = logs / f"slurm-{job_id}.{name}"
        if not link.is_symlink():
            try:
                link.symlink_to(os.path.relpath(target, logs))
            except OSError:
                pass  # a filesystem without links: the log stays in the sweep's .slurm folder


def _record_failure(run_dir: Path, config: dict[str, Any], exc: BaseException) -> None:
    """A job that failed before its run wrote a result (its plugin does not import, its loss cannot be
    built, the data is missing on this node): result.json says failed and why, so that ``status``
    does not call the run pending. A folder that holds another run's files is left alone."""
    import traceback

    from bench.common.files import atomic_write_json
    from bench.rundir.files import RESULT_FILE
    from bench.rundir.owner import owner
    from bench.train.result import not_started

    run_id = run_dir.name
    if (run_dir / RESULT_FILE).exists() or owner(run_dir) not in (None, run_id) or isinstance(exc, SystemExit):
        return
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / RESULT_FILE, not_started(config, run_id, f"{type(exc).__name__}: {exc}",
                                                             "".join(traceback.format_exception(exc, limit=8))))
    except OSError:
        pass  # the job's own error is the one to report


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

        rank = distributed.environment()[0]
        try:
            return self._train()
        except BaseException as exc:
            # A job started with the wrong number of processes says nothing of its run, which a
            # launch with the right number trains: that one is refused with nothing written.
            mismatch = isinstance(exc, ConfigError) and exc.key == "world_size"
            if rank == 0 and not mismatch and not isinstance(exc, KeyboardInterrupt):
                _record_failure(Path(self.run_dir), self.config, exc)
            raise

    def _train(self) -> dict[str, Any]:
        from bench.train import distributed
        from bench.train.trainer import run

        plugins.add_search_paths(self.plugin_paths)
        cfg = resolve(self.config)  # imports the config's plugins first
        run_dir = Path(self.run_dir)
        # The run's config says how many processes train it; the job must have started that many.
        rank, started, _ = distributed.environment()
        if started != cfg.world_size:
            raise ConfigError("world_size", cfg.world_size, f"{started}, the number of processes this job started")
        if cfg.world_size > 1:  # every task is one rank of the run
            distributed.init_from_env(cfg.device)
        # Rank 0 alone owns the run lock and the bookkeeping, and tells the other ranks whether to train.
        lock = RunLock(run_dir) if rank == 0 else None
        verdict = self._claim(run_dir, lock) if lock is not None else None
        if cfg.world_size > 1:
            verdict = distributed.broadcast_object(verdict)
        try:
            if verdict is not None:  # done already, or a duplicate: nothing to train
                return verdict
            if rank == 0:
                record_start(run_dir)
                if os.environ.get("SUBMITIT_EXECUTOR") == "slurm":
                    _link_slurm_logs(run_dir)
            # Resumes from the run's checkpoint when there is one: never from submission-time state.
            return run(cfg, run_dir, progress=False, locked=True)  # rank 0 holds it: _claim
        finally:
            if lock is not None:
                lock.release()

    @staticmethod
    def _claim(run_dir: Path, lock: RunLock) -> dict[str, Any] | None:
        """None when this job is to train the run (holding its lock); else what to return instead."""
        result = read_result(run_dir)
        if result is not None:  # the done-marker: a late duplicate or a requeue after the end
            return result
        if not lock.acquire(wait_s=LOCK_WAIT_S):
            owner = read_job_file(run_dir)
            print(f"run {run_dir.name} is being trained by job {owner.get('job_id')} on {owner.get('host')} "
                  f"(pid {owner.get('pid')}); this duplicate exits without training", file=sys.stderr)
            return {"run_id": run_dir.name, "status": "duplicate", "owner": owner.get("job_id")}
        result = read_result(run_dir)
        if result is not None:  # finished while we waited for the lock
            lock.release()
            return result
        return None

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        """Called by submitit on the preemption/timeout signal, before it requeues the job.

        Nothing of the process's memory is carried over: the requeued job is a fresh TrainJob that
        reads the run's newest epoch checkpoint from disk (the trainer writes one after every epoch).
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
