"""Experiment tracking with Weights & Biases: the only module that imports ``wandb``.

Modes: ``online``, ``offline`` (files under ``<run_dir>/wandb/``, uploaded later with
``isda-bench wandb sync``), ``disabled``, and ``auto`` (online when an API key is configured,
offline otherwise; see :func:`resolve_mode`). The run directory's own files (config.yaml,
metrics.csv, result.json) stay the source of truth: a missing or failing wandb warns once per run
and the run goes on without it. Nothing here ever raises into the training loop.

Naming (one W&B run per run directory):

* project ``isda-bench-<sweep>`` (or the ``project`` given to :func:`make_tracker`),
* id: our run id (a hash of the experiment), stored in the checkpoint as ``tracking_id``;
  ``resume="allow"``, so a requeued or resumed job continues the same W&B run,
* name: the slug (``cifar100-wrn28_10-isda-l0.5-s3``), group: the config without its seed,
  job_type: the method, tags: dataset, arch, method, sweep; config: the full resolved config.

History uses ``step = epoch``. A resumed run never logs an epoch twice: epochs already present in
the run's local transaction logs (or, online, on the server) are skipped.

The ``.wandb`` transaction logs can be read back with :func:`read_records` / :func:`read_history`,
which decode wandb's own protobuf ``Record`` messages.
"""

from __future__ import annotations

import hashlib
import json
import math
import netrc
import os
import re
import struct
import subprocess
import sys
import warnings
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.rundir.metrics import read_metrics

MODES = ("auto", "online", "offline", "disabled")
DEFAULT_HOST = "https://api.wandb.ai"
# Keys of result.json that go into the W&B run summary.
SUMMARY_KEYS = ("status", "final_test_error", "best_test_error", "last10_test_error", "epochs_done",
                "wall_time_s", "images_per_s", "failed_epoch", "reason", "device", "precision", "num_params")


class TrackingWarning(RuntimeWarning):
    """W&B is unavailable or failed; the run continues with its local files only."""


# ----------------------------------------------------------------------------- mode


def _netrc_has_key(host: str) -> bool:
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    netloc = urlsplit(host).netloc or host
    try:
        creds = netrc.netrc(str(path)).authenticators(netloc)
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return bool(creds and creds[2])


def has_api_key() -> bool:
    """Credentials are configured (``WANDB_API_KEY``, ``WANDB_IDENTITY_TOKEN_FILE`` or a ``.netrc`` entry
    for the W&B host, as ``wandb login`` writes); checked without network."""
    if os.environ.get("WANDB_API_KEY", "").strip() or os.environ.get("WANDB_IDENTITY_TOKEN_FILE", "").strip():
        return True
    return _netrc_has_key(os.environ.get("WANDB_BASE_URL") or DEFAULT_HOST)


def resolve_mode(mode: str) -> str:
    """``online`` | ``offline`` | ``disabled`` for a configured mode; ``auto`` decides without network:
    ``WANDB_MODE`` if set, else online when an API key is configured, else offline."""
    if mode not in MODES:
        raise ValueError(f"tracking mode {mode!r}: valid modes are {', '.join(MODES)}")
    if mode != "auto":
        return mode
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if env in ("online", "offline", "disabled"):
        return env
    if env == "dryrun":
        return "offline"
    return "online" if has_api_key() else "offline"


def _env_rank() -> int:
    for var in ("RANK", "SLURM_PROCID"):
        value = os.environ.get(var, "")
        # SLURM_PROCID alone does not mean distributed training; only trust it with a world size.
        if value.isdigit() and (var == "RANK" or int(os.environ.get("SLURM_NTASKS", "1") or 1) > 1):
            return int(value)
    return 0


_BROKEN: Exception | None = None  # what importing wandb raised, when it was not an ImportError


def guard_wandb_import() -> None:
    """Import wandb before a library that imports it optionally does (timm, at its own import).

    Such libraries catch ImportError only, and a broken install (protobuf out of step, say) raises
    other errors, which would stop every command, tracking disabled or not. The error is kept for
    the tracker's one warning, and wandb marked absent, so that those imports see an ImportError.
    """
    global _BROKEN
    if "wandb" in sys.modules:
        return
    try:
        import wandb  # noqa: F401, PLC0415 - one of the two places wandb is imported
    except ImportError:
        return
    except Exception as exc:  # noqa: BLE001
        _BROKEN = exc
        sys.modules["wandb"] = None  # type: ignore[assignment]


