"""The networks: each architecture that bench.experiment.archs names, built with a ``features``/``fc`` split.

Every model returned by :func:`create_model` has ``num_features`` (feature dim A),
``fc`` (``nn.Linear(A, num_classes)``), ``features(x) -> [N, A]`` and
``forward(x) == fc(features(x))``. CIFAR networks are also registered with timm under
``cifar_<name>`` so ``timm.create_model("cifar_wrn28_10", num_classes=100)`` works.
"""

# ruff: noqa: E402 - the imports after guard_wandb_import() must come after it
from __future__ import annotations

from typing import Any

from bench.tracking.guard import guard_wandb_import

guard_wandb_import()  # before timm, which imports wandb and survives only an ImportError

import timm

from bench.common.errors import ConfigError
from bench.experiment.archs import ARCHS

from . import densenet, resnet, resnext, shake_shake, wide_resnet  # noqa: F401  (registers cifar_*)
from .base import FeatureClassifier, count_params
from .imagenet import TimmFeatureClassifier, create_timm_classifier

__all__ = [
    "TIMM_NAMES",
    "FeatureClassifier",
    "TimmFeatureClassifier",
    "count_params",
    "create_model",
]

# The timm model each architecture of bench.experiment.archs is built as, under the same names.
TIMM_NAMES: dict[str, str] = {
    **{name: f"cifar_{name}" for name, arch in ARCHS.items() if arch.family == "cifar"},
    "resnet50": "resnet50",
    "resnet101": "resnet101",
    "resnet152": "resnet152",
    "resnext50_32x4d": "resnext50_32x4d",
    "resnext101_32x8d": "resnext101_32x8d",
    "densenet121": "densenet121",
    # timm's densenet264d is growth 48 / deep stem (72.7M); see bench.models.imagenet.
    "densenet264": "imagenet_densenet264",
}


def create_model(arch: str, num_classes: int, in_chans: int = 3, **kwargs: Any) -> FeatureClassifier:
    """Build ``arch`` (a key of bench.experiment.archs.ARCHS) with a fresh, randomly initialised network.

    Extra keyword arguments (e.g. ``drop_rate``, for networks with ``Arch.dropout``) go to the
    network's constructor; networks that have no such option raise ``TypeError``.
    """
    if arch not in ARCHS:
        raise ConfigError("arch", arch, sorted(ARCHS))
    if ARCHS[arch].family == "imagenet":
        return create_timm_classifier(TIMM_NAMES[arch], num_classes, in_chans, **kwargs)
    model = timm.create_model(TIMM_NAMES[arch], num_classes=num_classes, in_chans=in_chans, **kwargs)
    assert isinstance(model, FeatureClassifier)
    return model
