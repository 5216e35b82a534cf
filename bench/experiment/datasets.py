"""The datasets a run can train on, as facts read without loading them: shapes, classes, set sizes, family.

Validating a run, estimating a sweep's hours, shaping a benchmark's fake batches and loading the data
(bench.data) all read this one table. ``imagenet`` is any ImageFolder: its numbers are ILSVRC-2012's,
and a ``train_size`` is checked against the folder itself when it loads.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dataset:
    name: str
    family: str  # what throughput estimates group by: "cifar" for CIFAR-10 and -100, else the name itself
    image_size: int  # side of the square images the network sees
    channels: int
    classes: int
    train_images: int
    test_images: int


DATASETS: dict[str, Dataset] = {d.name: d for d in (
    # scikit-learn's 8×8 digits in 16 grey levels, split once into 1,437 training and 360 test images.
    Dataset("digits", "digits", 8, 1, 10, 1437, 360),
    # Generated in memory (bench.data.sources): noisy colour prototypes, no files.
    Dataset("synthetic", "synthetic", 32, 3, 10, 1000, 500),
    Dataset("cifar10", "cifar", 32, 3, 10, 50_000, 10_000),
    Dataset("cifar100", "cifar", 32, 3, 100, 50_000, 10_000),
    Dataset("fashion_mnist", "fashion_mnist", 28, 1, 10, 60_000, 10_000),
    Dataset("imagenet", "imagenet", 224, 3, 1000, 1_281_167, 50_000),
)}
NAMES = tuple(DATASETS)

# The datasets whose files `--download` fetches (torchvision's CIFAR loaders); the others come with a
# package, are generated, or are the user's own folder.
DOWNLOADS = ("cifar10", "cifar100")
