"""The class statistics ISDA draws on: per-class feature mean, covariance and count, merged batch by batch.

Pure tensor math, no I/O, written without host-device synchronisation: every quantity has a shape
known from the inputs' sizes alone (no ``unique``/``nonzero``/``bincount``, no boolean-mask indexing,
no ``.item()``, no Python branch on a tensor's value), so a CUDA step never stalls the launching CPU.
The one communication is optional: with ``sync="global"`` in a process group, each update
all-gathers the ranks' features (bench.methods.gather.all_gather_rows), sized from the caller's
``pad_to`` rather than from values read back. Per-sample outer products are formed a chunk at a
time, bounded by ``CHUNK_ELEMS``, which the σ² of bench.methods.isda shares.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn

MODES = ("full", "diagonal")  # the class covariances ClassCovariance keeps
# The modes with one Σ for every class, the ablation's (bench.methods.isda_shared): the identity, the
# covariance of all features whatever their class (shared), and the pooled within-class covariance
# (pooled: every class's scatter about its own mean, summed and divided by the total count).
ONE_COVARIANCE_MODES = ("identity", "shared", "pooled")
# The losses' covariance modes: per class (full, diagonal) or one for all classes.
LOSS_MODES = (*MODES, *ONE_COVARIANCE_MODES)
# How the statistics follow a multi-process run: "global" merges every rank's batch, so each rank
# holds what one process fed the whole global batch would; "local" merges the rank's own batch only
# (the reference ImageNet code). One process: both are the same.
SYNCS = ("global", "local")

# Upper bound, in elements, on the working set of one chunk (outer products in the update,
# class-difference blocks in σ²). 2**24 float32 = 64 MiB: large enough that the GEMMs stay
# efficient, small enough that C=1000, A=2048 fits beside its 16 GB covariance on one GPU.
CHUNK_ELEMS = 1 << 24


def _world_size() -> int:
    # A Python-side check, no device work: the statistics are synchronised only inside a group.
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _at_least_float32(dtype: torch.dtype) -> torch.dtype:
    # torch.promote_types(dtype, float32) for the dtypes that occur here, decided in Python:
    # promote_types is itself a dispatched op, paid on every step.
    return torch.float64 if dtype == torch.float64 else torch.float32


def _one_hot(labels: Tensor, num_classes: int, dtype: torch.dtype) -> Tensor:
    # scatter_ instead of F.one_hot: one_hot validates the label range on some devices by
    # reading values back to the host.
    out = torch.zeros(labels.shape[0], num_classes, dtype=dtype, device=labels.device)
    return out.scatter_(1, labels[:, None], 1.0)


def _rows_per_chunk(elems_per_row: int) -> int:
    return max(1, CHUNK_ELEMS // max(1, elems_per_row))


class ClassCovariance(nn.Module):
    """Per-class feature mean, covariance and count, merged batch by batch (paper eq. 9-11).

    After any sequence of ``update`` calls, ``cov[c]`` is the biased (divided by n) covariance
    of every class-c feature seen so far: the merge is exact, not a moving average. The count
    is a float32 buffer, exact up to 2**24 samples per class.

    Stored is the scatter matrix ``scatter[c]`` = n·Σ_c, the sum of (x - μ)(x - μ)ᵀ over the
    class (per feature in diagonal mode); ``cov`` divides it by the count when asked. A merge
    then only adds to the classes in the batch, one pass over their rows, where keeping Σ itself
    would rescale every class's matrix each step (for CIFAR-100 on WRN-28-10, 164 MB read and
    written twice more per step); σ² applies the 1/n to its [C, C] or [N, C] result instead.

    ``sync="global"`` in a multi-process run: ``update`` all-gathers the ranks' features and
    labels (N·A numbers per step, not C·A² of statistics) and every rank merges the whole global
    batch, so all ranks hold identical statistics. Outside a process group it is ``"local"``.

    ``pooled`` (full mode only): the class means and counts as above, but one scatter [1, A, A], the
    sum of every class's scatter about its own mean; ``cov`` and ``inverse_count`` then divide by the
    total count, so ``cov[0]`` is the pooled within-class covariance.
    """

    mean: Tensor
    scatter: Tensor
    count: Tensor

    def __init__(self, num_classes: int, feature_dim: int, mode: str = "full", sync: str = "local",
                 pooled: bool = False) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if sync not in SYNCS:
            raise ValueError(f"sync must be one of {SYNCS}, got {sync!r}")
        if pooled and mode != "full":
            raise ValueError("a pooled covariance is a full one")
        self.num_classes, self.feature_dim, self.mode, self.sync = num_classes, feature_dim, mode, sync
        self.pooled = pooled
        slots = 1 if pooled else num_classes
        shape = (slots, feature_dim, feature_dim) if mode == "full" else (slots, feature_dim)
        self.register_buffer("mean", torch.zeros(num_classes, feature_dim))
        self.register_buffer("scatter", torch.zeros(shape))
        self.register_buffer("count", torch.zeros(num_classes))
        self.register_load_state_dict_pre_hook(_scatter_from_cov)

    @property
    def cov(self) -> Tensor:
        """The biased class covariances Σ = scatter / n, [C, A, A] or [C, A] (0 for unseen classes);
        a new tensor: writing to it changes nothing."""
        inv = self.inverse_count()
        return self.scatter * (inv[:, None, None] if self.mode == "full" else inv[:, None])

    def inverse_count(self) -> Tensor:
        """1/n per class, [C]; 1 for classes never seen (whose scatter is 0). Pooled: 1/(total count), [1]."""
        if self.pooled:
            return self.count.sum(0, keepdim=True).clamp_min(1.0).reciprocal()
        return self.count.clamp_min(1.0).reciprocal()

    def update(self, features: Tensor, labels: Tensor, *, pad_to: int | None = None) -> None:
        """Merge one batch, ``features`` [N, A] with integer ``labels`` [N], into the statistics.

        ``pad_to`` (global sync only): the largest local batch of this step over all ranks, known
        to the caller from the sharding rule; without it the ranks are asked, which reads a
        number back to the host.
        """
        with torch.no_grad(), torch.autocast(device_type=features.device.type, enabled=False):
            self._update(features, labels, None, pad_to)

    def _gathers(self) -> bool:
        """Whether ``update`` merges the all-gathered global batch (decided without device work)."""
        return self.sync == "global" and _world_size() > 1

    def _update(self, features: Tensor, labels: Tensor, onehot: Tensor | None, pad_to: int | None) -> Tensor:
        """``update`` inside the caller's no_grad and autocast-off contexts; ``onehot``: the
        labels' one-hot [N, C] if the caller already has it in the statistics' dtype. Returns the
        new counts clamped at 1, [C, 1] (pooled: the total, [1, 1]), from which σ² takes 1/n without
        recomputing them."""
        # The statistics accumulate over a whole run; bf16 would lose them within an epoch, so
        # they are kept and computed in float32 (or float64, if the buffers were cast to it).
        dtype = _at_least_float32(self.scatter.dtype)
        x = features.to(dtype)  # no copy when already there; no_grad, so no detach is needed
        if self._gathers():
            from bench.methods.gather import all_gather_rows

            # Gathered after the cast: the merge sees exactly the values a single process
            # would, and padded rows are switched off by their weight, not removed (removing
            # them would need their count on the host).
            x, labels, valid = all_gather_rows(x, labels, pad_to)
            onehot = _one_hot(labels, self.num_classes, dtype) * valid[:, None]  # padding: no class
            return self._merge(x, labels, onehot, valid)
        else:
            if onehot is None or onehot.dtype != dtype:
                onehot = _one_hot(labels, self.num_classes, dtype)
            return self._merge(x, labels, onehot)

    def _merge(self, x: Tensor, labels: Tensor, onehot: Tensor, valid: Tensor | None = None) -> Tensor:
        """Merge rows ``x`` with ``labels`` and their one-hot [N, C]; ``valid`` [N] of 0/1
        weights, 0 for padding rows (already applied to ``onehot``). Returns max(n + m, 1), [C, 1].

        With n old and m new samples of a class, old mean μ, new mean μ⁺ and δ = μ - μ⁺:
            μ⁺ = μ - δ,   δ = (m·μ - Σ x)/(n + m)
            M⁺ = M + n·δ δᵀ + Σ_i (x_i - μ⁺)(x_i - μ⁺)ᵀ
        for the scatter M = n·Σ (Chan et al.'s merge, centred on the new mean: every term is
        positive semi-definite, so nothing cancels, and no batch mean or square root of a
        difference is needed). A class absent from the batch (m = 0) is left bit-identical: δ is
        exactly 0 and nothing is added to its scatter.
        """
        # Per-class quantities are [C, 1] columns, so they broadcast against [C, A] without
        # a view op each time they are used.
        mean = self.mean  # buffers read once: each nn.Module attribute lookup is Python work
        oh_t = onehot.t()
        m = oh_t.sum(1, keepdim=True)  # samples of each class in this batch
        n = self.count[:, None]  # a view: n.add_ at the end updates the count buffer
        total = (n + m).clamp_min_(1.0)  # clamp: never-seen classes divide by 1, not 0
        delta = torch.addmm(m * mean, oh_t, x, alpha=-1.0).div_(total)  # μ - μ⁺ = (m·μ - Σx)/(n+m)
        mean.sub_(delta)
        centred = x - mean.index_select(0, labels)  # [N, A], centred on its class's new mean
        if valid is not None:
            centred.mul_(valid[:, None])  # padding rows add exact zeros to the scatter
        if self.pooled:
            # Every class's merge summed into the one scatter: Σ_i c_i c_iᵀ + Σ_j n_j δ_j δ_jᵀ, two GEMMs.
            # The pooled total, as the per-class totals: before n is updated in place.
            pooled_total = (n + m).sum(0, keepdim=True).clamp_min_(1.0)
            spread = delta * n.sqrt()
            self.scatter[0].addmm_(centred.t(), centred).addmm_(spread.t(), spread)
            n.add_(m)
            return pooled_total
        if self.mode == "full":
            self._merge_full(centred, labels, n, m, delta, valid)
        else:
            self.scatter.addcmul_(delta, delta * n).addmm_(oh_t, centred.square_())
        n.add_(m)
        return total

    def _merge_full(self, centred: Tensor, labels: Tensor, n: Tensor, m: Tensor, delta: Tensor,
                    valid: Tensor | None) -> None:
        # n·δδᵀ is spread over the class's m samples of the batch, so that each sample adds one
        # rank-2 term c cᵀ + u uᵀ with u = δ·√(n/m) to its class: only the classes in the batch
        # are touched, once each. index_add_ of per-sample products, a chunk of samples at a
        # time: O(N·A²) work, memory bounded by CHUNK_ELEMS instead of N·A² or N·C·A.
        # Each product pairs a vector with itself, so the scatter stays exactly symmetric (σ²'s
        # backward relies on that).
        u = delta.mul_((n / m.clamp_min(1.0)).sqrt_()).index_select(0, labels)  # m ≥ 1 for real rows
        if valid is not None:
            u.mul_(valid[:, None])
        if torch.compiler.is_compiling():
            # Written pointwise, Inductor fuses the products into one scatter-add kernel that adds
            # into the buffer itself: no [N, A, A] products in memory, no copy of the scatter.
            products = centred[:, :, None] * centred[:, None, :] + u[:, :, None] * u[:, None, :]
            self.scatter.index_add_(0, labels, products)
            return
        pairs = torch.stack((centred, u), dim=2)  # [N, A, 2]
        a = centred.shape[1]
        flat = self.scatter.view(-1, a * a)  # 2-D index_add_: the 3-D form is far slower on CPU
        whole = (pairs, pairs.transpose(1, 2), labels)
        step = _rows_per_chunk(a * a)
        parts: tuple[tuple[Tensor, ...], ...]
        if step < centred.shape[0]:  # one split per tensor, not a slice per tensor and chunk
            parts = tuple(t.split(step) for t in whole)
        else:
            parts = tuple((t,) for t in whole)
        for col, row, lab in zip(*parts):
            outer = torch.bmm(col, row)  # c cᵀ + u uᵀ per sample
            flat.index_add_(0, lab, outer.view(-1, a * a))
            del outer  # free this chunk before the next is allocated, so only one is alive


def _scatter_from_cov(module: nn.Module, state: dict, prefix: str, *args: object) -> None:
    # Checkpoints written before the scatter was stored hold Σ as "cov": n·Σ is the same state.
    old = state.pop(prefix + "cov", None)
    if old is not None and prefix + "scatter" not in state:
        n = state[prefix + "count"]
        state[prefix + "scatter"] = old * (n[:, None, None] if old.dim() == 3 else n[:, None])


def make_statistics(num_classes: int, feature_dim: int, mode: str, sync: str) -> ClassCovariance | None:
    """The statistics a loss in covariance ``mode`` (LOSS_MODES) keeps: per class, one shared
    full covariance (as a single class), the class means with one pooled scatter, or none for the identity."""
    if mode not in LOSS_MODES:
        raise ValueError(f"mode must be one of {LOSS_MODES}, got {mode!r}")
    if mode == "identity":
        return None
    if mode == "shared":
        return ClassCovariance(1, feature_dim, "full", sync)
    if mode == "pooled":
        return ClassCovariance(num_classes, feature_dim, "full", sync, pooled=True)
    return ClassCovariance(num_classes, feature_dim, mode, sync)
