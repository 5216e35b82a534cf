"""What SLURM says about jobs: the state of each job id, from squeue while the controller knows it and sacct after."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence

# Job states in which SLURM will still run (or is running) the job.
ACTIVE_SLURM = frozenset({"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING",
                          "SUSPENDED", "COMPLETING", "CONFIGURING", "SIGNALING", "STAGE_OUT", "STOPPED",
                          "RESV_DEL_HOLD", "SPECIAL_EXIT"})
RUNNING_SLURM = frozenset({"RUNNING", "COMPLETING", "CONFIGURING", "SIGNALING", "STAGE_OUT", "RESIZING"})
# What a SLURM launch runs on this machine: sbatch submits the arrays, and submitit asks for srun,
# which starts each task on the nodes, before it submits anything.
SUBMIT_COMMANDS = ("sbatch", "srun")


def missing_commands() -> list[str]:
    """The SLURM commands a launch needs that this machine's PATH does not have; none on a SLURM machine."""
    return [cmd for cmd in SUBMIT_COMMANDS if shutil.which(cmd) is None]


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def _expand(job_id: str) -> list[str]:
    """'12_[3-5,7%2]' → ['12_3', '12_4', '12_5', '12_7']; plain ids unchanged."""
    m = re.fullmatch(r"(\d+)_\[([\d,\-]+)(?:%\d+)?\]", job_id)
    if not m:
        return [job_id]
    out = []
    for part in m.group(2).split(","):
        low, _, high = part.partition("-")
        out += [f"{m.group(1)}_{i}" for i in range(int(low), int(high or low) + 1)]
    return out


def parse_state_lines(text: str) -> dict[str, str]:
    """'JobID|State' lines (squeue or sacct) → {job_id: STATE}; 'CANCELLED by 0' → 'CANCELLED'."""
    states: dict[str, str] = {}
    for line in text.splitlines():
        job_id, sep, state = line.strip().partition("|")
        if not sep or "." in job_id or not state.strip():
            continue
        for jid in _expand(job_id.strip()):
            states[jid] = state.split()[0].rstrip("+")
    return states


def query_states(job_ids: Sequence[str]) -> dict[str, str]:
    """SLURM's current state of each job id ('123' or '123_4'); missing ids are unknown.

    squeue first: it is immediate and knows requeued jobs as PENDING; sacct (accounting lags a
    few seconds) for jobs the controller has forgotten.
    """
    wanted = sorted(set(job_ids))
    if not wanted or shutil.which("squeue") is None:
        return {}
    bases = sorted({j.split("_")[0] for j in wanted})
    states: dict[str, str] = {}
    proc = _run(["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T", "-j", ",".join(bases)])
    if proc is not None and proc.returncode == 0:
        states.update(parse_state_lines(proc.stdout))
    missing = sorted({j.split("_")[0] for j in wanted if j not in states})
    if missing and shutil.which("sacct"):
        proc = _run(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(missing)])
        if proc is not None and proc.returncode == 0:
            for jid, state in parse_state_lines(proc.stdout).items():
                states.setdefault(jid, state)
    return {j: states[j] for j in wanted if j in states}
