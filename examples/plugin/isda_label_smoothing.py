"""Label smoothing (Szegedy et al., 2016) as an isda-bench method.

Installed, this package's entry point makes ``label_smoothing`` a method of every isda-bench command:
``isda-bench train --method label_smoothing --set smoothing=0.2``, ``label_smoothing+cutout``, and
``smoothing`` as a sweep axis that multiplies only this method.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.methods import Param, register_loss


class LabelSmoothing(nn.Module):
    """Cross-entropy against the label mixed with the uniform distribution: (1 − ε)·onehot + ε/C."""

    def __init__(self, num_classes: int, feature_dim: int, params: dict) -> None:
        super().__init__()
        self.smoothing = params["smoothing"]

    def forward(self, features: torch.Tensor, fc: nn.Module, labels: torch.Tensor,
                progress: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = fc(features)
        return F.cross_entropy(logits.float(), labels, label_smoothing=self.smoothing), logits


register_loss("label_smoothing", LabelSmoothing,
              params={"smoothing": Param(0.1, min=0.0, below=1.0, help="ε, the probability spread over all classes")},
              help="cross-entropy with label smoothing (Szegedy et al. 2016)")
