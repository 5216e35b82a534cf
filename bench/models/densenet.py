"""DenseNet-BC for CIFAR (Huang et al., 2017, section 3 "DenseNet-BC").

Depth L = 6n + 4 gives three dense blocks of n bottleneck layers
(BN-ReLU-conv1x1 to 4k, BN-ReLU-conv3x3 to k). Transitions halve the channels
(compression 0.5) with BN-ReLU-conv1x1 and a 2x2 average pool. The stem is a 3x3
convolution to 2k channels. DenseNet-BC-100-12 therefore ends with 342 channels.

``drop_rate`` drops the k new channels of every dense layer (after its 3x3 convolution), and
nothing else: neither the bottleneck's output nor the transitions. That is where the ISDA authors'
DenseNet-BC applies its ``drop_rate`` (docs/method.md, "The other baselines").
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from timm.models import register_model
from torch import nn

from .base import FeatureClassifier, timm_entry

__all__ = ["CifarDenseNet", "DenseLayer", "Transition"]


class DenseLayer(nn.Module):
    def __init__(self, in_ch: int, growth: int, bn_size: int, drop_rate: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = nn.Conv2d(in_ch, bn_size * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(bn_size * growth)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, 1, 1, bias=False)
        self.drop_rate = drop_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(torch.relu(self.bn1(x)))
        out = self.conv2(torch.relu(self.bn2(out)))
        out = F.dropout(out, p=self.drop_rate, training=self.training)
        return torch.cat([x, out], dim=1)


class Transition(nn.Module):
    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_ch)
        self.conv = nn.Conv2d(in_ch, out_ch, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv(torch.relu(self.bn(x))), 2)


class CifarDenseNet(FeatureClassifier):
    def __init__(
        self,
        depth: int = 100,
        growth_rate: int = 12,
        compression: float = 0.5,
        bn_size: int = 4,
        num_classes: int = 10,
        in_chans: int = 3,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"DenseNet-BC depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        channels = 2 * growth_rate
        self.stem = nn.Conv2d(in_chans, channels, 3, 1, 1, bias=False)
        stages: list[nn.Module] = []
        for block in range(3):
            for _ in range(n):
                stages.append(DenseLayer(channels, growth_rate, bn_size, drop_rate))
                channels += growth_rate
            if block < 2:
                reduced = int(channels * compression)
                stages.append(Transition(channels, reduced))
                channels = reduced
        self.blocks = nn.Sequential(*stages)
        # Every layer is pre-activated, so the concatenated output still needs BN-ReLU.
        self.bn = nn.BatchNorm2d(channels)
        self._finish(channels, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.blocks(self.stem(x))))
        return self.pool(x).flatten(1)


@register_model
def cifar_densenet_bc_100_12(pretrained: bool = False, **kwargs: Any) -> CifarDenseNet:
    return timm_entry(CifarDenseNet, pretrained, depth=100, growth_rate=12, **kwargs)
