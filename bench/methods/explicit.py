"""Explicit semantic data augmentation: the method ISDA replaces, for the papers' comparison.

Per sample, ``samples`` (M) features are drawn from N(a_i, λΣ_{y_i}) and the loss is the cross-entropy
of their logits, averaged over the M copies and the batch. As M grows it tends to the expected loss
L∞ that ISDA bounds from above in closed form (docs/method.md, The loss); each copy costs a draw and a
row of the last layer, which is the price the papers' argument is about.

The covariance (any of ISDA's modes, bench.methods.covariance.LOSS_MODES), its online estimate and the λ schedule
are ISDA's own. Draws come from torch's generator on the features' device, so a seeded CPU run
repeats. No host–device synchronisation: the full covariances are factored with ``cholesky_ex``
(no error check) after a small relative jitter that keeps rank-deficient estimates positive definite.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.methods.covariance import (
    ONE_COVARIANCE_MODES,
    ClassCovariance,
    _at_least_float32,
    _rows_per_chunk,
    make_statistics,
)
from bench.methods.isda import strength
from bench.methods.isda_shared import merge_labels

# Added to Σ before its Cholesky factor: this fraction of its mean variance, plus a floor for a class
# never seen (Σ = 0). Far below any feature variance, so the draws' covariance is Σ to 1e-6.
JITTER = 1e-6
JITTER_FLOOR = 1e-20


def cholesky_factors(cov: Tensor) -> Tensor:
    """L with L Lᵀ = Σ + jitter·I for covariances [..., A, A], computed in float64."""
    c = cov.double()
    eye = torch.eye(c.shape[-1], dtype=c.dtype, device=c.device)
    mean_var = c.diagonal(dim1=-2, dim2=-1).mean(-1)
    jitter = (mean_var * JITTER + JITTER_FLOOR)[..., None, None]
    return torch.linalg.cholesky_ex(c + jitter * eye, check_errors=False).L


class ExplicitSemanticAugmentation(nn.Module):
    """``loss, logits = crit(features, fc, labels, progress)``, the method ``explicit`` of the registry."""

    accepts_pad_to = True  # bench.train.trainer gives the step's largest local batch under global sync

    def __init__(self, num_classes: int, feature_dim: int, lambda0: float, samples: int, mode: str = "full",
                 sync: str = "local", schedule: str = "linear") -> None:
        super().__init__()
        if samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        self.lambda0, self.samples, self.mode, self.schedule = lambda0, samples, mode, schedule
        self.stats: ClassCovariance | None = make_statistics(num_classes, feature_dim, mode, sync)

    @property
    def synchronised(self) -> bool:
        """Every rank holds the same statistics (global sync): bench.train.trainer broadcasts rather than gathers."""
        return self.stats is None or self.stats.sync == "global"

    def strength(self, progress: float) -> float:
        return float(strength(self.lambda0, progress, self.schedule))

    def forward(self, features: Tensor, fc: nn.Linear, labels: Tensor, progress: float | Tensor, *,
                update: bool = True, pad_to: int | None = None) -> tuple[Tensor, Tensor]:
        logits = fc(features)
        lam = strength(self.lambda0, progress, self.schedule)
        with torch.autocast(device_type=features.device.type, enabled=False):
            dtype = _at_least_float32(fc.weight.dtype)
            x = features.to(dtype)
            if update and self.stats is not None:
                with torch.no_grad():
                    one = self.mode in ONE_COVARIANCE_MODES
                    self.stats._update(x, merge_labels(self.stats, labels) if one else labels, None, pad_to)
            with torch.no_grad():
                noise = self.noise(labels, x.shape[1], dtype, x.device)
                noise = noise * (lam**0.5 if not isinstance(lam, Tensor) else lam.to(dtype).sqrt())
            copies = (x[:, None, :] + noise).flatten(0, 1)  # [N·M, A]: sample i's copies are rows i·M … i·M + M - 1
            bias = None if fc.bias is None else fc.bias.to(dtype)
            out = F.linear(copies, fc.weight.to(dtype), bias)
            loss = F.cross_entropy(out, labels.repeat_interleave(self.samples))
        return loss, logits

    def noise(self, labels: Tensor, dim: int, dtype: torch.dtype, device: torch.device) -> Tensor:
        """M draws of N(0, Σ_{y_i}) per sample, [N, M, A] (λ not applied)."""
        eps = torch.randn(labels.shape[0], self.samples, dim, dtype=dtype, device=device)
        if self.stats is None:  # identity
            return eps
        if self.mode == "diagonal":
            sd = (self.stats.scatter * self.stats.inverse_count()[:, None]).sqrt()  # [C, A]
            return eps * sd.to(dtype).index_select(0, labels)[:, None, :]
        if self.mode in ("shared", "pooled"):
            factor = cholesky_factors(self.stats.cov[0]).to(dtype)  # [A, A]
            return eps @ factor.t()
        factors = cholesky_factors(self.stats.cov).to(dtype)  # [C, A, A]
        step = _rows_per_chunk(dim * dim)  # gathered factors: at most CHUNK_ELEMS at a time
        parts = []
        for start in range(0, labels.shape[0], step):
            rows = labels[start:start + step]
            parts.append(torch.bmm(eps[start:start + step], factors.index_select(0, rows).transpose(1, 2)))
        return parts[0] if len(parts) == 1 else torch.cat(parts)
