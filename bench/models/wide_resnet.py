"""Wide Residual Networks WRN-d-k (Zagoruyko & Komodakis, 2016) for CIFAR.

Pre-activation basic blocks (BN-ReLU-conv3x3, dropout, BN-ReLU-conv3x3) in three stages of
(d-4)/6 blocks with 16k, 32k and 64k channels. A 1x1 convolution on the pre-activated input
is the shortcut wherever the width or resolution changes.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from timm.models import register_model
from torch import nn

from .base import FeatureClassifier, timm_entry

__all__ = ["WideResNet", "WideBlock"]


class WideBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int, drop_rate: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.drop_rate = drop_rate
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Conv2d(in_ch, out_ch, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = torch.relu(self.bn1(x))
        # A projection sees the normalised input, as in the paper's pre-activation design;
        # an identity shortcut carries the raw sum so that the residual stream stays clean.
        skip = x if self.shortcut is None else self.shortcut(pre)
        out = self.conv1(pre)
        out = torch.relu(self.bn2(out))
        out = F.dropout(out, p=self.drop_rate, training=self.training)
        return self.conv2(out) + skip


class WideResNet(FeatureClassifier):
    def __init__(
        self,
        depth: int = 28,
        widen_factor: int = 10,
        num_classes: int = 10,
        in_chans: int = 3,
        drop_rate: float = 0.3,
    ) -> None:
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        widths = [16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.stem = nn.Conv2d(in_chans, 16, 3, 1, 1, bias=False)
        blocks: list[nn.Module] = []
        in_ch = 16
        for stage, width in enumerate(widths):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(WideBlock(in_ch, width, stride, drop_rate))
                in_ch = width
        self.blocks = nn.Sequential(*blocks)
        # Blocks end on a convolution, so the head needs its own BN-ReLU before pooling.
        self.bn = nn.BatchNorm2d(in_ch)
        self._finish(in_ch, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.blocks(self.stem(x))))
        return self.pool(x).flatten(1)


@register_model
def cifar_wrn16_8(pretrained: bool = False, **kwargs: Any) -> WideResNet:
    return timm_entry(WideResNet, pretrained, depth=16, widen_factor=8, **kwargs)


@register_model
def cifar_wrn28_10(pretrained: bool = False, **kwargs: Any) -> WideResNet:
    return timm_entry(WideResNet, pretrained, depth=28, widen_factor=10, **kwargs)
