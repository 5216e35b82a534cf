"""Two methods for isda-bench, as a plugin package: label smoothing, and cross-entropy with a pull
towards moving-average class centres.

Installed, this package's entry point makes ``label_smoothing`` and ``ema_centres`` methods of every
isda-bench command: ``isda-bench train --method label_smoothing --set smoothing=0.2``,
``label_smoothing+cutout``, and ``smoothing`` as a sweep axis that multiplies only this method.
``isda-bench methods`` lists them with their parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.methods import Param, register_loss


# The decorator registers the class as the factory: isda-bench calls LabelSmoothing(num_classes,
# feature_dim, params) once per run.
@register_loss("label_smoothing",
               params={"smoothing": Param(0.1, min=0.0, below=1.0, help="ε, the probability spread over all classes")},
               display="Label smoothing")
class LabelSmoothing(nn.Module):
    """cross-entropy with label smoothing (Szegedy et al. 2016): targets (1 − ε)·onehot + ε/C"""

    def __init__(self, num_classes: int, feature_dim: int, params: dict) -> None:
        super().__init__()
        self.smoothing = params["smoothing"]

    def forward(self, features: torch.Tensor, fc: nn.Module, labels: torch.Tensor,
                progress: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = fc(features)
        # The batch's mean, in float32 (the run may compute in bf16), and the plain logits.
        return F.cross_entropy(logits.float(), labels, label_smoothing=self.smoothing), logits


@register_loss("ema_centres",
               params={"ema_weight": Param(0.01, min=0.0, help="weight of the pull towards the class centre"),
                       "ema_momentum": Param(0.9, min=0.0, below=1.0, help="how slowly the centres move")},
               display="CE + EMA centres")
class EMACentres(nn.Module):
    """cross-entropy plus the squared distance of each feature to its class's moving-average centre"""

    # Under DDP each process moves the centres with its own share of the batch: they differ between
    # processes, and the checkpoint keeps each process's (True would say they are equal by construction).
    synchronised = False

    def __init__(self, num_classes: int, feature_dim: int, params: dict) -> None:
        super().__init__()
        self.weight, self.momentum = params["ema_weight"], params["ema_momentum"]
        # State lives in buffers: they move to the run's device, are checkpointed and resumed.
        self.register_buffer("centres", torch.zeros(num_classes, feature_dim))
        self.register_buffer("seen", torch.zeros(num_classes, dtype=torch.bool))

    def forward(self, features: torch.Tensor, fc: nn.Module, labels: torch.Tensor,
                progress: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = fc(features)
        feats = features.float()
        with torch.no_grad():  # the centres follow the features; they receive no gradient
            counts = torch.bincount(labels, minlength=self.centres.shape[0]).to(feats.dtype)
            sums = torch.zeros_like(self.centres).index_add_(0, labels, feats)
            present = counts > 0
            means = sums / counts.clamp(min=1)[:, None]
            moved = torch.where(self.seen[:, None], self.momentum * self.centres + (1 - self.momentum) * means, means)
            self.centres.copy_(torch.where(present[:, None], moved, self.centres))
            self.seen |= present
        pull = (feats - self.centres[labels]).pow(2).sum(1).mean()
        return F.cross_entropy(logits.float(), labels) + self.weight * pull, logits
