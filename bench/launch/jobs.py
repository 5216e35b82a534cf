"""A sweep folder's launch records: ``.jobs.json`` (run id → the SLURM job last submitted for it), ``.slurm/``
(SLURM's log files), and ``.launch.lock``, which lets one launch of a sweep run at a time."""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
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
    """The job record of each submitted run; empty when the sweep has none yet.

    A record that is there but not as launch writes it is refused as one line rather than read as
    no record: status would then call queued runs pending, and a launch would submit them again."""
    path = Path(sweep_dir) / JOBS_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError("--results", str(path), f"a launch record you may read ({exc.strerror or exc})") from exc
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    why = _damage(data)
    if why:
        raise ConfigError("--results", str(path), f"a launch record as launch writes it ({why}); restore it, or "
                          "remove it if no job of the sweep is queued or running")
    return dict(data["runs"])


def _damage(data: Any) -> str:
    """What makes ``data`` something other than a launch record, {"version": 1, "runs": {run id: record}},
    in the fields of a record that status and launch read; "" when it is one."""
    if not isinstance(data, dict):
        return "this is not a JSON object"
    runs = data.get("runs")
    if not isinstance(runs, dict):
        return f"its runs is {_short(runs)}, not a mapping of run ids to records"
    for run_id, rec in runs.items():
        if not isinstance(rec, dict):
            return f"run {run_id}'s record is {_short(rec)}, not a mapping"
        if not isinstance(rec.get("job_id"), str) or not rec["job_id"]:
            return f"run {run_id}'s job_id is {_short(rec.get('job_id'))}, not a job id"
        stamp = rec.get("submitted_unix", 0)
        if isinstance(stamp, bool) or not isinstance(stamp, (int, float)) or not math.isfinite(stamp):
            return f"run {run_id}'s submitted_unix is {_short(stamp)}, not a number of seconds"
        history = rec.get("history", [])
        if not isinstance(history, list) or not all(isinstance(h, str) for h in history):
            return f"run {run_id}'s history is {_short(history)}, not a list of job ids"
    return ""


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


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
