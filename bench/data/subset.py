"""``train_size``: a stratified subset of a training set, the same images for every run that asks for it.

Each class keeps its share of the training set (largest remainders, at least one image per class),
and the images of a class are drawn from a generator seeded with ``SELECTION_SEED``, not with the
run's seed: every method and seed of an experiment trains on the same images, and so does any
later run with the same ``train_size``. Each class's images are drawn in one fixed order of which a
subset takes a prefix, so where the quotas grow with the size (always for balanced classes, as in
Fashion-MNIST and CIFAR) a smaller subset's images are among a larger one's. The test set is never
subset.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch

from bench.common.errors import ConfigError

SELECTION_SEED = 20_190_917  # fixed: part of what a train_size means, not a run's seed


def class_quotas(counts: list[int], size: int) -> list[int]:
    """Images per class for a subset of ``size``: each class's share of the set, rounded by largest
    remainder, at least 1 and at most what the class has. ``size`` lies in [len(counts), sum(counts)]."""
    total = sum(counts)
    exact = [size * c / total for c in counts]
    quota = [min(c, max(1, math.floor(e))) for c, e in zip(counts, exact)]
    # Ties are broken by class index, so the quotas depend on nothing but the counts.
    while sum(quota) < size:
        k = max((i for i, c in enumerate(counts) if quota[i] < c), key=lambda i: (exact[i] - quota[i], -i))
        quota[k] += 1
    while sum(quota) > size:
        k = min((i for i in range(len(counts)) if quota[i] > 1), key=lambda i: (exact[i] - quota[i], i))
        quota[k] -= 1
    return quota


def stratified_indices(labels: torch.Tensor, size: int) -> torch.Tensor:
    """Sorted indices of a stratified subset of ``size`` of the samples with these ``labels``."""
    n = len(labels)
    classes, counts = torch.unique(labels, return_counts=True)
    if size > n:
        raise ConfigError("train_size", size, f"at most {n}, the number of training images")
    if size < len(classes):
        raise ConfigError("train_size", size, f"at least {len(classes)}, one image for each class of the training set")
    quotas = class_quotas(counts.tolist(), size)
    g = torch.Generator().manual_seed(SELECTION_SEED)
    chosen = []
    for cls, quota in zip(classes.tolist(), quotas):
        members = (labels == cls).nonzero().flatten()
        chosen.append(members[torch.randperm(len(members), generator=g)[:quota]])
    return torch.cat(chosen).sort().values


def take(data: Any, size: int | None) -> Any:
    """``data`` (a bench.data.sources.Split, or an ImageFolder) reduced to a stratified subset of ``size``;
    itself for ``None``."""
    if size is None:
        return data
    if hasattr(data, "x") and hasattr(data, "y"):  # a Split
        idx = stratified_indices(data.y.cpu(), size)
        return type(data)(data.x[idx], data.y[idx])
    kept = stratified_indices(torch.as_tensor(data.targets), size).tolist()
    # An ImageFolder stays one (its transform is what make_batches extends), with fewer samples.
    out = copy.copy(data)
    out.samples = [data.samples[i] for i in kept]
    out.imgs = out.samples
    out.targets = [data.targets[i] for i in kept]
    return out
