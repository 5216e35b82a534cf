"""End-to-end checks of submitit against a real SLURM cluster.

Needs a running cluster (slurm/local-cluster/start.sh); skipped otherwise, or
failing when CI=true (see tests/conftest.py).
"""

from __future__ import annotations

import operator
import subprocess
import time
from pathlib import Path

import pytest

submitit = pytest.importorskip("submitit")

pytestmark = pytest.mark.slurm

JOB_TIMEOUT_S = 45.0  # per job or array: submission to result
SACCT_TIMEOUT_S = 20.0  # finished job to its final state in accounting


def _executor(folder: Path) -> submitit.AutoExecutor:
    executor = submitit.AutoExecutor(folder=folder / "%j")
    executor.update_parameters(timeout_min=5, cpus_per_task=1, slurm_array_parallelism=4)
    return executor


def _wait_done(job: submitit.Job, timeout: float = JOB_TIMEOUT_S) -> None:
    """Wait until the job has finished; cancel it and fail past the deadline."""
    deadline = time.monotonic() + timeout
    while not job.done():
        if time.monotonic() > deadline:
            job.cancel(check=False)
            pytest.fail(f"job {job.job_id} not done after {timeout:.0f}s (state: {job.state})")
        time.sleep(0.2)


def _sacct_state(job_id: str) -> str:
    proc = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    return lines[0] if lines else ""


def _wait_final_state(job: submitit.Job, expected: str) -> None:
    """Poll accounting (through submitit's watcher and sacct) for a final state."""
    deadline = time.monotonic() + SACCT_TIMEOUT_S
    while True:
        watched = job.watcher.get_state(job.job_id, "force")
        direct = _sacct_state(job.job_id)
        if watched == expected and direct.split()[0] == expected:
            return
        if time.monotonic() > deadline:
            pytest.fail(
                f"job {job.job_id}: expected {expected}, submitit sees {watched!r}, sacct says {direct!r}"
            )
        time.sleep(0.5)


def test_auto_executor_detects_slurm(tmp_path: Path) -> None:
    assert _executor(tmp_path).cluster == "slurm"


def test_single_job_result_and_accounting(tmp_path: Path) -> None:
    job = _executor(tmp_path).submit(operator.add, 2, 40)
    _wait_done(job)
    assert job.result() == 42
    _wait_final_state(job, "COMPLETED")


def test_map_array(tmp_path: Path) -> None:
    executor = _executor(tmp_path)
    jobs = executor.map_array(operator.mul, [1, 2, 3, 4], [10, 10, 10, 10])
    assert len(jobs) == 4
    for job in jobs:
        _wait_done(job)
    assert [job.result() for job in jobs] == [10, 20, 30, 40]
    for job in jobs:
        _wait_final_state(job, "COMPLETED")


def test_failing_job_raises_and_is_failed_in_sacct(tmp_path: Path) -> None:
    job = _executor(tmp_path).submit(operator.truediv, 1, 0)
    _wait_done(job)
    with pytest.raises(submitit.core.utils.FailedJobError) as excinfo:
        job.result()
    assert "ZeroDivisionError" in str(excinfo.value)
    _wait_final_state(job, "FAILED")
