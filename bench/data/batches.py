"""How batches are made: augmentation applied to whole batches on any device, or per image in workers.

Crop, flip and cutout are index arithmetic on the batch, so the same code runs on the CPU and, with
the data resident on the GPU, without a worker pool. AutoAugment (the authors' CIFAR-10 policy,
bench.data.autoaugment, or torchvision's) and RandAugment are per-image transforms and run on the CPU.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sized
from typing import cast

import torch

from bench.data.sharding import batch_sizes, shard
from bench.data.sources import DatasetInfo, Split
from bench.methods import Method


def _reflect(idx: torch.Tensor, size: int) -> torch.Tensor:
    """Index of reflect padding: -1 → 1, size → size - 2."""
    idx = idx.abs()
    return torch.where(idx > size - 1, 2 * (size - 1) - idx, idx)


def crop_flip(x: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor, flip: torch.Tensor, pad: int) -> torch.Tensor:
    """Random crop from a reflect-padded image, then a horizontal flip where ``flip``; as one gather."""
    n, _, h, w = x.shape
    rows = _reflect(torch.arange(h, device=x.device)[None] + oy[:, None] - pad, h)
    cols = torch.arange(w, device=x.device)[None].expand(n, w)
    cols = torch.where(flip[:, None], w - 1 - cols, cols)
    cols = _reflect(cols + ox[:, None] - pad, w)
    out = x[torch.arange(n, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


def cutout(x: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor, size: int) -> torch.Tensor:
    """Zero one size×size square per image, centred anywhere and clipped at the border (DeVries 2017).

    Applied to the pixels before normalisation, as the authors' ISDA code does (ToTensor, Cutout,
    Normalize): the hole is black, not the dataset's mean colour.
    """
    h, w = x.shape[-2:]
    r = torch.arange(h, device=x.device)[None]
    c = torch.arange(w, device=x.device)[None]
    in_r = (r >= cy[:, None] - size // 2) & (r < cy[:, None] + size // 2)
    in_c = (c >= cx[:, None] - size // 2) & (c < cx[:, None] + size // 2)
    keep = ~(in_r[:, :, None] & in_c[:, None, :])
    return x * keep[:, None].to(x.dtype)


def cutout_size(method: Method | None, info: DatasetInfo) -> int:
    """Side of the Cutout hole in a training batch of ``method`` on ``info``'s dataset; 0: no Cutout.

    Cutout comes with AutoAugment where the authors' CIFAR code adds it (train.py, its autoaugment
    branch), not on ImageNet, where no ISDA paper uses Cutout: AutoAugment there is the ImageNet policy
    alone, as its paper trains it. The method ``cutout`` cuts everywhere.
    """
    if method is None or not method.cutout:
        return 0
    if info.name == "imagenet" and method.augment != "cutout":
        return 0
    return info.cutout


def _policy(augment: str, dataset: str, randaugment: tuple[int, int] | None = None):
    from torchvision import transforms as T

    if augment == "autoaugment" and dataset != "imagenet":
        # The paper's AA: the authors' CIFAR-10 policy (bench.data.autoaugment), on CIFAR-100 too.
        from bench.data.autoaugment import AuthorsCIFAR10Policy

        return AuthorsCIFAR10Policy()
    if augment in ("autoaugment", "tv_autoaugment"):
        # torchvision's policies: the searched CIFAR-10 one with black fill, or ImageNet's.
        return T.AutoAugment(T.AutoAugmentPolicy.IMAGENET if dataset == "imagenet" else T.AutoAugmentPolicy.CIFAR10)
    if augment == "randaugment":
        # (N, M) from the run (bench.experiment.recipes.RANDAUGMENT); M is one of torchvision's 31 magnitude bins.
        n, m = randaugment or (2, 9)
        return T.RandAugment(num_ops=n, magnitude=m, num_magnitude_bins=31)
    return None


class _Normalise:
    def __init__(self, info: DatasetInfo, device: torch.device):
        shape = (1, info.channels, 1, 1)
        self.device = device
        self.mean = torch.tensor(info.mean, device=device).view(shape)
        self.std = torch.tensor(info.std, device=device).view(shape)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x.to(self.device, non_blocking=True).float() / 255 - self.mean) / self.std


class Batches:
    """Mini-batches of a uint8 tensor split: shuffled and augmented in whole batches, or plain.

    All randomness of an epoch comes from the generator passed to ``epoch``, so a run reseeded
    at each epoch repeats exactly. With ``resident`` the images live on the device (airbench
    style): no worker pool, one gather per batch.
    """

    def __init__(self, split: Split, info: DatasetInfo, batch_size: int, device: torch.device,
                 method: Method | None = None, resident: bool = True):
        self.info, self.batch_size, self.device, self.method = info, batch_size, device, method
        self.split = split.to(device) if resident else split
        self.normalise = _Normalise(info, device)

    def __len__(self) -> int:
        return -(-self.num_samples // self.batch_size)

    @property
    def num_samples(self) -> int:
        return len(self.split.y)

    def batch_sizes(self, world: int = 1) -> list[int]:
        """Global batch sizes ``epoch`` goes through with ``world`` ranks (bench.data.sharding)."""
        return batch_sizes(self.num_samples, self.batch_size, world, train=self.method is not None)

    def epoch(self, generator: torch.Generator | None = None, rank: int = 0,
              world: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass; with ``world`` > 1, ``rank``'s shard of each global batch.

        Every rank draws the same permutation and per-sample augmentation from the same
        generator and keeps its slice of each batch, so the ranks' shards put together are the
        single-process batch, sample for sample.
        """
        n, bs = self.num_samples, self.batch_size
        sizes = self.batch_sizes(world)
        if self.method is None:
            for i, b in zip(range(0, n, bs), sizes):
                lo, hi = shard(b, rank, world)
                if hi > lo:  # evaluation: a rank may get nothing from a last batch smaller than world
                    x, y = self.split.x[i + lo:i + hi], self.split.y[i + lo:i + hi]
                    yield self.normalise(x), y.to(self.device)
            return
        info, dev = self.info, self.split.x.device
        hole = cutout_size(self.method, info)
        # Draw the whole epoch's random numbers at once on the CPU: one small copy, no per-step sync.
        perm = torch.randperm(n, generator=generator)
        oy, ox = torch.randint(0, 2 * info.pad + 1, (2, n), generator=generator)
        flip = torch.rand(n, generator=generator) < 0.5 if info.flip else torch.zeros(n, dtype=torch.bool)
        cy, cx = torch.randint(0, info.size, (2, n), generator=generator)
        perm, oy, ox, flip, cy, cx = (t.to(dev) for t in (perm, oy, ox, flip, cy, cx))
        for i, b in zip(range(0, n, bs), sizes):
            lo, hi = shard(b, rank, world)
            idx = perm[i + lo:i + hi]
            x = crop_flip(self.split.x[idx], oy[idx], ox[idx], flip[idx], info.pad)
            if hole:
                x = cutout(x, cy[idx], cx[idx], hole)
            yield self.normalise(x), self.split.y[idx].to(self.device, non_blocking=True)


