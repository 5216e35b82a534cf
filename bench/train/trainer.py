"""One training run: ``run(cfg, run_dir)`` trains, checkpoints every epoch, resumes, and writes the run directory.

It writes config.yaml first, then after every epoch checkpoint.pt and metrics.csv, and last result.json
(bench.rundir.files), holding the run lock (.lock) while it trains. A run whose result.json exists is not
trained again.

Multi-process (DDP) runs: every process calls ``run`` inside an initialised process group
(bench.train.distributed.init_from_env) of ``cfg.world_size`` processes; only rank 0 writes files, logs
and tracks, and every rank reads the checkpoint on resume (bench.train.engine says how an epoch is shared).
"""

from __future__ import annotations

import math
import sys
import traceback
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bench.common.errors import ConfigError
from bench.common.files import atomic_write_json, make_dir
from bench.experiment.runconfig import RunConfig
from bench.rundir.files import LOCK_FILE, RESULT_FILE, read_result, write_config
from bench.rundir.lock import RunLock
from bench.rundir.metrics import write_metrics
from bench.rundir.owner import check_run_dir
from bench.rundir.state import RunState
from bench.train import distributed
from bench.train.checkpoint import resume
from bench.train.device import pick_device
from bench.train.engine import Run
from bench.train.fastpath import deterministic_if_compiled_on_cpu
from bench.train.result import summarise


def run(cfg: RunConfig, run_dir: Path | str, *, progress: bool | None = None, tracker: Any = None,
        locked: bool = False) -> dict[str, Any]:
    """Train ``cfg`` into ``run_dir``, resuming from its checkpoint; returns result.json's content.

    A run whose result.json exists is not trained again. ``progress=None`` shows bars only on a terminal.
    In a process group every rank calls this with the same arguments; rank 0 alone writes and tracks.
    Rank 0 holds run_dir's lock while it trains (``locked``: its caller holds it already), so a second
    process started on the same folder is refused instead of writing into it too.
    """
    run_dir = Path(run_dir)
    rank, world = distributed.rank_and_world()
    if cfg.world_size != world:  # every rank sees the same numbers, so every rank stops here
        raise ConfigError("world_size", cfg.world_size,
                          f"{world}, the number of processes this run was started with")
    check_run_dir(run_dir, cfg.run_id, "out")  # run_dir is shared by the ranks, so they all stop here too
    main = rank == 0
    # Rank 0 decides and tells the others, so that no rank trains alone or waits for one that left.
    finished = distributed.broadcast_object(read_result(run_dir) if main else None)
    if finished is not None:
        return finished  # type: ignore[return-value]
    with deterministic_if_compiled_on_cpu(cfg.compile, pick_device(cfg.device)):
        return _train(cfg, run_dir, progress, tracker, rank, locked)


def _train(cfg: RunConfig, run_dir: Path, progress: bool | None, tracker: Any, rank: int,
           locked: bool) -> dict[str, Any]:
    r = Run(cfg, run_dir)  # loads data and builds the model: bad input fails here, before any file
    lock = RunLock(run_dir) if rank == 0 and not locked else None
    if rank == 0:
        make_dir(run_dir, "out")
    busy = lock is not None and not lock.acquire()
    if distributed.broadcast_object(busy):  # every rank stops, not rank 0 alone
        raise ConfigError("out", str(run_dir), f"a run folder no other process is training (one holds its "
                          f"{LOCK_FILE}: wait for it, or stop it)")
    try:
        return _train_locked(cfg, r, run_dir, progress, tracker, rank)
    finally:
        if lock is not None:
            lock.release()


def _train_locked(cfg: RunConfig, r: Run, run_dir: Path, progress: bool | None, tracker: Any,
                  rank: int) -> dict[str, Any]:
    main = rank == 0
    done = run_dir / RESULT_FILE
    if main:
        write_config(run_dir, cfg.record())
    resume(r, run_dir, cfg.run_id)
    if not main:
        tracker = None
    elif tracker is None:
        from bench.tracking.tracker import make_tracker

        tracker = make_tracker(cfg.tracking, rank=rank)
    if tracker is not None:
        # rows: the checkpoint may be an epoch ahead of what the tracker flushed before a kill.
        r.tracking_id = tracker.start(cfg, r.tracking_id, run_dir, rows=r.rows)
    disable = (None if progress is None else not progress) if main else True
    try:
        with tqdm(total=cfg.epochs, initial=r.epoch, desc=cfg.slug, unit="ep", disable=disable,
                  file=sys.stderr) as epochs_bar:
            while r.epoch < cfg.epochs:
                with tqdm(total=len(r.train), desc=f"epoch {r.epoch}", unit="step", leave=False,
                          disable=disable, file=sys.stderr) as bar:
                    row = r.step_epoch(bar)
                if tracker is not None:
                    tracker.log({**row, "images_per_s": r.last_images_per_s})
                # Losses are summed over ranks: every rank takes the same branch here.
                bad = [k for k in ("train_loss", "test_loss") if not math.isfinite(row[k])]
                if bad:
                    result = summarise(cfg, r, RunState.DIVERGED, failed_epoch=row["epoch"],
                                       reason=f"non-finite {bad[0]} ({row[bad[0]]}) in epoch {row['epoch']}")
                    break
                if main:
                    r.save()
                epochs_bar.update(1)
                epochs_bar.set_postfix(test_err=f"{row['test_error']:.2f}%", loss=f"{row['train_loss']:.3f}")
            else:
                result = summarise(cfg, r, RunState.COMPLETED)
    except Exception as exc:
        # A rank's exception reaches the others as a collective's error or timeout; rank 0 records it.
        failed = summarise(cfg, r, RunState.FAILED, failed_epoch=r.epoch, reason=f"{type(exc).__name__}: {exc}",
                           traceback=traceback.format_exc(limit=8))
        if main:
            atomic_write_json(done, failed)
        if tracker is not None:
            tracker.finish(failed)
        raise
    if main:
        # Again: a kill between the last checkpoint and its metrics.csv resumes straight to here.
        write_metrics(run_dir, r.rows)
        atomic_write_json(done, result)
    if tracker is not None:
        tracker.finish(result)
    return result
