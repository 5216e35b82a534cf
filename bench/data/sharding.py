"""How a multi-process (DDP) run shares its data: an epoch's global batches and each rank's slice of one.

Every rank draws the same epoch permutation from the same seeded generator, cuts it into the same
global batches of ``cfg.batch_size`` samples (``batch_sizes``), and takes its own contiguous slice of
each (``shard``). So the global batch is what a single process would see, sample for sample,
augmentation included; each epoch reshuffles because the generator is reseeded from (seed, epoch).
This is what DistributedSampler with ``set_epoch`` provides, minus its padding by repeated samples,
and it also works for the device-resident loader (bench.data.batches). With one process the slice
is the whole batch. Plain arithmetic: nothing here talks to the process group.
"""

from __future__ import annotations


def batch_sizes(num_samples: int, batch_size: int, world: int, *, train: bool = True) -> list[int]:
    """Sizes of an epoch's global batches: consecutive chunks of ``batch_size``, the last one shorter.

    With several training processes a last chunk smaller than the world size is dropped (at most
    world - 1 samples an epoch): a rank with no sample would have nothing to run its forward on
    while the others wait for its gradient. Evaluation keeps every sample.
    """
    sizes = [min(batch_size, num_samples - i) for i in range(0, num_samples, batch_size)]
    if train and world > 1 and sizes and sizes[-1] < world:
        sizes.pop()
    return sizes


def shard(size: int, rank: int, world: int) -> tuple[int, int]:
    """[lo, hi) of a global batch of ``size`` samples that ``rank`` trains on.

    Sizes differ by at most one and the larger shards come first, so rank 0 holds the largest,
    ``-(-size // world)``, which every rank can compute without asking the others.
    """
    base, extra = divmod(size, world)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


def max_shard(size: int, world: int) -> int:
    """The largest slice of a global batch of ``size``: rank 0's (see ``shard``)."""
    return -(-size // world)
