"""Shared pieces of every network in the benchmark.

The ISDA loss needs the deep features *and* the weights of the last linear layer, so every
model exposes them the same way: ``features(x)`` returns the pooled feature vector of size
``num_features`` and ``fc`` is the linear head that maps it to logits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn

__all__ = ["FeatureClassifier", "conv_bn_relu", "count_params", "init_weights", "shortcut", "timm_entry"]


class FeatureClassifier(nn.Module):
    """Base class: subclasses set ``num_features`` and ``fc`` and implement ``features``."""

    num_features: int
    fc: nn.Linear

    def features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _finish(self, num_features: int, num_classes: int) -> None:
        """Global average pooling, the linear head, then the papers' initialisation of everything."""
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = num_features
        self.fc = nn.Linear(num_features, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def conv_bn_relu(in_ch: int, out_ch: int) -> nn.Sequential:
    """The post-activation ResNets' stem: 3x3 convolution, BN, ReLU, resolution kept."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


def shortcut(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    """Identity where shapes match, else a 1x1-convolution projection with BN (He et al.'s option B)."""
    if stride == 1 and in_ch == out_ch:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))


def init_weights(module: nn.Module) -> None:
    """He (fan-out) init for convolutions, unit BN scale, zero biases.

    This is the initialisation all of the CIFAR papers reproduced here describe; PyTorch's
    default (Kaiming-uniform with a=sqrt(5)) is noticeably worse for deep plain ResNets.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def count_params(module: nn.Module, *, head: bool = True) -> int:
    """Number of parameters; with ``head=False`` the final linear layer ``fc`` is left out."""
    total = sum(p.numel() for p in module.parameters())
    if not head:
        total -= sum(p.numel() for p in module.get_submodule("fc").parameters())
    return total


M = TypeVar("M", bound=nn.Module)

# Keyword arguments timm.create_model always hands to an entry point; our models have no
# pretrained weights, so they are checked and dropped here.
_TIMM_ONLY_KWARGS = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")


def timm_entry(build: Callable[..., M], pretrained: bool = False, **kwargs: Any) -> M:
    """Body of a ``@register_model`` function for a model that is never pretrained."""
    if pretrained:
        raise ValueError("no pretrained weights exist for the CIFAR reproductions")
    for key in _TIMM_ONLY_KWARGS:
        kwargs.pop(key, None)
    return build(**kwargs)
