"""A sweep folder's launch records: ``.jobs.json`` (run id → the SLURM job last submitted for it), ``.slurm/``
(SLURM's log files), and ``.launch.lock``, which lets one launch of a sweep run at a time."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from bench.common.errors import ConfigError
from bench.common.files import atomic_write_json

JOBS_FILE = ".jobs.json"
LOG_DIR = ".slurm"
LAUNCH_LOCK = ".launch.lock"
HISTORY = 20  # earlier job ids kept per run


def read_jobs(sweep_dir: Path) -> dict[str, dict[str, Any]]:
    """The job record of each submitted run; empty when there is none or it cannot be read."""
    try:
        data = json.loads((Path(sweep_dir) / JOBS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    runs = data.get("runs", {}) if isinstance(data, dict) else {}
    return {k: v for k, v in runs.items() if isinstance(v, dict)}


def write_jobs(sweep_dir: Path, records: Mapping[str, Mapping[str, Any]]) -> None:
    atomic_write_json(Path(sweep_dir) / JOBS_FILE, {"version": 1, "runs": dict(records)})


@contextlib.contextmanager
def sweep_lock(sweep_dir: Path) -> Iterator[None]:
    """One launch of a sweep at a time: two racing launches must not both submit a run."""
    Path(sweep_dir).mkdir(parents=True, exist_ok=True)
    fd = os.open(Path(sweep_dir) / LAUNCH_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise ConfigError("launch", str(sweep_dir), "no other launch of this sweep in progress "
                              f"(another isda-bench launch holds {LAUNCH_LOCK})") from exc
        yield
    finally:
        os.close(fd)
