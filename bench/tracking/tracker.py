"""The W&B run of one training run, fed by the training loop (``start`` → ``log`` per epoch → ``finish``):
resumable, never logging an epoch twice, and never raising into the loop.

The W&B run id (:func:`bench.tracking.naming.wandb_id`) is stored in the checkpoint as ``tracking_id``
and opened with ``resume="allow"``, so a requeued or resumed job continues the same W&B run. History
uses ``step = epoch``; epochs already in the run's local transaction logs (or, online, on the server)
are skipped, and epochs done but missing from them are logged again at start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.rundir.metrics import read_metrics
from bench.rundir.state import RunState
from bench.tracking.guard import import_wandb, warn
from bench.tracking.modes import resolve_mode
from bench.tracking.naming import group_name, project_name, run_tags, wandb_id
from bench.tracking.reader import logged_steps

# Keys of result.json that go into the W&B run summary.
SUMMARY_KEYS = ("status", "final_test_error", "best_test_error", "last10_test_error", "epochs_done",
                "wall_time_s", "images_per_s", "failed_epoch", "reason", "device", "precision", "num_params")


def _env_rank() -> int:
    for var in ("RANK", "SLURM_PROCID"):
        value = os.environ.get(var, "")
        # SLURM_PROCID alone does not mean distributed training; only trust it with a world size.
        if value.isdigit() and (var == "RANK" or int(os.environ.get("SLURM_NTASKS", "1") or 1) > 1):
            return int(value)
    return 0


def make_tracker(mode: str, *, project: str | None = None, rank: int | None = None) -> Tracker | None:
    """A tracker for one run, or None: for ``disabled``, on a non-zero rank (``rank=None`` reads
    ``RANK``), or when wandb cannot be imported (one warning)."""
    mode = resolve_mode(mode)
    if mode == "disabled":
        return None
    if (rank if rank is not None else _env_rank()) != 0:
        return None
    try:
        import_wandb()
    except Exception as exc:  # noqa: BLE001 - ImportError, or a broken install failing on import
        warn(f"W&B tracking is off: wandb cannot be imported ({type(exc).__name__}: {exc}); "
             "the run's local files are unaffected")
        return None
    return Tracker(mode, project=project)


class Tracker:
    """One W&B run, fed by the training loop: ``start`` → ``log`` per epoch → ``finish``.

    Every method swallows wandb's errors: the first one warns, and the tracker goes quiet.
    """

    def __init__(self, mode: str, *, project: str | None = None):
        self.mode = resolve_mode(mode)
        self.project = project
        self.run: Any = None
        self.next_step = 0  # the first epoch not yet in the W&B history
        self.skipped: list[int] = []  # epochs not logged because W&B already has them
        self.backfilled: list[int] = []  # epochs done before this process, missing from W&B, logged at start
        self._warned = False

    def _fail(self, what: str, exc: BaseException) -> None:
        if not self._warned:
            self._warned = True
            warn(f"W&B tracking is off for this run: {what} failed ({type(exc).__name__}: {exc}); "
                 "the run's local files are unaffected")
        run, self.run = self.run, None
        if run is not None:
            try:
                run.finish(exit_code=1, quiet=True)
            except Exception:  # noqa: BLE001
                pass

    def _init(self, wandb: Any, mode: str, cfg: Any, run_id: str, run_dir: Path) -> Any:
        extra: dict[str, Any] = {}
        if "WANDB_X_TRANSACTION_LOG_FLUSH_INTERVAL" not in os.environ:
            # A killed job loses at most this many seconds of its local log (wandb's default: 15).
            extra["x_transaction_log_flush_interval"] = 2.0
        settings = wandb.Settings(console="off", save_code=False, quiet=True,
                                  init_timeout=float(os.environ.get("WANDB_INIT_TIMEOUT", 90)), **extra)
        return wandb.init(
            mode=mode, project=self.project or os.environ.get("WANDB_PROJECT") or project_name(cfg.sweep),
            id=run_id, resume="allow",
            name=cfg.slug, group=group_name(cfg), job_type=cfg.method, tags=run_tags(cfg),
            config=cfg.record(), dir=str(run_dir), reinit="create_new",
            settings=settings)

    def start(self, cfg: Any, tracking_id: str | None, run_dir: Path | str, *,
              rows: list[Mapping[str, Any]] | None = None) -> str | None:
        """Open (or continue) the W&B run of ``cfg``; its files go to ``run_dir/wandb/``.

        ``rows`` are the epochs already done (the checkpoint's rows; default: ``run_dir/metrics.csv``):
        those missing from the W&B history, e.g. lost when a killed process could not flush its
        transaction log, are logged again first. Returns the W&B run id to store in the checkpoint,
        or None when tracking is off."""
        run_dir = Path(run_dir)
        run_id = tracking_id or wandb_id(cfg)
        try:
            wandb = import_wandb()
            (run_dir / "wandb").mkdir(parents=True, exist_ok=True)
            logged = logged_steps(run_dir, run_id)
            try:
                self.run = self._init(wandb, self.mode, cfg, run_id, run_dir)
            except Exception as exc:  # noqa: BLE001
                if self.mode != "online":
                    raise
                self._warned = True
                warn(f"W&B online init failed ({type(exc).__name__}: {exc}); logging offline instead "
                     f"(upload later with `isda-bench wandb sync`)")
                self.mode = "offline"
                self.run = self._init(wandb, "offline", cfg, run_id, run_dir)
            self.next_step = max(max(logged, default=-1) + 1, int(getattr(self.run, "starting_step", 0) or 0))
        except Exception as exc:  # noqa: BLE001 - tracking never breaks training
            self._fail("wandb.init", exc)
            return None
        for row in (read_metrics(run_dir) if rows is None else rows):
            if int(row["epoch"]) >= self.next_step:
                self.backfilled.append(int(row["epoch"]))
                self.log(row)
        return run_id if self.run is not None else None

    def log(self, row: Mapping[str, Any]) -> None:
        """One epoch's row (metrics.csv's columns, plus e.g. images_per_s) at ``step = epoch``."""
        if self.run is None:
            return
        try:
            epoch = int(row["epoch"])
            if epoch < self.next_step:
                self.skipped.append(epoch)
                return
            data = {k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool)}
            self.run.log(data, step=epoch, commit=True)  # the row is whole: write it now
            self.next_step = epoch + 1
        except Exception as exc:  # noqa: BLE001
            self._fail("wandb.log", exc)

    def finish(self, result: Mapping[str, Any]) -> None:
        """Write the summary (status, final/best/last-10 test error, …) and close the run."""
        if self.run is None:
            return
        try:
            summary = {k: result[k] for k in SUMMARY_KEYS
                       if k in result and isinstance(result[k], (str, int, float)) and result[k] is not None}
            self.run.summary.update(summary)
            status = result.get("status", RunState.COMPLETED)
            run, self.run = self.run, None
            # A diverged run ended as the method made it end: W&B shows it as finished, not crashed.
            run.finish(exit_code=0 if status in (RunState.COMPLETED, RunState.DIVERGED) else 1)
        except Exception as exc:  # noqa: BLE001
            self._fail("wandb.finish", exc)
