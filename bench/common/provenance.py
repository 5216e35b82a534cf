"""What a run records about where it ran: versions, git sha, device."""

from __future__ import annotations

import os
import platform
import subprocess
from functools import lru_cache
from pathlib import Path

import torch


@lru_cache(maxsize=1)
def git_sha() -> str:
    """The checkout's commit, with ``-dirty`` when it has uncommitted changes; ``unknown`` outside git."""
    here = Path(__file__).resolve().parent
    # No index lock taken: processes of one run ask at once, and a SIGKILL must leave no stale lock.
    # The timeouts only guard against a hung git; a loaded machine can take seconds.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=120, check=True, env=env).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=120, env=env).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The processor's name as the kernel reports it (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    """The device, and on a CPU the instruction set torch's kernels were chosen for: two CPUs with
    different ones (AVX2, AVX512) round differently, so their seeded runs differ."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return (f"cpu ({cpu_model()}, {torch.backends.cpu.get_cpu_capability()}, "
            f"{torch.get_num_threads()} threads)")


def versions() -> dict[str, str]:
    import torchvision

    from bench import __version__

    return {"isda_bench": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "python": platform.python_version(), "cuda": str(torch.version.cuda)}