class _PerImage(torch.utils.data.Dataset):
    """A uint8 tensor split through per-image CPU transforms (crop, flip, AutoAugment, ...)."""

    def __init__(self, split: Split, transform):
        self.split, self.transform = split, transform

    def __len__(self) -> int:
        return len(self.split.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.split.x[i]), int(self.split.y[i])


class WorkerBatches:
    """Mini-batches from per-image CPU transforms in a DataLoader (workers optional).

    For what cannot be batched on the device: AutoAugment / RandAugment, and JPEG decoding with
    RandomResizedCrop for ImageNet. Images travel as uint8 and are normalised on the device;
    Cutout is still applied to the whole batch there. The loader's shuffling and its workers'
    seeds derive from the epoch's generator, so an epoch repeats for the same worker count.
    """

    def __init__(self, dataset: torch.utils.data.Dataset, info: DatasetInfo, batch_size: int,
                 device: torch.device, method: Method | None = None, workers: int = 0):
        self.dataset, self.info, self.batch_size, self.device = dataset, info, batch_size, device
        self.method, self.workers = method, workers
        self.normalise = _Normalise(info, device)

    def __len__(self) -> int:
        return -(-self.num_samples // self.batch_size)

    @property
    def num_samples(self) -> int:
        return len(cast(Sized, self.dataset))

    def batch_sizes(self, world: int = 1) -> list[int]:
        """Global batch sizes ``epoch`` goes through with ``world`` ranks (bench.data.sharding)."""
        return batch_sizes(self.num_samples, self.batch_size, world, train=self.method is not None)

    def epoch(self, generator: torch.Generator | None = None, rank: int = 0,
              world: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass; with ``world`` > 1, ``rank``'s shard of each global batch (see ``_sharded``)."""
        if world > 1:
            yield from self._sharded(generator, rank, world)
            return
        train = self.method is not None
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=self.batch_size, shuffle=train, generator=generator,
            num_workers=self.workers, pin_memory=self.device.type == "cuda",
            persistent_workers=False, multiprocessing_context="spawn" if self.workers else None)
        holes = None
        if train and cutout_size(self.method, self.info):
            holes = torch.randint(0, self.info.size, (2, self.num_samples), generator=generator)
        for i, (x, y) in enumerate(loader):
            sl = slice(i * self.batch_size, i * self.batch_size + len(y))
            yield self._on_device(x, y, holes[:, sl] if holes is not None else None)

    def _on_device(self, x: torch.Tensor, y: torch.Tensor,
                   holes: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """A loaded uint8 batch on the device: Cutout at ``holes`` (centres, [2, n]) if given, normalised."""
        x = x.to(self.device, non_blocking=True)
        if holes is not None:
            holes = holes.to(self.device)
            x = cutout(x, holes[0], holes[1], cutout_size(self.method, self.info))
        return self.normalise(x), y.to(self.device, non_blocking=True)

    def _sharded(self, generator: torch.Generator | None, rank: int,
                 world: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # The same rule as Batches: one permutation from the shared generator, cut into global
        # batches, each rank loading its slice (the role of DistributedSampler + set_epoch).
        # The per-image transforms draw from each worker's own generator, seeded from the shared
        # one plus the rank, so ranks do not repeat each other's random crops.
        train = self.method is not None
        n = self.num_samples
        order = torch.randperm(n, generator=generator) if train else torch.arange(n)
        holes = None
        if train and cutout_size(self.method, self.info):
            holes = torch.randint(0, self.info.size, (2, n), generator=generator)
        seed = int(torch.randint(0, 2**62, (1,), generator=generator)) if train else 0
        shards, start = [], 0
        for b in self.batch_sizes(world):
            lo, hi = shard(b, rank, world)
            if hi > lo:
                shards.append(order[start + lo:start + hi].tolist())
            start += b
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_sampler=shards, generator=torch.Generator().manual_seed(seed + rank),
            num_workers=self.workers, pin_memory=self.device.type == "cuda",
            persistent_workers=False, multiprocessing_context="spawn" if self.workers else None)
        for idx, (x, y) in zip(shards, loader):
            # Cutout drawn per sample, as Batches does
            yield self._on_device(x, y, holes[:, torch.tensor(idx)] if holes is not None else None)


def make_batches(data, info: DatasetInfo, batch_size: int, device: torch.device, method: Method | None,
                 *, resident: bool = True, workers: int = 0, randaugment: tuple[int, int] | None = None):
    """The right loader for a split: device-batched where possible, per-image workers otherwise.

    ``randaugment``: RandAugment's (N, M) for a method with RandAugment (torchvision's (2, 9) if None).
    """
    from torchvision import transforms as T

    policy = _policy(method.augment, info.name, randaugment) if method is not None else None
    if isinstance(data, Split) and policy is None:
        return Batches(data, info, batch_size, device, method, resident)
    if isinstance(data, Split):
        steps = [T.RandomCrop(info.size, padding=info.pad, padding_mode="reflect")] if info.pad else []
        steps += [T.RandomHorizontalFlip()] if info.flip else []
        data = _PerImage(data, T.Compose(steps + [policy]))
    elif policy is not None:  # an ImageFolder: the policy acts on the cropped, flipped PIL image
        data = copy.copy(data)
        *steps, to_tensor = data.transform.transforms
        data.transform = T.Compose([*steps, policy, to_tensor])
    return WorkerBatches(data, info, batch_size, device, method, workers)
