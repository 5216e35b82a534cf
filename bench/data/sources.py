"""Where a run's images come from: each dataset loaded (or generated) as uint8 tensors, or as ImageFolders.

Every dataset but ImageNet becomes two ``Split``s of uint8 images [N, C, H, W] plus labels, with a
``DatasetInfo`` of what batching needs (normalisation, crop padding, flips, Cutout's size); shapes,
classes and set sizes are those of bench.experiment.datasets. ImageNet stays two torchvision
ImageFolders that decode their JPEGs image by image. bench.data.batches turns either into batches.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.common.errors import ConfigError
from bench.common.paths import input_folder, output_folder
from bench.experiment.datasets import DATASETS, NAMES

CIFAR_MEAN = (125.3 / 255, 123.0 / 255, 113.9 / 255)
CIFAR_STD = (63.0 / 255, 62.1 / 255, 66.7 / 255)


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    channels: int
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    pad: int  # reflect padding before the random crop
    flip: bool  # horizontal flips preserve the label
    cutout: int  # side of the Cutout hole: 16 on 32×32 CIFAR, scaled with the image elsewhere


@dataclass
class Split:
    x: torch.Tensor  # uint8 [N, C, H, W]
    y: torch.Tensor  # int64 [N]

    def to(self, device: torch.device) -> Split:
        return Split(self.x.to(device), self.y.to(device))


def data_root(root: str | None) -> Path:
    return Path(root or os.environ.get("ISDA_BENCH_DATA") or "data").expanduser()


def _info(name: str, mean: tuple[float, ...], std: tuple[float, ...], *, pad: int, flip: bool, cutout: int,
          classes: int | None = None, size: int | None = None) -> DatasetInfo:
    """Dataset ``name``'s DatasetInfo: channels, classes and image side from bench.experiment.datasets,
    unless ``classes`` and ``size`` say otherwise (an ImageFolder's own)."""
    facts = DATASETS[name]
    return DatasetInfo(name, facts.classes if classes is None else classes, facts.channels,
                       facts.image_size if size is None else size, mean, std, pad=pad, flip=flip, cutout=cutout)


def _digits() -> tuple[Split, Split, DatasetInfo]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # 0..16 grey levels → uint8
    # A fixed stratified split: 1,437 training and 360 test digits.
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=DATASETS["digits"].test_images, stratify=d.target,
                                          random_state=0)
    train = Split(torch.from_numpy(xtr), torch.from_numpy(ytr).long())
    test = Split(torch.from_numpy(xte), torch.from_numpy(yte).long())
    m = float(train.x.float().mean() / 255)
    s = float(train.x.float().std() / 255)
    return train, test, _info("digits", (m,), (s,), pad=1, flip=False, cutout=4)


def _synthetic(num_train: int = DATASETS["synthetic"].train_images,
               num_test: int = DATASETS["synthetic"].test_images) -> tuple[Split, Split, DatasetInfo]:
    """Ten classes of noisy 32×32 colour prototypes: learnable, deterministic, needs no files.

    The prototypes are smooth (a 4×4 colour grid upsampled) and mirror-symmetric, so the CIFAR
    augmentation used with them (4-pixel crops, flips) keeps an image near its own class: pixel-level
    random prototypes would be scrambled by a shift and a network could not learn them in a few epochs.
    """
    g = torch.Generator().manual_seed(12345)
    coarse = torch.rand(10, 3, 4, 4, generator=g)
    protos = torch.nn.functional.interpolate(coarse, size=(32, 32), mode="bilinear", align_corners=False)
    protos = (protos + protos.flip(-1)) / 2
    lo, hi = protos.amin(dim=(1, 2, 3), keepdim=True), protos.amax(dim=(1, 2, 3), keepdim=True)
    protos = (protos - lo) / (hi - lo) * 255

    def make(n: int) -> Split:
        y = torch.arange(n) % 10
        noise = torch.randn(n, 3, 32, 32, generator=g) * 60
        return Split((protos[y] + noise).clamp(0, 255).round().to(torch.uint8), y.long())

    info = _info("synthetic", CIFAR_MEAN, CIFAR_STD, pad=4, flip=True, cutout=16)
    return make(num_train), make(num_test), info


