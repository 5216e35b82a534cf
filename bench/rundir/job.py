"""job.json, the job record: which job trains the run (cluster, job and array ids, host, pid), its attempts, and
the last preemption or time-limit signal, so that ``status`` can tell a preempted run from a failed one.

Written by rank 0 of the job that holds the run lock, at the start of every attempt and on the signal.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from bench.common.files import atomic_write_json
from bench.rundir.files import JOB_FILE

HISTORY = 20  # earlier attempts kept in job.json


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# The type of each field read back. A field of another type (a record edited or damaged by hand)
# reads as absent: status, the next attempt and the signal handler then go on as without it.
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "attempt": int, "history": list, "started_at": str, "started_unix": (int, float), "job_id": str, "host": str,
    "pid": int, "signal": str, "signal_at": str, "signal_unix": (int, float)}


def read_job_file(run_dir: Path) -> dict[str, Any]:
    """The run's job record, its fields of the wrong type left out; empty when there is none or it
    cannot be read."""
    try:
        data = json.loads((Path(run_dir) / JOB_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    record = {k: v for k, v in data.items()
              if k not in _FIELD_TYPES or (isinstance(v, _FIELD_TYPES[k]) and not isinstance(v, bool))}
    if "history" in record:
        record["history"] = [h for h in record["history"] if isinstance(h, dict)]
    return record


def job_identity() -> dict[str, Any]:
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
    history = list(old.get("history", []))
    if old.get("started_at"):
        history.append({k: old.get(k) for k in ("job_id", "host", "started_at", "signal_at", "signal")})
    rec = {**job_identity(), "attempt": int(old.get("attempt", 0)) + 1, "started_at": now_iso(),
           "started_unix": time.time(), "signal": None, "signal_at": None, "signal_unix": None,
           "history": history[-HISTORY:]}
    atomic_write_json(Path(run_dir) / JOB_FILE, rec)
    return rec


def record_signal(run_dir: Path, kind: str) -> None:
    """Note in job.json that this attempt ends on ``kind``: "preempted" or "timeout"."""
    rec = read_job_file(run_dir)
    rec.update(signal=kind, signal_at=now_iso(), signal_unix=time.time())
    atomic_write_json(Path(run_dir) / JOB_FILE, rec)
