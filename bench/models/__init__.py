"""Model registry: user-facing architecture names -> networks with a ``features``/``fc`` split.

Every model returned by :func:`create_model` has ``num_features`` (feature dim A),
``fc`` (``nn.Linear(A, num_classes)``), ``features(x) -> [N, A]`` and
``forward(x) == fc(features(x))``. CIFAR networks are also registered with timm under
``cifar_<name>`` so ``timm.create_model("cifar_wrn28_10", num_classes=100)`` works.
"""

# ruff: noqa: E402 - the imports after guard_wandb_import() must come after it
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from bench.tracking.wandb_tracker import guard_wandb_import

guard_wandb_import()  # before timm, which imports wandb and survives only an ImportError

import timm

from bench.common.errors import ConfigError

from . import densenet, resnet, resnext, shake_shake, wide_resnet  # noqa: F401  (registers cifar_*)
from .base import FeatureClassifier, count_params
from .imagenet import TimmFeatureClassifier, create_timm_classifier

__all__ = [
    "ARCHS",
    "ArchInfo",
    "FeatureClassifier",
    "TimmFeatureClassifier",
    "count_params",
    "create_model",
]

Family = Literal["cifar", "imagenet"]


@dataclass(frozen=True)
class ArchInfo:
    """What the benchmark needs to know about one architecture.

    ``paper_name`` and ``paper_params`` are spelled as in the paper tables
    (``bench/reference/*.csv``, columns ``arch`` and ``params``) so results can be
    joined with them. ``exact_params_m`` is the reference network's count without the head
    in millions (docs/method.md, Training recipes), known for the CIFAR networks only.
    """

    timm_name: str
    family: Family
    paper_name: str
    paper_params: str
    feature_dim: int
    exact_params_m: float | None = None
    dropout: bool = False  # the network takes ``drop_rate`` (timm's ImageNet networks all do)
    min_size: int = 1  # the smallest image side its pooling leaves a feature map for


ARCHS: dict[str, ArchInfo] = {
    "resnet32": ArchInfo("cifar_resnet32", "cifar", "ResNet-32", "0.5M", 64, 0.466),
    "resnet110": ArchInfo("cifar_resnet110", "cifar", "ResNet-110", "1.7M", 64, 1.730),
    "se_resnet110": ArchInfo("cifar_se_resnet110", "cifar", "SE-ResNet-110", "1.7M", 64, 1.742),
    # Wide ResNets default to the paper's dropout of 0.3 (WideResNet's own default).
    "wrn16_8": ArchInfo("cifar_wrn16_8", "cifar", "Wide-ResNet-16-8", "11.0M", 512, 10.956, dropout=True),
    "wrn28_10": ArchInfo("cifar_wrn28_10", "cifar", "Wide-ResNet-28-10", "36.5M", 640, 36.473, dropout=True),
    "resnext29_8x64d": ArchInfo("cifar_resnext29_8x64d", "cifar", "ResNeXt-29 8x64d", "34.4M", 1024, 34.416),
    "densenet_bc_100_12": ArchInfo(
        "cifar_densenet_bc_100_12", "cifar", "DenseNet-BC-100-12", "0.8M", 342, 0.766, dropout=True
    ),
    "shake_shake26_2x32d": ArchInfo(
        "cifar_shake_shake26_2x32d", "cifar", "Shake-Shake (26 2x32d)", "3.0M", 128, 2.988
    ),
    "shake_shake26_2x112d": ArchInfo(
        "cifar_shake_shake26_2x112d", "cifar", "Shake-Shake (26 2x112d)", "36.4M", 448, 36.431
    ),
    "resnet50": ArchInfo("resnet50", "imagenet", "ResNet-50", "25.6M", 2048, dropout=True),
    "resnet101": ArchInfo("resnet101", "imagenet", "ResNet-101", "44.6M", 2048, dropout=True),
    "resnet152": ArchInfo("resnet152", "imagenet", "ResNet-152", "60.3M", 2048, dropout=True),
    "resnext50_32x4d": ArchInfo("resnext50_32x4d", "imagenet", "ResNeXt-50 32x4d", "25.0M", 2048, dropout=True),
    "resnext101_32x8d": ArchInfo("resnext101_32x8d", "imagenet", "ResNeXt-101 32x8d", "88.8M", 2048, dropout=True),
    "densenet121": ArchInfo("densenet121", "imagenet", "DenseNet-BC-121", "8.0M", 1024, dropout=True, min_size=29),
    # timm's densenet264d is growth 48 / deep stem (72.7M); see bench.models.imagenet.
    "densenet264": ArchInfo("imagenet_densenet264", "imagenet", "DenseNet-BC-265", "33.3M", 2688, dropout=True,
                            min_size=29),
}


def create_model(arch: str, num_classes: int, in_chans: int = 3, **kwargs: Any) -> FeatureClassifier:
    """Build ``arch`` (a key of :data:`ARCHS`) with a fresh, randomly initialised network.

    Extra keyword arguments (e.g. ``drop_rate``, for networks with ``ArchInfo.dropout``) go to the
    network's constructor; networks that have no such option raise ``TypeError``.
    """
    info = ARCHS.get(arch)
    if info is None:
        raise ConfigError("arch", arch, sorted(ARCHS))
    if info.family == "imagenet":
        return create_timm_classifier(info.timm_name, num_classes, in_chans, **kwargs)
    model = timm.create_model(info.timm_name, num_classes=num_classes, in_chans=in_chans, **kwargs)
    assert isinstance(model, FeatureClassifier)
    return model
