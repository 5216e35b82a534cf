"""ImageNet networks built by timm (random init, nothing downloaded), adapted to the
benchmark's ``features`` / ``fc`` interface.

ResNets and ResNeXts start with every block's last BatchNorm at weight 1, as the authors trained
them (torchvision's ``zero_init_residual=False``); timm's default sets it to 0 (``zero_init_last``).

DenseNet-264: timm's ``densenet264d`` is a different network (growth rate 48 and a deep
stem, 72.7M parameters). The ISDA paper's "DenseNet-BC-265" with 33.3M parameters is the
DenseNet-264 of Huang et al. (growth rate 32, blocks 6-12-64-48, 33.34M with a 1000-way
head), so it is built here from timm's ``DenseNet`` class and registered as
``imagenet_densenet264``.
"""

from __future__ import annotations

from typing import Any

import timm
import torch
from timm.models import register_model
from timm.models.densenet import DenseNet
from torch import nn

from .base import FeatureClassifier, timm_entry

__all__ = ["TimmFeatureClassifier", "create_timm_classifier"]


class TimmFeatureClassifier(FeatureClassifier):
    """Holds a timm backbone whose classifier has been moved out into ``self.fc``.

    Moving (rather than sharing) the Linear keeps each parameter under exactly one name in
    the state dict, and ``forward`` computes exactly what the timm model computed.
    """

    backbone: Any  # a timm model: forward_features, forward_head, get_classifier

    def __init__(self, model: Any) -> None:
        super().__init__()
        head = model.get_classifier()
        if not isinstance(head, nn.Linear):
            raise TypeError(f"expected a Linear classifier, got {type(head).__name__}")
        model.reset_classifier(0)  # keeps the pooling type, replaces the head by Identity
        self.backbone = model
        self.fc = head
        self.num_features = head.in_features

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.backbone.forward_features(x)
        return self.backbone.forward_head(x, pre_logits=True)


# timm families built by its ResNet class, which takes ``zero_init_last``.
_RESNET_FAMILIES = ("resnet", "resnext")


def create_timm_classifier(
    timm_name: str, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any
) -> TimmFeatureClassifier:
    if timm_name.startswith(_RESNET_FAMILIES):
        kwargs.setdefault("zero_init_last", False)
    model = timm.create_model(
        timm_name, pretrained=False, num_classes=num_classes, in_chans=in_chans, **kwargs
    )
    return TimmFeatureClassifier(model)


def _densenet264(**kwargs: Any) -> DenseNet:
    return DenseNet(growth_rate=32, block_config=(6, 12, 64, 48), **kwargs)


@register_model
def imagenet_densenet264(pretrained: bool = False, **kwargs: Any) -> DenseNet:
    return timm_entry(_densenet264, pretrained, **kwargs)
