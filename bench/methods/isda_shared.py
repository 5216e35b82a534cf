"""σ² of the ablation's covariance modes (TPAMI): one Σ for every class, ``identity``, ``shared`` or ``pooled``.

``identity``: Σ = I, so σ²_ij = ‖w_j − w_{y_i}‖², and no statistics are kept. ``shared``: Σ is the
covariance of every feature seen so far, whatever its class: bench.methods.covariance keeps it as a
``ClassCovariance`` with one class, merged exactly like the per-class ones. ``pooled``: Σ is the pooled
within-class covariance, Σ_c n_c Σ_c / Σ_c n_c, each feature measured from its own class's mean (a
pooled ``ClassCovariance``). The paper's "single covariance matrix" is one of the two; docs/method.md
says which the shipped ablation runs and why. ``shared`` also holds the spread between the class means,
``pooled`` does not.

With one Σ for all classes, σ² depends on the sample only through its class, so the whole table over
class pairs is formed once per step from G = W Σ Wᵀ ([C, C]): σ²_cj = g_cc + g_jj − 2 g_cj. That is
C·A² + C²·A work and C² memory, without the C·C·A differences of the per-class path, and the diagonal
(j = c) is exactly 0 in floating point: g_cc + g_cc − 2 g_cc cancels exactly. Like bench.methods.isda: no
host–device synchronisation and shapes known from the inputs' sizes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.methods.covariance import ClassCovariance, _at_least_float32, _one_hot


def shared_table(weight: Tensor, cov: Tensor | None, scale: float = 1.0) -> Tensor:
    """scale·(w_j − w_c)ᵀ Σ (w_j − w_c) for every class pair, [C, C] with row c, column j.

    ``cov`` [A, A] is Σ (symmetric), or None for Σ = I. Gradient flows to ``weight`` only.
    """
    left = weight if cov is None else torch.mm(weight, cov.detach())
    g = torch.mm(left, weight.t())
    if scale != 1.0:
        g = g * scale
    q = g.diagonal()
    return torch.add(q[:, None] + q[None, :], g, alpha=-2.0)


def merge_labels(stats: ClassCovariance, labels: Tensor) -> Tensor:
    """The labels a batch is merged into one-covariance statistics with: its own for pooled ones (each
    class keeps its mean), class 0 for every sample of shared ones."""
    return labels if stats.pooled else labels.new_zeros(labels.shape)


def shared_inverse_count(stats: ClassCovariance, features: Tensor, labels: Tensor, pad_to: int | None) -> Tensor:
    """Merge a batch into one-covariance statistics (shared or pooled); returns 1/n, [1].
    Call with autocast off."""
    with torch.no_grad():
        return stats._update(features, merge_labels(stats, labels), None, pad_to).view(-1).reciprocal()


def one_covariance_loss(stats: ClassCovariance | None, features: Tensor, logits: Tensor, fc: nn.Linear,
                        labels: Tensor, lam: float | Tensor, update: bool, pad_to: int | None) -> Tensor:
    """ISDA's loss with one Σ for every class: the shared covariance in ``stats``, or Σ = I for None.

    Same order and conventions as ``bench.methods.isda.ISDALoss``: the batch is merged first, then
    cross-entropy on ``logits + λ/2·σ²``, computed in float32 at least with autocast off.
    """
    with torch.autocast(device_type=features.device.type, enabled=False):
        weight = fc.weight.to(_at_least_float32(fc.weight.dtype))
        cov = inv_count = None
        if stats is not None:
            inv_count = shared_inverse_count(stats, features, labels, pad_to) if update else stats.inverse_count()
            cov = stats.scatter[0].to(weight.dtype)  # n·Σ: the 1/n rides on the row selection below
        scale = 1.0 if isinstance(lam, Tensor) else 0.5 * lam  # a Python λ/2 rides inside the product
        table = shared_table(weight, cov, scale)
        onehot = _one_hot(labels, weight.shape[0], weight.dtype)
        if inv_count is not None:
            onehot = onehot * inv_count.to(weight.dtype)
        if isinstance(lam, Tensor):
            table = table * (0.5 * lam)
        return F.cross_entropy(torch.addmm(logits.to(weight.dtype), onehot, table), labels)
