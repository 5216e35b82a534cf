"""The executors without a scheduler: ``debug`` trains the runs one after another in this process, ``local``
starts them as subprocesses (submitit's LocalExecutor), each with its own GPUs where there are GPUs.

Each local run's stdout/stderr land in its own folder (``logs/``).
"""

from __future__ import annotations

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
from bench.experiment.runconfig import RunConfig
from bench.launch import devices
from bench.launch.devices import check_fits, cpu_count, uses_gpus
from bench.launch.job import TrainJob
from bench.rundir.files import LOG_DIR
from bench.rundir.state import RunState
from bench.sweep.spec import Sweep


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
    """Train ``todo`` in this process, one after another; returns the number of failed runs."""
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
        failed += result.get("status") == RunState.FAILED
    return failed


def launch_local(sweep: Sweep, todo: list[RunConfig], results_root: Path, parallel: int | None = None) -> int:
    """Subprocesses, at most ``parallel`` runs at once, each with one GPU per process where there are GPUs.

    A run of ``world_size`` processes is one submitit job of that many tasks (gloo on the CPU),
    started once that many GPUs are free. Returns the number of failed runs.
    """
    check_fits("local", todo)
    gpus = devices.visible_gpus()  # through the module, as check_fits does: one stand-in in tests serves both
    need = max((cfg.world_size for cfg in todo), default=1)
    slots = parallel or (len(gpus) // need if gpus else max(1, min(len(todo), cpu_count() // need))) or 1
    threads = 0 if gpus else max(1, cpu_count() // (slots * need))
    free_gpus = list(gpus)
    queue = list(todo)
    running: list[tuple[Any, RunConfig, list[str]]] = []
    failed = finished = 0
    # disable=None: the bar is drawn on a terminal only, so logs stay quiet.
    with tqdm(total=len(todo), desc=f"sweep {sweep.name}", unit="run", file=sys.stderr, disable=None) as bar:
        while queue or running:
            # With --parallel, runs may share GPUs; without it a run waits until it has its own.
            while queue and len(running) < slots and (
                    parallel or not uses_gpus(queue[0], gpus) or len(free_gpus) >= queue[0].world_size):
                cfg = queue.pop(0)
                n = cfg.world_size
                run_dir = sweep.run_dir(results_root, cfg)
                executor = submitit.LocalExecutor(folder=run_dir / LOG_DIR)
                taken = _take_gpus(n, free_gpus, gpus, [t for _, _, t in running]) if uses_gpus(cfg, gpus) else []
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