def _import_wandb() -> Any:
    if _BROKEN is not None:
        raise _BROKEN
    import wandb  # noqa: PLC0415 - the other place wandb is imported

    return wandb


def _warn(message: str) -> None:
    warnings.warn(message, TrackingWarning, stacklevel=3)


def make_tracker(mode: str, *, project: str | None = None, rank: int | None = None) -> Tracker | None:
    """A tracker for one run, or None: for ``disabled``, on a non-zero rank (``rank=None`` reads
    ``RANK``), or when wandb cannot be imported (one warning)."""
    mode = resolve_mode(mode)
    if mode == "disabled":
        return None
    if (rank if rank is not None else _env_rank()) != 0:
        return None
    try:
        _import_wandb()
    except Exception as exc:  # noqa: BLE001 - ImportError, or a broken install failing on import
        _warn(f"W&B tracking is off: wandb cannot be imported ({type(exc).__name__}: {exc}); "
              "the run's local files are unaffected")
        return None
    return Tracker(mode, project=project)


# ----------------------------------------------------------------------------- naming


def project_name(sweep: str) -> str:
    return f"isda-bench-{sweep}"


def group_name(cfg: Any) -> str:
    """The run's config without its seed: readable prefix + a short hash of every other experiment field."""
    experiment = {k: v for k, v in cfg.experiment.items() if k != "seed"}
    digest = hashlib.sha256(json.dumps(experiment, sort_keys=True, default=str).encode()).hexdigest()[:6]
    slug = re.sub(r"-s\d+$", "", cfg.slug)
    return f"{slug}-{digest}"


def run_tags(cfg: Any) -> list[str]:
    return [str(t)[:64] for t in dict.fromkeys((cfg.dataset, cfg.arch, cfg.method, cfg.sweep))]


def wandb_id(cfg: Any) -> str:
    """The W&B run id of a run: our run id plus a short hash of the sweep (the same experiment in two
    sweeps is two W&B runs even in a shared project). Deterministic, so a requeued job finds its run."""
    return f"{cfg.run_id}-{hashlib.sha256(cfg.sweep.encode()).hexdigest()[:6]}"


# ----------------------------------------------------------------------------- the tracker


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
            _warn(f"W&B tracking is off for this run: {what} failed ({type(exc).__name__}: {exc}); "
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
            config={"run_id": cfg.run_id, **cfg.to_dict()}, dir=str(run_dir), reinit="create_new",
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
            wandb = _import_wandb()
            (run_dir / "wandb").mkdir(parents=True, exist_ok=True)
            logged = logged_steps(run_dir, run_id)
            try:
                self.run = self._init(wandb, self.mode, cfg, run_id, run_dir)
            except Exception as exc:  # noqa: BLE001
                if self.mode != "online":
                    raise
                self._warned = True
                _warn(f"W&B online init failed ({type(exc).__name__}: {exc}); logging offline instead "
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
            status = result.get("status", "completed")
            run, self.run = self.run, None
            run.finish(exit_code=0 if status in ("completed", "diverged") else 1)
        except Exception as exc:  # noqa: BLE001
            self._fail("wandb.finish", exc)


# ----------------------------------------------------------------------------- the report run


def _as_frame(table: Any) -> Any:
    """A pandas DataFrame from a DataFrame or a bench.report.model.Table (header + rows of cells)."""
    import pandas as pd

    if isinstance(table, pd.DataFrame):
        df = table
        if not isinstance(df.index, pd.RangeIndex):
            df = df.reset_index()
    else:
        header = list(table.header)
        if getattr(table, "groups", None):
            labels = [g for g, span in table.groups for _ in range(span)]
            header = [f"{g}: {h}" if g else h for g, h in zip(labels, header)]
        df = pd.DataFrame([[getattr(c, "text", c) for c in row] for row in table.rows], columns=header)
    df = df.copy()
    df.columns = [" / ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in df.columns]
    # wandb.Table wants one type per column: anything that is not a plain number becomes text.
    for col in df.columns:
        if df[col].dtype == object:
            df[col] = df[col].map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v))
                                  else v if isinstance(v, str) else json.dumps(v, default=str)
                                  if isinstance(v, (list, dict, tuple)) else str(v))
    return df