def _cifar(name: str, root: str | None, download: bool) -> tuple[Split, Split, DatasetInfo]:
    from torchvision.datasets import CIFAR10, CIFAR100

    base, folder = (CIFAR10, "cifar-10-batches-py") if name == "cifar10" else (CIFAR100, "cifar-100-python")

    class Files(base):  # type: ignore[misc, valid-type]
        # torchvision parses the files; presence replaces its md5 check, which would refuse any
        # subset or re-export of the data (a damaged pickle still fails when it is read).
        def _check_integrity(self) -> bool:
            root = Path(self.root) / self.base_folder
            return all((root / f).is_file() for f, _ in self.train_list + self.test_list)

        def _load_meta(self) -> None:
            with open(Path(self.root) / self.base_folder / self.meta["filename"], "rb") as fh:
                self.classes = pickle.load(fh, encoding="latin1")[self.meta["key"]]
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    path = data_root(root)
    try:
        sets = [Files(str(path), train=t, download=download) for t in (True, False)]
    except (RuntimeError, OSError, EOFError, KeyError, ValueError, pickle.UnpicklingError) as exc:
        raise ConfigError("data_root", str(path), f"a folder holding {folder}/ (pass --download to fetch it)"
                          ) from exc
    splits = [Split(torch.from_numpy(s.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(s.targets).long())
              for s in sets]
    info = _info(name, CIFAR_MEAN, CIFAR_STD, pad=4, flip=True, cutout=16)
    return splits[0], splits[1], info


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _imagenet(root: str | None, size: int = 224) -> tuple[Any, Any, DatasetInfo]:
    """An ImageFolder root with train/ and val/ (one folder per class, as for ImageNet)."""
    from torchvision import transforms as T
    from torchvision.datasets import ImageFolder

    path = data_root(root)
    if not (path / "train").is_dir() or not (path / "val").is_dir():
        raise ConfigError("data_root", str(path), "a folder with train/ and val/, one sub-folder per class")
    try:
        train = ImageFolder(str(path / "train"), transform=T.Compose([
            T.RandomResizedCrop(size), T.RandomHorizontalFlip(), T.PILToTensor()]))
        val = ImageFolder(str(path / "val"), transform=T.Compose([
            T.Resize(size * 256 // 224), T.CenterCrop(size), T.PILToTensor()]))
    except FileNotFoundError as exc:  # no class folder, or a class folder without images
        raise ConfigError("data_root", str(path), f"train/ and val/ with images in every class folder ({exc})") \
            from exc
    if train.classes != val.classes:
        raise ConfigError("data_root", str(path), "train/ and val/ with the same class folders")
    info = _info("imagenet", IMAGENET_MEAN, IMAGENET_STD, pad=0, flip=True, cutout=size // 2,
                 classes=len(train.classes), size=size)
    return train, val, info


def check_source(name: str, root: str | None = None, download: bool = False) -> None:
    """Refuse, before a command writes anything, a dataset whose files are not where loading will look.
    Cheap: names and folders only (loading reads and checks the files themselves).

    A data folder the user named (``root``, else ``$ISDA_BENCH_DATA``) must be one whatever the dataset
    reads from it: digits ignore it, and a mistyped path would otherwise go unnoticed."""
    named = ("data_root", root) if root else ("ISDA_BENCH_DATA", os.environ.get("ISDA_BENCH_DATA"))
    if named[1]:
        input_folder(Path(named[1]).expanduser(), named[0], missing_ok=download)
    if name == "fashion_mnist":
        from bench.data import fashion_mnist

        fashion_mnist.find_files(root)
        return
    if name not in ("cifar10", "cifar100", "imagenet"):
        return  # generated or shipped with a package
    path = data_root(root)
    if name == "imagenet":
        input_folder(path, "data_root", missing_ok=True)  # a file, a link to nothing … say so
        if not (path / "train").is_dir() or not (path / "val").is_dir():
            raise ConfigError("data_root", str(path), "a folder with train/ and val/, one sub-folder per class")
        return
    if download:
        output_folder(path, "data_root")
        return
    from torchvision.datasets import CIFAR10, CIFAR100

    base = CIFAR10 if name == "cifar10" else CIFAR100
    files = [f for f, _ in base.train_list + base.test_list] + [base.meta["filename"]]
    folder = input_folder(path, "data_root", missing_ok=True) / base.base_folder
    if not all((folder / f).is_file() for f in files):
        raise ConfigError("data_root", str(path), f"a folder holding {base.base_folder}/ (pass --download to fetch it)")



def _fashion_mnist(root: str | None) -> tuple[Split, Split, DatasetInfo]:
    from bench.data import fashion_mnist as fm

    train, test = fm.load(root)
    info = _info("fashion_mnist", (fm.MEAN,), (fm.STD,), pad=fm.PAD, flip=fm.FLIP, cutout=fm.CUTOUT)
    return Split(*train), Split(*test), info


def load_dataset(name: str, root: str | None = None, download: bool = False,
                 train_size: int | None = None) -> tuple[Any, Any, DatasetInfo]:
    """(train, test, info): uint8 ``Split``s, or for ``imagenet`` torchvision ImageFolders.

    ``train_size``: a stratified subset of the training set (bench.data.subset); the test set stays whole.
    """
    from bench.data.subset import take

    if name == "imagenet":
        train, test, info = _imagenet(root)
    elif name == "digits":
        train, test, info = _digits()
    elif name == "synthetic":
        train, test, info = _synthetic()
    elif name in ("cifar10", "cifar100"):
        train, test, info = _cifar(name, root, download)
    elif name == "fashion_mnist":
        train, test, info = _fashion_mnist(root)
    else:
        raise ConfigError("dataset", name, NAMES)
    return take(train, train_size), test, info


