"""CIFAR ResNets (He et al., 2016, section 4.2) and SE-ResNets (Hu et al., 2018).

Three stages of ``n`` basic blocks with 16, 32 and 64 channels on 32x32, 16x16 and 8x8
maps, so depth = 6n + 2. Where the shape changes, the shortcut is a strided 1x1
convolution followed by BN (option B of He et al.); the parameter counts quoted in the ISDA
paper's reference code are those of this variant.

``drop_rate`` puts dropout inside every basic block, after the first convolution's BN-ReLU and
before the second convolution, where the ISDA authors' CIFAR ResNets and SE-ResNets apply their
``dropout_rate`` (docs/method.md, "The other baselines"); the pooled features are never dropped.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import register_model
from torch import nn

from .base import FeatureClassifier, conv_bn_relu, shortcut, timm_entry

__all__ = ["CifarResNet", "SqueezeExcite", "BasicBlock"]


class SqueezeExcite(nn.Module):
    """Channel gate s = sigmoid(W2 relu(W1 avgpool(u))) from Hu et al. (eq. 2-3)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        # Hu et al. write the excitation without biases; leaving them out reproduces the
        # reference 1.742M count of SE-ResNet-110 exactly.
        self.reduce = nn.Linear(channels, hidden, bias=False)
        self.expand = nn.Linear(hidden, channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3))
        s = torch.sigmoid(self.expand(torch.relu(self.reduce(s))))
        return x * s[:, :, None, None]


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-dropout-conv3x3-BN (+ optional SE on the residual) + shortcut, then ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, se_reduction: int | None,
                 drop_rate: float = 0.0) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.se = SqueezeExcite(out_ch, se_reduction) if se_reduction else nn.Identity()
        self.shortcut = shortcut(in_ch, out_ch, stride)
        self.dropout = nn.Dropout(drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.dropout(torch.relu(self.bn1(self.conv1(x))))
        out = self.se(self.bn2(self.conv2(out)))
        return torch.relu(out + self.shortcut(x))


class CifarResNet(FeatureClassifier):
    """ResNet-(6n+2) for 32x32 inputs; any spatial size works thanks to global pooling."""

    def __init__(
        self,
        depth: int = 110,
        num_classes: int = 10,
        in_chans: int = 3,
        se_reduction: int | None = None,
        widths: tuple[int, int, int] = (16, 32, 64),
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        n = (depth - 2) // 6
        self.stem = conv_bn_relu(in_chans, widths[0])
        blocks: list[nn.Module] = []
        in_ch = widths[0]
        for stage, width in enumerate(widths):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(BasicBlock(in_ch, width, stride, se_reduction, drop_rate))
                in_ch = width
        self.blocks = nn.Sequential(*blocks)
        self._finish(in_ch, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.blocks(self.stem(x))).flatten(1)


@register_model
def cifar_resnet32(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    return timm_entry(CifarResNet, pretrained, depth=32, **kwargs)


@register_model
def cifar_resnet110(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    return timm_entry(CifarResNet, pretrained, depth=110, **kwargs)


@register_model
def cifar_se_resnet110(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    return timm_entry(CifarResNet, pretrained, depth=110, se_reduction=16, **kwargs)
