"""Fashion-MNIST (Xiao et al. 2017): 60,000 training and 10,000 test images, 28×28 grey, 10 classes.

The four IDX files (``train-images-idx3-ubyte`` and so on, gzipped or not) are looked for in
``--data-root`` / ``$ISDA_BENCH_DATA`` and its ``fashion-mnist/`` and ``FashionMNIST/raw/``
sub-folders (the latter is where torchvision's own download puts them) or, without a data root, in
the folder of the Debian/Ubuntu package ``dataset-fashion-mnist``. torchvision's IDX reader parses them.

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


def given_root(root: str | None) -> tuple[str, str] | None:
    """(the key that names it, the folder) of the data root the user gave, or None without one."""
    if root:
        return "data_root", root
    env = os.environ.get("ISDA_BENCH_DATA")
    return ("ISDA_BENCH_DATA", env) if env else None


def folders(root: str | None) -> list[Path]:
    """The folders searched, in order: those of the data root given, else the package's folder.

    The system's copy is not a fallback for a data root: a mistyped or half-filled folder must be
    named, not trained past on other files."""
    given = given_root(root)
    if given is None:
        return [DEBIAN_FOLDER]
    base = Path(given[1]).expanduser()
    return [base, base / "fashion-mnist", base / "FashionMNIST" / "raw"]


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def find_files(root: str | None) -> dict[str, Path]:
    """The four files from the first folder that holds all of them; one line naming the files a
    folder holds only some of, or the places searched, otherwise (files are never mixed across folders)."""
    searched = folders(root)
    given = given_root(root)
    key, value = given or ("data_root", None)
    names = [name for pair in FILES.values() for name in pair]
    found = [{name: _find(folder, name) for name in names} for folder in searched]
    for files in found:
        if all(files.values()):
            return files  # type: ignore[return-value]
    for folder, files in zip(searched, found):
        if any(files.values()):
            lacking = ", ".join(f"{n}[.gz]" for n, path in files.items() if path is None)
            raise ConfigError(key, value, f"a folder holding all four of Fashion-MNIST's files ({folder} lacks "
                              f"{lacking})")
    hint = ("without a data root the system's copy is read: apt-get install dataset-fashion-mnist" if given
            else f"to install: {INSTALL}")
    raise ConfigError(key, value, f"a folder holding Fashion-MNIST's {', '.join(f'{n}[.gz]' for n in names)}; "
                      f"looked in {', '.join(map(str, searched))}; {hint}")


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
