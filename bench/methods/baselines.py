"""The regularisers the paper compares ISDA with, as loss modules of the method API (bench.methods).

Each is ``forward(features, fc, labels, progress) -> (loss, logits)`` with ``logits`` the plain
``fc(features)``, computed in float32 whatever the autocast, and free of host-device synchronisation
(no ``.item()``, no boolean-mask indexing, no data-dependent shapes) like the rest of a training step.
Their settings, and where each comes from, are in bench.methods.builtin.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class LargeMarginSoftmax(nn.Module):
    """L-Softmax (Liu et al., ICML 2016): the target logit ‖W_y‖‖x‖cos θ_y becomes ‖W_y‖‖x‖ψ(θ_y),
    ψ(θ) = (−1)^k cos(mθ) − 2k on [kπ/m, (k+1)π/m], so a sample must be m times closer in angle to its
    class than the plain softmax asks.

    As in the authors' code the margin is phased in: the target logit is (λ·W_y·x + ‖W_y‖‖x‖ψ(θ_y)) / (1 + λ)
    with λ = max(λ_min, base·(1 + γ·t)^(−power)) at training step t (a buffer, checkpointed with the run).
    The defaults are the authors' CIFAR-10 setting with augmentation (myexamples/cifar10+): base 1000,
    power 45, γ 1e-5; without augmentation (myexamples/cifar10) they take γ 2e-5.
    cos(mθ) is the polynomial in cos θ (the paper's eqs. 6–7), differentiated with k held constant. The
    classifier's bias, which the authors' layer does not have, is added to every logit as the network's
    ``fc`` adds it at test time.
    """

    synchronised = True  # the step count is the same on every rank
    step: Tensor

    def __init__(self, margin: int, base: float = 1000.0, gamma: float = 1e-5, power: float = 45.0,
                 lambda_min: float = 0.0) -> None:
        super().__init__()
        self.margin = int(margin)
        self.base, self.gamma, self.power, self.lambda_min = base, gamma, power, lambda_min
        # cos(mθ) = Σ_n (−1)^n C(m, 2n) cos^(m−2n)θ sin^(2n)θ
        self.terms = [((-1) ** n * math.comb(self.margin, 2 * n), self.margin - 2 * n, n)
                      for n in range(self.margin // 2 + 1)]
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))

    def annealing(self) -> Tensor:
        """λ at the current step, on the device."""
        lam = self.base * (1.0 + self.gamma * self.step.float()).pow(-self.power)
        return lam.clamp_min(self.lambda_min)

    def forward(self, features: Tensor, fc: nn.Linear, labels: Tensor,
                progress: float | Tensor) -> tuple[Tensor, Tensor]:
        with torch.autocast(features.device.type, enabled=False):
            x, w = features.float(), fc.weight.float()
            bias = fc.bias.float() if fc.bias is not None else None
            logits = F.linear(x, w, bias)
            w_y = w[labels]
            target = (x * w_y).sum(1)  # W_y·x
            norms = w_y.norm(dim=1) * x.norm(dim=1)
            cos = (target / norms.clamp_min(1e-12)).clamp(-1.0, 1.0)
            sin2 = 1.0 - cos * cos
            cos_m = sum(c * cos.pow(p) * sin2.pow(n) for c, p, n in self.terms)
            with torch.no_grad():
                k = torch.floor(torch.acos(cos) * (self.margin / math.pi)).clamp(0, self.margin - 1)
                sign = 1.0 - 2.0 * torch.remainder(k, 2.0)
            psi = sign * cos_m - 2.0 * k
            lam = self.annealing()
            margin_logit = (lam * target + norms * psi) / (1.0 + lam)
            onehot = torch.zeros_like(logits).scatter_(1, labels[:, None], 1.0)
            loss = F.cross_entropy(logits + onehot * (margin_logit - target)[:, None], labels)
        if self.training:
            self.step.add_(1)
        return loss, logits


class DisturbLabel(nn.Module):
    """DisturbLabel (Xie et al., CVPR 2016): in training each label is, with probability ``rate``,
    replaced by one drawn uniformly from all classes (the true one included); evaluation never
    calls the loss, and in eval mode it keeps the labels too."""

    def __init__(self, num_classes: int, rate: float) -> None:
        super().__init__()
        self.num_classes, self.rate = num_classes, rate

    def disturb(self, labels: Tensor) -> Tensor:
        """``labels`` with each replaced by a uniform draw with probability ``rate`` (torch's RNG)."""
        replace = torch.rand(labels.shape, device=labels.device) < self.rate
        noise = torch.randint(0, self.num_classes, labels.shape, device=labels.device, dtype=labels.dtype)
        return torch.where(replace, noise, labels)

    def forward(self, features: Tensor, fc: nn.Module, labels: Tensor,
                progress: float | Tensor) -> tuple[Tensor, Tensor]:
        logits = fc(features)
        target = self.disturb(labels) if self.training else labels
        return F.cross_entropy(logits.float(), target), logits


class CenterLoss(nn.Module):
    """Softmax plus Center loss (Wen et al., ECCV 2016): CE + λ · ½ · mean_i ‖x_i − c_{y_i}‖².

    The class centres are not trained by the run's optimizer but moved after each training step by
    the paper's rule, at their own rate α: c_j ← c_j − α · Σ_{i: y_i = j}(c_j − x_i) / (1 + n_j).
    They start at zero. In a multi-process run the sums are taken over the global batch, so every
    rank holds the centres one process fed the whole batch would.

    ``follows_lr``: α is the initial rate and follows the run's learning-rate schedule,
    α_t = α · lr_t / lr_0, as in Wen et al.'s code, where the centres are a blob of the network that
    the solver updates with the network's rate (``follow_lr``, called by the trainer each epoch);
    otherwise α throughout.
    """

    synchronised = True  # updated from the global batch (see _update)
    centers: Tensor
    lr_scale: Tensor

    def __init__(self, num_classes: int, feature_dim: int, weight: float, lr: float,
                 follows_lr: bool = True) -> None:
        super().__init__()
        self.num_classes, self.weight, self.lr, self.follows_lr = num_classes, weight, lr, follows_lr
        self.register_buffer("centers", torch.zeros(num_classes, feature_dim))
        # lr_t / lr_0, set from the run's schedule at every epoch (so not checkpointed); a buffer that
        # is written in place, so a compiled or CUDA-graphed step reads the new value.
        self.register_buffer("lr_scale", torch.ones(()), persistent=False)

    def follow_lr(self, factor: float) -> None:
        """The run's learning rate is now ``factor`` times its initial one."""
        if self.follows_lr:
            self.lr_scale.fill_(factor)

    def forward(self, features: Tensor, fc: nn.Module, labels: Tensor,
                progress: float | Tensor) -> tuple[Tensor, Tensor]:
        logits = fc(features)
        with torch.autocast(features.device.type, enabled=False):
            x = features.float()
            spread = 0.5 * (x - self.centers[labels]).pow(2).sum(1).mean()
            loss = F.cross_entropy(logits.float(), labels) + self.weight * spread
            if self.training:
                self._update(x.detach(), labels)
        return loss, logits

    @torch.no_grad()
    def _update(self, x: Tensor, labels: Tensor) -> None:
        onehot = torch.zeros(labels.shape[0], self.num_classes, device=x.device).scatter_(1, labels[:, None], 1.0)
        stats = torch.cat([onehot.sum(0)[:, None], onehot.t() @ x], dim=1)  # [C, 1 + A]: n_j, Σ x_i
        if _world_size() > 1:
            dist.all_reduce(stats)
        counts, sums = stats[:, :1], stats[:, 1:]
        step = self.lr * (counts * self.centers - sums) / (1.0 + counts)
        self.centers.sub_(step * self.lr_scale if self.follows_lr else step)


class LqLoss(nn.Module):
    """Generalised cross-entropy (Zhang & Sabuncu, NeurIPS 2018): mean of (1 − p_y^q) / q."""

    def __init__(self, q: float) -> None:
        super().__init__()
        self.q = q

    def forward(self, features: Tensor, fc: nn.Module, labels: Tensor,
                progress: float | Tensor) -> tuple[Tensor, Tensor]:
        logits = fc(features)
        logp = F.log_softmax(logits.float(), dim=1).gather(1, labels[:, None]).squeeze(1)
        return ((1.0 - torch.exp(self.q * logp)) / self.q).mean(), logits