def log_report(sweep_name: str, tables: Mapping[str, Any], figures: list[Path], mode: str, *,
               dir: Path | str | None = None, project: str | None = None) -> str | None:
    """Log a sweep's report as one new W&B run (name, group and job_type ``report``): ``tables`` as
    ``wandb.Table`` (DataFrames or bench.report.model.Table), ``figures`` (PNG/JPEG; others are
    skipped) as images. Each call is a new run, a snapshot of the sweep at that time. Its files go to
    ``dir/wandb/`` (pass the sweep's results directory, where ``sync_sweep`` looks). Never raises;
    returns the W&B run id, or None when tracking is off or failed."""
    mode = resolve_mode(mode)
    if mode == "disabled":
        return None
    run = None
    try:
        wandb = _import_wandb()
        if dir is not None:
            Path(dir, "wandb").mkdir(parents=True, exist_ok=True)
        settings = wandb.Settings(console="off", save_code=False, quiet=True, x_disable_stats=True)
        project = project or os.environ.get("WANDB_PROJECT") or project_name(sweep_name)
        run = wandb.init(mode=mode, project=project,
                         name="report", group="report", job_type="report", tags=[sweep_name, "report"],
                         config={"sweep": sweep_name}, dir=str(dir) if dir is not None else None,
                         reinit="create_new", settings=settings)
        data: dict[str, Any] = {}
        for key, table in tables.items():
            data[f"tables/{key}"] = wandb.Table(dataframe=_as_frame(table))
        for path in map(Path, figures):
            if path.suffix.lower() in (".png", ".jpg", ".jpeg"):
                data[f"figures/{path.stem}"] = wandb.Image(str(path), caption=path.stem)
        run.log(data, commit=True)
        run_id = str(run.id)
        run.finish()
        return run_id
    except Exception as exc:  # noqa: BLE001
        _warn(f"W&B report logging failed ({type(exc).__name__}: {exc}); the report files are unaffected")
        if run is not None:
            try:
                run.finish(exit_code=1, quiet=True)
            except Exception:  # noqa: BLE001
                pass
        return None


# ----------------------------------------------------------------------------- sync


def offline_run_dirs(sweep_dir: Path | str) -> list[Path]:
    """Every offline W&B run folder of a sweep: ``<sweep>/*/wandb/offline-run-*`` (runs) and
    ``<sweep>/wandb/offline-run-*`` (the report), oldest first within a run."""
    sweep_dir = Path(sweep_dir)
    found = [*sweep_dir.glob("*/wandb/offline-run-*"), *sweep_dir.glob("wandb/offline-run-*")]
    return sorted((p for p in found if p.is_dir() and any(p.glob("run-*.wandb"))),
                  key=lambda p: (p.parent.parent.name, p.name))


def _is_synced(run_dir: Path) -> bool:
    return all(f.with_name(f.name + ".synced").exists() for f in run_dir.glob("run-*.wandb"))


