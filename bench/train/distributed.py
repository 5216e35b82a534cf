"""Multi-process (DDP) runs: the process group from the job's environment, and the collectives the trainer uses.

One process per GPU (or per CPU slot, with gloo, in the tests). The launcher starts every
process of a run and calls ``init_from_env(cfg.device)`` in each before ``bench.train.trainer.run``;
``run`` then reads rank and world size from the initialised process group. Nothing here is
needed, or does anything, for a single-process run.

Where the rank comes from, first match wins:
  1. RANK / WORLD_SIZE (/ LOCAL_RANK, MASTER_ADDR, MASTER_PORT) already in the environment:
     torchrun, or a launcher that exported them;
  2. a submitit job (SUBMITIT_EXECUTOR set) with more than one task: submitit's JobEnvironment
     gives global rank, local rank and task count, MASTER_ADDR is the job's first host and
     MASTER_PORT is derived from the job id (submitit's own TorchDistributedEnvironment rule);
  3. otherwise: one process, rank 0 of 1, no process group.

How the data is shared among the ranks is the data's own business (bench.data.sharding); the
all-gather of features that ISDA's statistics need under global sync is the loss's
(bench.methods.gather).
"""

from __future__ import annotations

import datetime
import os
from typing import NamedTuple, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor

T = TypeVar("T")


class DistInfo(NamedTuple):
    rank: int
    world_size: int
    local_rank: int
    device: torch.device


def environment() -> tuple[int, int, int]:
    """(rank, world size, local rank) as the job's environment describes it; exports MASTER_* for submitit."""
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:
        rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
        return rank, world, int(env.get("LOCAL_RANK", rank))
    if env.get("SUBMITIT_EXECUTOR"):
        import submitit

        job = submitit.JobEnvironment()
        if job.num_tasks > 1:
            from submitit.helpers import TorchDistributedEnvironment

            # Sets MASTER_ADDR/PORT, RANK, WORLD_SIZE, LOCAL_RANK. CUDA_VISIBLE_DEVICES is left alone:
            # the device is picked from the local rank below, whatever SLURM made visible.
            tde = TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
            return tde.rank, tde.world_size, tde.local_rank
    return 0, 1, 0


def _device_for(name: str, local_rank: int) -> torch.device:
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        from bench.common.errors import ConfigError

        raise ConfigError("device", name, "cpu or auto (no CUDA device is visible)")
    # SLURM may show each task all of the node's GPUs or only its own: modulo covers both.
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def init_from_env(device: str = "auto", *, timeout_min: float = 30.0) -> DistInfo:
    """Join the run's process group (NCCL on GPU, gloo on CPU) if the job has several processes.

    ``device`` is the run's ``cfg.device``. Safe to call in a single-process job (returns rank 0 of 1
    without creating a group) and to call twice (an existing group is reused). On GPU the process's
    current device is set to its own, so ``torch.device("cuda")`` means that GPU from then on.
    """
    if dist.is_available() and dist.is_initialized():
        return current(device)
    rank, world, local_rank = environment()
    dev = _device_for(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1:
        if not dist.is_available():
            raise RuntimeError("this torch build has no torch.distributed, needed for a multi-process run")
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", init_method="env://", rank=rank,
                                world_size=world, timeout=datetime.timedelta(minutes=timeout_min))
    return DistInfo(rank, world, local_rank, dev)


def current(device: str = "auto") -> DistInfo:
    """Rank and world size of the initialised process group (0 of 1 without one)."""
    rank, world = rank_and_world()
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if device != "cpu" and torch.cuda.is_available() and world > 1:
        dev = torch.device("cuda", torch.cuda.current_device())
    else:
        dev = _device_for(device, local_rank)
    return DistInfo(rank, world, local_rank, dev)


def rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shutdown() -> None:
    """Leave the process group (no-op without one); call once the run has returned."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# ----------------------------------------------------------------------------- collectives


def all_reduce_sum(t: Tensor) -> Tensor:
    """In-place sum over ranks (no-op for one process); returns ``t``."""
    if rank_and_world()[1] > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_tensors(tensors: list[Tensor], src: int = 0) -> None:
    """Overwrite every rank's tensors, in place, with rank ``src``'s."""
    if rank_and_world()[1] > 1:
        for t in tensors:
            dist.broadcast(t, src=src)


def broadcast_object(obj: T, src: int = 0) -> T:
    """Rank ``src``'s (picklable) ``obj`` on every rank."""
    if rank_and_world()[1] == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]
