"""Losses other than ISDA, as modules of the method API (bench.methods.registry)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def focal_loss(logits: torch.Tensor, labels: torch.Tensor, gamma: float = 1.0, alpha: float = 0.5) -> torch.Tensor:
    """Softmax focal loss (Lin et al. 2017), mean over the batch: −α · (1 − p_y)^γ · log p_y.

    The defaults are the ISDA papers' baseline (α = 0.5, γ = 1, chosen on a validation set for
    all four CIFAR experiments); one α for every class, as there.
    """
    logp = F.log_softmax(logits.float(), dim=1).gather(1, labels[:, None]).squeeze(1)
    return (-(1.0 - logp.exp()).pow(gamma) * logp).mean() * alpha


class CrossEntropy(nn.Module):
    def forward(self, features: torch.Tensor, fc: nn.Module, labels: torch.Tensor,
                progress: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = fc(features)
        return F.cross_entropy(logits.float(), labels), logits


class FocalLoss(nn.Module):
    def __init__(self, gamma: float, alpha: float):
        super().__init__()
        self.gamma, self.alpha = gamma, alpha

    def forward(self, features: torch.Tensor, fc: nn.Module, labels: torch.Tensor,
                progress: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = fc(features)
        return focal_loss(logits, labels, self.gamma, self.alpha), logits
