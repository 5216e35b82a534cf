"""Shake-Shake regularised ResNets (Gastaldi, 2017), "Shake-Shake-Image" variant.

Depth 26 = stem + 3 stages x 4 blocks x 2 convs. Each block has two residual branches
ReLU-conv3x3-BN-ReLU-conv3x3-BN whose outputs are mixed as a*b1 + (1-a)*b2. In training,
a ~ U(0, 1) is drawn per sample for the forward pass and an independent b ~ U(0, 1) per
sample scales the gradients in the backward pass; at test time a = 0.5. The "2xWd" name
means two branches with W channels in the first stage (2W, 4W in the next two).

Where the shape changes, the shortcut averages with stride 2 along two paths, one of them
shifted by one pixel, projects each with a 1x1 conv to half the output channels,
concatenates them and applies BN.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from timm.models import register_model
from torch import nn

from .base import FeatureClassifier, timm_entry

__all__ = ["ShakeShakeResNet", "ShakeBlock", "shake", "ShortcutProjection"]


def shake(b1: torch.Tensor, b2: torch.Tensor, training: bool) -> torch.Tensor:
    """Mix two branches with a per-sample forward coefficient and a separate backward one.

    The value is alpha*b1 + (1-alpha)*b2, while the gradient reaching b1 (b2) is scaled by
    beta (1-beta): the beta-mix carries the gradient and a detached correction moves the
    value to the alpha-mix. The coefficients come from torch's global RNG, so seeding torch
    fixes them.
    """
    if not training:
        return 0.5 * (b1 + b2)
    shape = (b1.shape[0],) + (1,) * (b1.dim() - 1)
    alpha = torch.rand(shape, device=b1.device, dtype=b1.dtype)
    beta = torch.rand(shape, device=b1.device, dtype=b1.dtype)
    grad_path = beta * b1 + (1 - beta) * b2
    value_fix = (alpha - beta) * (b1 - b2)
    return grad_path + value_fix.detach()


class ShortcutProjection(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        if out_ch % 2:
            raise ValueError("shake-shake shortcut needs an even number of output channels")
        self.stride = stride
        self.conv1 = nn.Conv2d(in_ch, out_ch // 2, 1, bias=False)
        self.conv2 = nn.Conv2d(in_ch, out_ch // 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(x)
        p1 = F.avg_pool2d(x, 1, self.stride)
        # Shift by one pixel (pad right/bottom, drop the first row/column) so the second path
        # samples the pixels the first one skips.
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        p2 = F.avg_pool2d(shifted, 1, self.stride)
        return self.bn(torch.cat([self.conv1(p1), self.conv2(p2)], dim=1))


def _branch(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ReLU(inplace=False),  # not in place: the input is also the shortcut
        nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False),
        nn.BatchNorm2d(out_ch),
    )


class ShakeBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.branch1 = _branch(in_ch, out_ch, stride)
        self.branch2 = _branch(in_ch, out_ch, stride)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = ShortcutProjection(in_ch, out_ch, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = shake(self.branch1(x), self.branch2(x), self.training)
        return self.shortcut(x) + mixed


class ShakeShakeResNet(FeatureClassifier):
    def __init__(
        self,
        depth: int = 26,
        base_width: int = 32,
        num_classes: int = 10,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"Shake-Shake depth must be 6n+2, got {depth}")
        n = (depth - 2) // 6
        self.stem = nn.Sequential(nn.Conv2d(in_chans, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16))
        blocks: list[nn.Module] = []
        in_ch = 16
        for stage in range(3):
            width = base_width * 2**stage
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(ShakeBlock(in_ch, width, stride))
                in_ch = width
        self.blocks = nn.Sequential(*blocks)
        self._finish(in_ch, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        # Blocks output un-rectified sums (the branches start with ReLU), hence the ReLU here.
        x = torch.relu(self.blocks(self.stem(x)))
        return self.pool(x).flatten(1)


@register_model
def cifar_shake_shake26_2x32d(pretrained: bool = False, **kwargs: Any) -> ShakeShakeResNet:
    return timm_entry(ShakeShakeResNet, pretrained, depth=26, base_width=32, **kwargs)


@register_model
def cifar_shake_shake26_2x112d(pretrained: bool = False, **kwargs: Any) -> ShakeShakeResNet:
    return timm_entry(ShakeShakeResNet, pretrained, depth=26, base_width=112, **kwargs)