def sync_sweep(sweep_dir: Path | str, *, dry_run: bool = False, include_synced: bool = False) -> int:
    """Upload a sweep's offline runs with ``wandb sync`` (for clusters whose compute nodes have no
    internet); the folders of a resumed run are uploaded in order, as one W&B run. Returns the exit
    status: 0 when everything was synced or there was nothing to sync."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        print(f"wandb sync: no results directory {sweep_dir}", file=sys.stderr)
        return 2
    dirs = offline_run_dirs(sweep_dir)
    pending = dirs if include_synced else [d for d in dirs if not _is_synced(d)]
    if not pending:
        done = f" ({len(dirs)} already synced)" if dirs else ""
        print(f"wandb sync: nothing to sync in {sweep_dir}: no unsynced offline W&B runs{done}")
        return 0
    if not dry_run and not has_api_key():
        print("wandb sync: not logged in to W&B: run `wandb login` or set WANDB_API_KEY, then retry",
              file=sys.stderr)
        return 1
    skipped = f" ({len(dirs) - len(pending)} already synced)" if len(dirs) > len(pending) else ""
    print(f"wandb sync: {'would sync' if dry_run else 'syncing'} {len(pending)} offline run folder(s) "
          f"of {sweep_dir}{skipped}")
    for d in pending:
        print(f"  {d}")
    cmd = [sys.executable, "-m", "wandb", "sync", "--yes"]
    if dry_run:
        cmd.append("--dry-run")
    if include_synced:
        cmd.append("--include-synced")
    cmd += [str(d) for d in pending]
    sys.stdout.flush()
    try:
        return subprocess.run(cmd, check=False).returncode
    except OSError as exc:
        print(f"wandb sync: cannot run wandb ({exc})", file=sys.stderr)
        return 1


# ----------------------------------------------------------------------------- reading .wandb files

_HEADER = struct.Struct("<4sHB")  # b":W&B", magic 0xBEE1, version
_BLOCK = 32 * 1024
_CHUNK = struct.Struct("<IHB")  # crc32, length, type
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _payloads(data: bytes) -> Iterator[bytes]:
    """The records of a transaction log: wandb's LevelDB-style log (32 KiB blocks of checksummed chunks).
    A truncated or damaged tail (a killed process) ends the iteration."""
    if len(data) < _HEADER.size:
        return
    ident, magic, version = _HEADER.unpack_from(data)
    if ident != b":W&B" or magic != 0xBEE1 or version != 0:
        raise ValueError("not a W&B transaction log")
    pos, parts = _HEADER.size, []
    while pos + _CHUNK.size <= len(data):
        room = _BLOCK - pos % _BLOCK
        if room < _CHUNK.size:  # block trailer: padding
            pos += room
            continue
        crc, length, kind = _CHUNK.unpack_from(data, pos)
        start, end = pos + _CHUNK.size, pos + _CHUNK.size + length
        if kind == 0 and length == 0:  # zero padding
            pos += room
            continue
        if end > len(data) or zlib.crc32(data[start:end], zlib.crc32(bytes([kind]))) & 0xFFFFFFFF != crc:
            return
        chunk, pos = data[start:end], end
        if kind == _FULL:
            parts = []
            yield chunk
        elif kind == _FIRST:
            parts = [chunk]
        elif kind == _MIDDLE:
            parts.append(chunk)
        elif kind == _LAST:
            parts.append(chunk)
            yield b"".join(parts)
            parts = []
        else:
            return


def read_records(path: Path | str) -> Iterator[Any]:
    """The ``wandb.proto.wandb_internal_pb2.Record`` messages of one ``.wandb`` file, in order."""
    from wandb.proto import wandb_internal_pb2

    for payload in _payloads(Path(path).read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        yield record


def read_history(path: Path | str) -> list[dict[str, Any]]:
    """The history rows of one ``.wandb`` file: one dict per ``run.log`` call, with ``_step``."""
    rows = []
    for record in read_records(path):
        if record.WhichOneof("record_type") != "history":
            continue
        row: dict[str, Any] = {}
        for item in record.history.item:
            path = [item.key] if item.key else list(item.nested_key)
            node = row
            for part in path[:-1]:  # a media value (table, image) comes as one item per field
                node = node.setdefault(part, {})
            node[path[-1]] = json.loads(item.value_json)
        if record.history.HasField("step") and "_step" not in row:
            row["_step"] = record.history.step.num
        rows.append(row)
    return rows


def run_files(run_dir: Path | str, tracking_id: str) -> list[Path]:
    """The ``.wandb`` files that one W&B run left in ``run_dir/wandb/`` (several after resumes), oldest first.

    wandb names the folders ``[offline-]run-<YYYYmmdd_HHMMSS>-<id>``, with ``-1``, ``-2``… added when
    two start within the same second."""
    pattern = re.compile(rf"^(?:offline-)?run-(\d{{8}}_\d{{6}})-{re.escape(tracking_id)}(?:-(\d+))?$")
    found = []
    for path in (Path(run_dir) / "wandb").glob(f"*/run-{tracking_id}.wandb"):
        match = pattern.match(path.parent.name)
        if match and not path.parent.is_symlink():
            found.append(((match.group(1), int(match.group(2) or 0)), path))
    return [path for _, path in sorted(found)]


def logged_steps(run_dir: Path | str, tracking_id: str) -> list[int]:
    """Every history step that the local transaction logs of ``tracking_id`` hold (a damaged file counts
    for what it has)."""
    steps: list[int] = []
    for path in run_files(run_dir, tracking_id):
        try:
            steps += [int(row["_step"]) for row in read_history(path) if "_step" in row]
        except Exception:  # noqa: BLE001 - an unreadable log just does not count
            continue
    return steps
