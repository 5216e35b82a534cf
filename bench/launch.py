"""Run a sweep's runs: in-process (debug), as local subprocesses (local), or as SLURM arrays (slurm).

The launcher knows nothing of ISDA: it hands each run's resolved config to ``TrainJob``, which
trains it with ``bench.train.run`` and, being Checkpointable, resumes from the run's own newest
checkpoint on disk whenever it is restarted.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import submitit
from tqdm import tqdm

from bench.config import RunConfig, resolve
from bench.sweep import Sweep

DONE_STATES = ("completed", "diverged", "failed")


class TrainJob(submitit.helpers.Checkpointable):
    """The submitted callable: plain data in, so it pickles small and resumes from disk, not memory."""

    def __init__(self, config: dict[str, Any], run_dir: str):
        self.config, self.run_dir = dict(config), str(run_dir)

    def __call__(self) -> dict[str, Any]:
        from bench.train import run

        return run(resolve(self.config), Path(self.run_dir), progress=False)


def run_state(run_dir: Path) -> str:
    """completed | diverged | failed from result.json; interrupted (a checkpoint, no result); pending."""
    result = run_dir / "result.json"
    if result.exists():
        try:
            return str(json.loads(result.read_text()).get("status", "failed"))
        except (OSError, ValueError):
            return "failed"
    return "interrupted" if (run_dir / "checkpoint.pt").exists() else "pending"


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count()


def plan_todo(sweep: Sweep, results_root: Path, retry_failed: bool = False) -> list[RunConfig]:
    """The runs still to do; with ``retry_failed``, failed runs count as to do again."""
    todo = []
    for cfg in sweep.runs:
        state = run_state(sweep.run_dir(results_root, cfg))
        if state == "failed" and retry_failed:
            (sweep.run_dir(results_root, cfg) / "result.json").unlink()
            state = "interrupted"
        if state not in DONE_STATES:
            todo.append(cfg)
    return todo


def launch_debug(sweep: Sweep, todo: list[RunConfig], results_root: Path) -> int:
    failed = 0
    for cfg in todo:
        result = TrainJob(cfg.to_dict(), str(sweep.run_dir(results_root, cfg)))()
        failed += result.get("status") == "failed"
    return failed


def launch_local(sweep: Sweep, todo: list[RunConfig], results_root: Path, parallel: int | None = None) -> int:
    """Subprocesses, at most ``parallel`` at once, one GPU each where there are GPUs.

    Each run's stdout/stderr land in its own folder (``logs/``). Returns the number of failed runs.
    """
    gpus = _gpu_count()
    slots = parallel or (gpus if gpus else min(len(todo), _cpu_count())) or 1
    threads = 0 if gpus else max(1, _cpu_count() // slots)
    free_gpus = list(range(gpus))
    queue = list(todo)
    running: list[tuple[Any, RunConfig, int | None]] = []
    failed = 0
    with tqdm(total=len(todo), desc=f"sweep {sweep.name}", unit="run", file=sys.stderr) as bar:
        while queue or running:
            while queue and len(running) < slots:
                cfg = queue.pop(0)
                run_dir = sweep.run_dir(results_root, cfg)
                executor = submitit.LocalExecutor(folder=run_dir / "logs")
                gpu = free_gpus.pop(0) if free_gpus else None
                params: dict[str, Any] = {"timeout_min": 60 * 24 * 7}
                if gpu is not None:
                    params.update(gpus_per_node=1, visible_gpus=(gpu,))
                executor.update_parameters(**params)
                cfg = replace(cfg, threads=cfg.threads or threads)
                running.append((executor.submit(TrainJob(cfg.to_dict(), str(run_dir))), cfg, gpu))
            time.sleep(0.5)
            still = []
            for job, cfg, gpu in running:
                if not job.done():
                    still.append((job, cfg, gpu))
                    continue
                if gpu is not None:
                    free_gpus.append(gpu)
                if job.exception() is not None:
                    failed += 1
                    tqdm.write(f"run {cfg.run_id} ({cfg.slug}) failed; log: {job.paths.stderr}", file=sys.stderr)
                bar.update(1)
            running = still
    return failed


def clear_run(run_dir: Path) -> None:
    shutil.rmtree(run_dir, ignore_errors=True)
