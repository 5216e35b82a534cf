"""What this machine gives a local launch: the GPUs it may use, its CPU cores, and the refusal of runs
whose processes (the run config's ``world_size``) it cannot host."""

from __future__ import annotations

import os

from bench.common.errors import ConfigError
from bench.experiment.runconfig import RunConfig


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count()


def visible_gpus() -> list[str]:
    """The devices this process may use, as CUDA_VISIBLE_DEVICES entries (indices, UUIDs or MIG ids).

    A child's CUDA_VISIBLE_DEVICES is read against the physical list, so a launcher started with
    CUDA_VISIBLE_DEVICES=2,3 must hand out "2" and "3", not "0" and "1".
    """
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        entries = [e.strip() for e in env.split(",") if e.strip()]
        # CUDA stops at the first invalid entry (-1 hides everything).
        return [] if not entries or entries[0].startswith("-") else entries[: _gpu_count()]
    return [str(i) for i in range(_gpu_count())]


def uses_gpus(cfg: RunConfig, gpus: list[str]) -> bool:
    """Whether ``cfg``'s processes each take one of ``gpus`` (none on a machine without, none for cpu runs)."""
    return bool(gpus) and cfg.device != "cpu"


def check_fits(cluster: str, todo: list[RunConfig]) -> None:
    """Refuse, before anything is written, runs that ``cluster`` cannot give their processes."""
    need = max((cfg.world_size for cfg in todo), default=1)
    if need == 1 or cluster == "slurm":
        return
    if cluster == "debug":
        raise ConfigError("--cluster", "debug", f"local or slurm: these runs have {need} processes each, "
                          "and debug trains in this one process")
    gpus = visible_gpus()
    on_gpus = max((cfg.world_size for cfg in todo if uses_gpus(cfg, gpus)), default=1)
    if on_gpus > len(gpus) > 0:
        raise ConfigError("world_size", on_gpus, f"at most {len(gpus)} here (the GPUs visible to this launch)")
