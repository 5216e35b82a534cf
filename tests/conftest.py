"""Shared pytest configuration.

SLURM: tests marked ``slurm`` need a reachable SLURM cluster with accounting
(see slurm/local-cluster/README.md). The session fixture ``slurm_cluster``
checks for one; when there is none the tests are skipped, or fail when the
environment variable CI is "true". With ISDA_BENCH_START_SLURM=1 the fixture
starts the local cluster itself through slurm/local-cluster/start.sh.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# Runs default to tracking "auto", which honours WANDB_MODE: keep W&B off in every test that does
# not choose a mode itself (tests/test_tracking.py does), and its files out of the home folder.
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")
SLURM_START_SCRIPT = REPO_ROOT / "slurm" / "local-cluster" / "start.sh"
_READY_NODE_STATES = ("idle", "mixed", "alloc", "allocated", "completing")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "slurm: needs a reachable SLURM cluster with accounting "
        "(start one with slurm/local-cluster/start.sh)",
    )
    config.addinivalue_line(
        "markers",
        "slow: left out of `make test-fast` (pytest -m 'not slow'); `make test` runs it. Tests of about 3 s or "
        "more on a 2-core CPU: those that train several runs or epochs, start processes that train, compile, "
        "build a package or a PDF, or wait on a real SLURM cluster",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test of the real SLURM cluster is slow too: it waits for jobs to be scheduled."""
    for item in items:
        if item.get_closest_marker("slurm") is not None:
            item.add_marker(pytest.mark.slow)


@dataclass(frozen=True)
class SlurmCluster:
    """What the ``slurm_cluster`` fixture found."""

    node_states: tuple[str, ...]


def _run(cmd: list[str], timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def _probe_slurm() -> tuple[SlurmCluster | None, str]:
    """Return (cluster, "") when SLURM answers, else (None, reason)."""
    for tool in ("sinfo", "sbatch", "sacct"):
        if shutil.which(tool) is None:
            return None, f"{tool} not found on PATH"
    try:
        sinfo = _run(["sinfo", "-h", "-o", "%T"])
    except subprocess.TimeoutExpired:
        return None, "sinfo timed out"
    if sinfo.returncode != 0:
        return None, f"sinfo failed: {(sinfo.stderr or sinfo.stdout).strip()[:300]}"
    states = tuple(s.strip().rstrip("*~#!%$@^-") for s in sinfo.stdout.split() if s.strip())
    if not any(s in _READY_NODE_STATES for s in states):
        return None, f"no node in idle/mixed/alloc state (sinfo says: {', '.join(states) or 'nothing'})"
    try:
        sacct = _run(["sacct", "-n", "-X", "-P", "-S", "now-1minutes", "-o", "JobID"])
    except subprocess.TimeoutExpired:
        return None, "sacct timed out"
    if sacct.returncode != 0 or "error" in sacct.stderr.lower():
        return None, f"sacct failed: {(sacct.stderr or sacct.stdout).strip()[:300]}"
    return SlurmCluster(node_states=states), ""


def _start_local_cluster() -> str:
    """Run start.sh; return "" on success, else a short reason."""
    try:
        proc = _run(["bash", str(SLURM_START_SCRIPT)], timeout=300)
    except subprocess.TimeoutExpired:
        return f"{SLURM_START_SCRIPT} timed out"
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
        return f"{SLURM_START_SCRIPT} failed (rc={proc.returncode}):\n" + "\n".join(tail)
    return ""


@pytest.fixture(scope="session")
def slurm_cluster() -> SlurmCluster:
    """A reachable SLURM cluster (sinfo shows a usable node and sacct works)."""
    cluster, reason = _probe_slurm()
    if cluster is None and os.environ.get("ISDA_BENCH_START_SLURM") == "1":
        start_error = _start_local_cluster()
        cluster, reason = _probe_slurm()
        if cluster is None and start_error:
            reason = f"{reason}; {start_error}"
    if cluster is None:
        message = f"no SLURM cluster reachable: run slurm/local-cluster/start.sh ({reason})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return cluster


@pytest.fixture(autouse=True)
def _require_slurm_for_marked_tests(request: pytest.FixtureRequest) -> None:
    """Tests marked ``slurm`` get the ``slurm_cluster`` check without asking for it."""
    if request.node.get_closest_marker("slurm") is not None:
        request.getfixturevalue("slurm_cluster")


@pytest.fixture()
def reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder of the paper's numbers that the report reads first (``ISDA_BENCH_REFERENCE``)."""
    from bench.report import paper

    folder = tmp_path / "reference"
    folder.mkdir()
    monkeypatch.setenv(paper.REFERENCE_ENV, str(folder))
    return folder
