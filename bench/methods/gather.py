"""The one collective a loss needs: every rank's features and labels, gathered in one all-gather.

ISDA's class statistics under global sync (bench.methods.covariance) merge the global batch, so each
rank needs every rank's rows. It lives with the losses, not with the trainer's collectives
(bench.train.distributed), so that the methods never import the training loop that imports them.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

# torch 2.14 renamed all_gather_into_tensor (same arguments) and deprecated the old name.
_gather_into = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor


def all_gather_rows(x: Tensor, labels: Tensor, pad_to: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Every rank's ``x`` [n_r, A] and integer ``labels`` [n_r], stacked in rank order.

    Returns (x [W·P, A], labels [W·P], valid [W·P]) with P = ``pad_to``: each rank's rows are
    padded with zero rows (label 0, valid 0) up to P, since all_gather moves equal-sized blocks.
    One collective carries all three, packed as columns of ``x``'s dtype (labels are exact there
    up to 2**24 in float32). With ``pad_to`` given nothing is read back to the host; ``None`` asks
    the group for the largest n_r, one small extra collective and a host read.
    """
    n, a = x.shape
    world = dist.get_world_size()
    if pad_to is None:
        size = torch.tensor([n], device=x.device, dtype=torch.int64)
        dist.all_reduce(size, op=dist.ReduceOp.MAX)
        pad_to = int(size)
    if n > pad_to:
        raise ValueError(f"local batch of {n} rows is larger than pad_to={pad_to}")
    packed = torch.cat([x, labels.to(x.dtype)[:, None], x.new_ones(n, 1)], dim=1)
    packed = F.pad(packed, (0, 0, 0, pad_to - n))  # zero rows: valid = 0 marks them
    out = packed.new_empty(world * pad_to, a + 2)
    # One call for NCCL and gloo alike, so that the CPU tests run the collective GPUs use.
    _gather_into(out, packed)
    return out[:, :a], out[:, a].long(), out[:, a + 1]
