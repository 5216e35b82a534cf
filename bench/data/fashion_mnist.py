"""Fashion-MNIST (Xiao et al. 2017): 60,000 training and 10,000 test images, 28×28 grey, 10 classes.

The four IDX files (``train-images-idx3-ubyte`` and so on, gzipped or not) are looked for in
``--data-root`` / ``$ISDA_BENCH_DATA`` and its ``fashion-mnist/`` and ``FashionMNIST/raw/``
sub-folders (the latter is where torchvision's own download puts them), then in the folder of the
Debian/Ubuntu package ``dataset-fashion-mnist``. torchvision's IDX reader parses them.

Conventions (no ISDA paper trains on Fashion-MNIST; these follow the suite's CIFAR ones):

- normalisation: mean and standard deviation of all 60,000 training images' pixels, fixed, so
  that a training subset (``train_size``) sees its images on the same scale as the full set;
- random crops from a 4-pixel reflect padding, as on CIFAR (a grey border is mostly black, so
  reflect and zero padding hardly differ here);
- horizontal flips: every class (garments, shoes, bags) keeps its label in a mirror;
- Cutout: a 14×14 hole, half the image side, as 16×16 is on 32×32 CIFAR.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from pathlib import Path

import torch

from bench.common.errors import ConfigError
from bench.experiment.datasets import DATASETS

# Where `apt-get install dataset-fashion-mnist` puts the files (`dpkg -L dataset-fashion-mnist`).
DEBIAN_FOLDER = Path("/usr/share/datasets/fashion-mnist")
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
INSTALL = "apt-get install dataset-fashion-mnist, or pass --data-root (or set ISDA_BENCH_DATA) to a folder holding them"
# Pixel mean and standard deviation (on the 0..1 scale) over the 60,000 training images.
MEAN = 0.2860406
STD = 0.3530242
PAD, FLIP, CUTOUT = 4, True, 14
SIZE, CLASSES = DATASETS["fashion_mnist"].image_size, DATASETS["fashion_mnist"].classes


def folders(root: str | None) -> list[Path]:
    """The folders searched, in order."""
    given = root or os.environ.get("ISDA_BENCH_DATA")
    out = []
    if given:
        base = Path(given).expanduser()
        out = [base, base / "fashion-mnist", base / "FashionMNIST" / "raw"]
    return [*out, DEBIAN_FOLDER]


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def find_files(root: str | None) -> dict[str, Path]:
    """The four files from the first folder that holds all of them; one line naming the places otherwise."""
    searched = folders(root)
    for folder in searched:
        found = {name: _find(folder, name) for pair in FILES.values() for name in pair}
        if all(found.values()):
            return found  # type: ignore[return-value]
    names = ", ".join(f"{n}[.gz]" for pair in FILES.values() for n in pair)
    raise ConfigError("data_root", root or os.environ.get("ISDA_BENCH_DATA"),
                      f"a folder holding Fashion-MNIST's {names}; looked in {', '.join(map(str, searched))}; "
                      f"to install: {INSTALL}")


def _read(path: Path, reader) -> torch.Tensor:
    """Parse one IDX file with torchvision's ``reader``, decompressing a .gz copy to a temporary file first."""
    if path.suffix != ".gz":
        return reader(str(path))
    with tempfile.TemporaryDirectory(prefix="isda-bench-idx-") as tmp:
        plain = Path(tmp) / path.stem
        with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 20)
        return reader(str(plain))


def load(root: str | None) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """((train images uint8 [N, 1, 28, 28], labels int64 [N]), (test images, labels))."""
    from torchvision.datasets.mnist import read_image_file, read_label_file

    files = find_files(root)
    splits = []
    for images_name, labels_name in FILES.values():
        try:
            x = _read(files[images_name], read_image_file)
            y = _read(files[labels_name], read_label_file)
        except (AssertionError, KeyError, TypeError, ValueError, RuntimeError, OSError, EOFError) as exc:
            raise ConfigError("data_root", str(files[images_name].parent),
                              f"readable Fashion-MNIST IDX files ({files[images_name].name} or "
                              f"{files[labels_name].name}: {type(exc).__name__}: {exc}); to reinstall: {INSTALL}"
                              ) from exc
        if x.shape[1:] != (SIZE, SIZE) or len(x) != len(y) or len(y) == 0 or int(y.max()) >= CLASSES:
            raise ConfigError("data_root", str(files[images_name].parent),
                              f"Fashion-MNIST files with as many 28×28 images as labels in 0..9 (found images "
                              f"{tuple(x.shape)}, {len(y)} labels)")
        splits.append((x[:, None].contiguous(), y.long()))
    return splits[0], splits[1]
