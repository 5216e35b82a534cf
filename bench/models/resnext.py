"""ResNeXt for CIFAR (Xie et al., 2017, section 5.3): ResNeXt-29 with cardinality C and
bottleneck width d.

A 3x3 stem with 64 channels, then three stages of three bottleneck blocks
(1x1 reduce, grouped 3x3 with C groups, 1x1 expand). Stage s has a bottleneck of
C*d*2^s channels and an output of 256*2^s channels; the first block of stages 2 and 3
downsamples with its grouped convolution and projects the shortcut with a 1x1 conv + BN.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import register_model
from torch import nn

from .base import FeatureClassifier, conv_bn_relu, shortcut, timm_entry

__all__ = ["CifarResNeXt", "ResNeXtBlock"]


class ResNeXtBlock(nn.Module):
    def __init__(self, in_ch: int, width: int, out_ch: int, cardinality: int, stride: int) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            nn.Conv2d(in_ch, width, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride, 1, groups=cardinality, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
        )
        self.shortcut = shortcut(in_ch, out_ch, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.branch(x) + self.shortcut(x))


class CifarResNeXt(FeatureClassifier):
    def __init__(
        self,
        depth: int = 29,
        cardinality: int = 8,
        base_width: int = 64,
        num_classes: int = 10,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        if (depth - 2) % 9:
            raise ValueError(f"CIFAR ResNeXt depth must be 9n+2, got {depth}")
        n = (depth - 2) // 9
        self.stem = conv_bn_relu(in_chans, 64)
        blocks: list[nn.Module] = []
        in_ch = 64
        for stage in range(3):
            width = cardinality * base_width * 2**stage
            out_ch = 256 * 2**stage
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(ResNeXtBlock(in_ch, width, out_ch, cardinality, stride))
                in_ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        self._finish(in_ch, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.blocks(self.stem(x))).flatten(1)


@register_model
def cifar_resnext29_8x64d(pretrained: bool = False, **kwargs: Any) -> CifarResNeXt:
    return timm_entry(CifarResNeXt, pretrained, depth=29, cardinality=8, base_width=64, **kwargs)
