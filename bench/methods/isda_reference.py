"""The authors' ISDA formulation, transcribed from its description for speed comparisons.

Kept deliberately as the reference computes it, because ``bench.perf.isda`` times it against
``bench.methods.isda``: per step it materialises N×C×A feature and weight-difference tensors, the
per-sample covariance gather N×A×A and the N×C×C product whose diagonal is σ², and it fixes
empty classes with boolean-mask assignments (host-device synchronisations on a GPU). It is
numerically the same estimator and loss as ``bench.methods.isda`` (tested), just not the same cost.
Do not use it for training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ReferenceEstimator(nn.Module):
    """Per-class mean/covariance/count, updated the reference way (full or diagonal)."""

    mean: Tensor
    cov: Tensor
    count: Tensor

    def __init__(self, num_classes: int, feature_dim: int, mode: str = "full") -> None:
        super().__init__()
        if mode not in ("full", "diagonal"):
            raise ValueError(f"mode must be 'full' or 'diagonal', got {mode!r}")
        self.num_classes, self.feature_dim, self.mode = num_classes, feature_dim, mode
        shape = (num_classes, feature_dim, feature_dim) if mode == "full" else (num_classes, feature_dim)
        self.register_buffer("mean", torch.zeros(num_classes, feature_dim))
        self.register_buffer("cov", torch.zeros(shape))
        self.register_buffer("count", torch.zeros(num_classes))

    @torch.no_grad()
    def update(self, features: Tensor, labels: Tensor) -> None:
        n, a = features.shape
        c = self.num_classes
        features = features.detach().float()
        feats_nca = features.view(n, 1, a).expand(n, c, a)
        onehot = torch.zeros(n, c, device=features.device).scatter_(1, labels.view(-1, 1), 1)
        mask_nca = onehot.view(n, c, 1).expand(n, c, a)
        by_class = feats_nca.mul(mask_nca)  # N×C×A, zero outside each sample's class

        amount_ca = mask_nca.sum(0)
        amount_ca[amount_ca == 0] = 1  # boolean-mask assignment: a sync on GPU
        mean_ca = by_class.sum(0) / amount_ca
        centred = by_class - mean_ca.expand(n, c, a).mul(mask_nca)

        m = onehot.sum(0)
        if self.mode == "full":
            batch_cov = torch.bmm(centred.permute(1, 2, 0), centred.permute(1, 0, 2)).div(
                amount_ca.view(c, a, 1).expand(c, a, a)
            )
            w_cov = m.view(c, 1, 1).expand(c, a, a)
            w_cov = w_cov.div(w_cov + self.count.view(c, 1, 1).expand(c, a, a))
            w_cov[w_cov != w_cov] = 0  # 0/0 for never-seen classes, via a boolean mask
            diff = self.mean - mean_ca
            additional = w_cov.mul(1 - w_cov).mul(torch.bmm(diff.view(c, a, 1), diff.view(c, 1, a)))
        else:
            batch_cov = centred.pow(2).sum(0).div(amount_ca)
            w_cov = m.view(c, 1).expand(c, a)
            w_cov = w_cov.div(w_cov + self.count.view(c, 1).expand(c, a))
            w_cov[w_cov != w_cov] = 0
            diff = self.mean - mean_ca
            additional = w_cov.mul(1 - w_cov).mul(diff.pow(2))

        w_mean = m.view(c, 1).expand(c, a)
        w_mean = w_mean.div(w_mean + self.count.view(c, 1).expand(c, a))
        w_mean[w_mean != w_mean] = 0

        # Re-assigned rather than updated in place, as the reference does: a fresh C×A×A each step.
        self.cov = self.cov.mul(1 - w_cov) + batch_cov.mul(w_cov) + additional
        self.mean = self.mean.mul(1 - w_mean) + mean_ca.mul(w_mean)
        self.count = self.count + m


def reference_sigma2(weight: Tensor, cov: Tensor, labels: Tensor) -> Tensor:
    """σ² [N, C] computed the reference way: gather, N×A×A covariances, N×C×C product, diagonal."""
    n = labels.shape[0]
    c, a = weight.shape
    w_nca = weight.expand(n, c, a)
    w_y = torch.gather(w_nca, 1, labels.view(n, 1, 1).expand(n, c, a))
    diff = w_nca - w_y  # N×C×A
    cov_y = cov.detach().to(weight.dtype)[labels]  # N×A×A (full) or N×A (diagonal)
    if cov_y.dim() == 2:
        return diff.pow(2).mul(cov_y.view(n, 1, a).expand(n, c, a)).sum(2)
    sigma2 = torch.bmm(torch.bmm(diff, cov_y), diff.permute(0, 2, 1))  # N×C×C
    eye = torch.eye(c, device=weight.device, dtype=weight.dtype)
    return sigma2.mul(eye.expand(n, c, c)).sum(2).view(n, c)


class ReferenceISDALoss(nn.Module):
    """Same call as ``bench.methods.isda.ISDALoss``: ``loss, logits = crit(features, fc, labels, lam)``."""

    def __init__(self, num_classes: int, feature_dim: int, mode: str = "full") -> None:
        super().__init__()
        self.estimator = ReferenceEstimator(num_classes, feature_dim, mode)

    def forward(
        self, features: Tensor, fc: nn.Linear, labels: Tensor, lam: float | Tensor
    ) -> tuple[Tensor, Tensor]:
        logits = fc(features)
        self.estimator.update(features.detach(), labels)
        weight = fc.weight.to(torch.promote_types(fc.weight.dtype, torch.float32))
        augmented = logits.to(weight.dtype) + 0.5 * lam * reference_sigma2(weight, self.estimator.cov, labels)
        return F.cross_entropy(augmented, labels), logits
