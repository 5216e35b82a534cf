"""Implicit semantic data augmentation (ISDA), written without host-device synchronisation.

Pure tensor math, no I/O. Every quantity is computed with shapes known from the inputs'
sizes alone: no ``unique``/``nonzero``/``bincount``, no boolean-mask indexing, no ``.item()``
and no Python branch on a tensor's value, so a CUDA step never stalls the launching CPU.
The one communication is optional: with ``sync="global"`` in a process group, each update
all-gathers the ranks' features (bench.train.distributed.all_gather_rows), sized from the caller's
``pad_to`` rather than from values read back.

Memory: the only tensors whose size grows with the class count squared or with A² are the
statistics themselves (``scatter``) and, for the pairwise table, C·C·A; everything that would
grow as N·C·A, N·A·A or N·C·C in the authors' formulation is either avoided or processed in
chunks whose size is bounded by ``CHUNK_ELEMS``.

Op count: on a GPU host whose CPU launches kernels slowly, each dispatched op costs about the
same whatever its size, so at CIFAR shapes ISDA's overhead over cross-entropy is set by how
many ops a step dispatches, not by FLOPs. Hence: one one-hot per step shared by the update and
σ², per-class factors kept as [C, 1] columns (no view per use), scales folded into
addmm/baddbmm's alpha and beta, one autocast-off region per loss call, no slicing when one
chunk suffices, and closed-form backwards. ``isda-bench perf isda-ops`` counts them.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

MODES = ("full", "diagonal")  # the class covariances ClassCovariance keeps
# The losses' covariance modes: per class (full, diagonal) or one for all classes, the ablation's
# identity (Σ = I) and shared (the covariance of all features; bench.methods.isda_shared).
LOSS_MODES = (*MODES, "identity", "shared")
# How λ follows training: λ0·epoch/epochs (the papers') or λ0 from the first epoch (the ablation's).
SCHEDULES = ("linear", "constant")
# How the statistics follow a multi-process run: "global" merges every rank's batch, so each rank
# holds what one process fed the whole global batch would; "local" merges the rank's own batch only
# (the reference ImageNet code). One process: both are the same.
SYNCS = ("global", "local")

# Upper bound, in elements, on the working set of one chunk (outer products in the update,
# class-difference blocks in σ²). 2**24 float32 = 64 MiB: large enough that the GEMMs stay
# efficient, small enough that C=1000, A=2048 fits beside its 16 GB covariance on one GPU.
CHUNK_ELEMS = 1 << 24

# σ²'s backward needs Σ_y(w_j - w_y) for every output entry. Keeping it costs R·C·A
# elements; above this bound it is recomputed in backward instead (one more A²-sized pass).
SAVE_ELEMS = 1 << 27


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


def _chunks(step: int, total: int, *tensors: Tensor):
    """(start, stop, slices) for rows [start, stop) of each tensor; one chunk takes no slices.

    Slicing costs a dispatched op per tensor; at the usual CIFAR shapes everything is one chunk.
    """
    if step >= total:
        yield 0, total, tensors
        return
    for start in range(0, total, step):
        yield start, start + step, tuple(t[start : start + step] for t in tensors)


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
    """

    mean: Tensor
    scatter: Tensor
    count: Tensor

    def __init__(self, num_classes: int, feature_dim: int, mode: str = "full", sync: str = "local") -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if sync not in SYNCS:
            raise ValueError(f"sync must be one of {SYNCS}, got {sync!r}")
        self.num_classes, self.feature_dim, self.mode, self.sync = num_classes, feature_dim, mode, sync
        shape = (num_classes, feature_dim, feature_dim) if mode == "full" else (num_classes, feature_dim)
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
        """1/n per class, [C]; 1 for classes never seen (whose scatter is 0)."""
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
        new counts clamped at 1, [C, 1], from which σ² takes 1/n without recomputing them."""
        # The statistics accumulate over a whole run; bf16 would lose them within an epoch, so
        # they are kept and computed in float32 (or float64, if the buffers were cast to it).
        dtype = _at_least_float32(self.scatter.dtype)
        x = features.to(dtype)  # no copy when already there; no_grad, so no detach is needed
        if self._gathers():
            from bench.train.distributed import all_gather_rows

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
        parts = (pairs, pairs.transpose(1, 2), labels)
        step = _rows_per_chunk(a * a)
        if step < centred.shape[0]:  # one split per tensor, not a slice per tensor and chunk
            parts = tuple(t.split(step) for t in parts)
        else:
            parts = tuple((t,) for t in parts)
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


class _PairwiseQuadratic(torch.autograd.Function):
    """out[r, j] = s·t_r·(w_j - w_{y_r})ᵀ M_{y_r} (w_j - w_{y_r}) for output rows r with classes y_r.

    A custom Function so that backward needs no A²-sized work: the forward already forms
    D = s·M_y(w_j - w_y), and for symmetric M the gradient w.r.t. e = w_j - w_y is 2·t·g·D.
    ``rows`` None means one row per class (the C×C table), read from ``cov`` without a copy.
    The scale ``s`` (a Python number) rides on the product that forms D, so applying it costs
    no op, here or in the caller's backward. ``row_scale`` t (one number per output row, e.g.
    1/n of a scatter matrix, or None for 1) multiplies the [rows, C] result, not the A²-sized M.
    """

    @staticmethod
    def forward(ctx, weight: Tensor, cov: Tensor, rows: Tensor | None, scale: float,  # type: ignore[override]
                row_scale: Tensor | None) -> Tensor:
        num_classes, dim = weight.shape
        table = rows is None
        num_rows = num_classes if table else rows.shape[0]
        per_row = 2 * num_classes * dim + (0 if table else dim * dim)
        step = _rows_per_chunk(per_row)
        keep_d = num_rows * num_classes * dim <= SAVE_ELEMS
        saved = []
        if step >= num_rows:  # one chunk: no output buffer to assemble
            d, e = _block(weight, cov, rows, 0, num_rows, scale)
            out = (d * e).sum(-1)
            if keep_d:
                saved.append(d)
            del d, e
        else:
            out = weight.new_empty(num_rows, num_classes)
            for start in range(0, num_rows, step):
                d, e = _block(weight, cov, rows, start, start + step, scale)
                out[start : start + step] = (d * e).sum(-1)
                if keep_d:
                    saved.append(d)
                del d, e  # one chunk alive at a time
        ctx.table, ctx.step, ctx.keep_d, ctx.num_rows, ctx.scale = table, step, keep_d, num_rows, scale
        ctx.scaled = row_scale is not None
        if ctx.scaled:
            row_scale = row_scale[:, None]
            out.mul_(row_scale)
        ctx.save_for_backward(weight, cov, *([] if table else [rows]), *([row_scale] if ctx.scaled else []), *saved)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        weight, cov, *saved = ctx.saved_tensors
        rows = None if ctx.table else saved.pop(0)
        if ctx.scaled:
            grad_out = grad_out * saved.pop(0)  # t_r on each row's gradient, [rows, C] work only
        grad_w = None
        for k, (start, stop, (g,)) in enumerate(_chunks(ctx.step, ctx.num_rows, grad_out)):
            d = saved[k] if ctx.keep_d else _block(weight, cov, rows, start, stop, ctx.scale)[0]
            ge = d * g[:, :, None]  # half of ∂/∂(w_j - w_y), [k, C, A]; the 2 is applied once, last
            plus = ge.sum(0)  # + for w_j
            minus = ge.sum(1)  # - for w_y
            del d, ge
            if grad_w is None and ctx.table and stop - start == ctx.num_rows:
                grad_w = plus.sub_(minus)  # the whole table: rows are the classes, in order
                continue
            grad_w = plus if grad_w is None else grad_w.add_(plus)
            if ctx.table:  # rows are consecutive classes: a slice, no scatter
                grad_w[start:stop] -= minus
            else:
                r = rows if stop - start == rows.shape[0] else rows[start:stop]
                grad_w.index_add_(0, r, minus, alpha=-1.0)
        return grad_w.mul_(2.0), None, None, None, None


def _block(
    weight: Tensor, cov: Tensor, rows: Tensor | None, start: int, stop: int, scale: float
) -> tuple[Tensor, Tensor]:
    """D = s·(w_j - w_y) Σ_y and E = w_j - w_y for output rows [start, stop); ``rows`` None:
    the rows are the classes themselves. Whole ranges are used without slicing."""
    whole = start == 0 and stop >= (weight.shape[0] if rows is None else rows.shape[0])
    if rows is None:
        w_r, sigma = (weight, cov) if whole else (weight[start:stop], cov[start:stop])
    else:
        r = rows if whole else rows[start:stop]
        w_r, sigma = weight.index_select(0, r), cov.index_select(0, r)  # [k, A], [k, A, A]
    e = weight - w_r[:, None]  # broadcast to [k, C, A]; row j = y_r exactly 0
    if scale == 1.0:
        return torch.bmm(e, sigma), e
    # beta = 0: the first argument only gives the shape and is not read (NaN in it is not propagated)
    return torch.baddbmm(e, e, sigma, beta=0.0, alpha=scale), e


class _DiagonalQuadratic(torch.autograd.Function):
    """out[i, j] = s·Σ_a v_{y_i,a} (w_ja - w_{y_i,a})² for per-feature variances ``var`` [C, A].

    Σ_a v_a (w_ja - w_ya)² is expanded into three terms, so that only [N, A] and [N, C] tensors
    appear (two N×A·A×C products, the third term fused in by addmm) instead of the N×C×A
    differences. The expansion cancels in floating point when w_j ≈ w_y, so the j = y entries
    are set to exactly 0. A custom Function because autograd through the expansion costs about
    three times as many ops as the closed-form gradient below; the scale ``s`` rides on the
    products' alpha/beta and on the final factor 2 of the gradient.
    """

    @staticmethod
    def forward(ctx, weight: Tensor, var: Tensor, labels: Tensor, scale: float) -> Tensor:  # type: ignore[override]
        v = var.index_select(0, labels)  # [N, A]
        wy = weight.index_select(0, labels)
        u = v * wy
        out = torch.addmm((u * wy).sum(1, keepdim=True), v, (weight * weight).t(), beta=scale, alpha=scale)
        out.addmm_(u, weight.t(), alpha=-2.0 * scale)
        ctx.scale = scale
        ctx.save_for_backward(weight, labels, v, u)
        return out.scatter_(1, labels[:, None], 0.0)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        weight, labels, v, u = ctx.saved_tensors
        g = grad_out.scatter(1, labels[:, None], 0.0)  # the j = y entries are constants
        g_t = g.t()
        # ∂/∂w_j: Σ_i g_ij v_i∘(w_j - w_{y_i}) = (gᵀv)∘W - gᵀu
        grad_w = torch.addmm((g_t @ v).mul_(weight), g_t, u, alpha=-1.0)
        # ∂/∂w_{y_i}: -Σ_j g_ij v_i∘(w_j - w_{y_i}) = -(v_i∘(g_i W) - (Σ_j g_ij) u_i), onto row y_i
        per_sample = (g @ weight).mul_(v).addcmul_(g.sum(1, keepdim=True), u, value=-1.0)
        grad_w.index_add_(0, labels, per_sample, alpha=-1.0)
        return grad_w.mul_(2.0 * ctx.scale), None, None, None


def _sigma2_parts(
    weight: Tensor, cov: Tensor, labels: Tensor, onehot: Tensor | None, scale: float = 1.0,
    inv_count: Tensor | None = None,
) -> tuple[Tensor | None, Tensor]:
    """scale·σ² as ``(onehot, table)`` with scale·σ² = onehot @ table (full Σ, C ≤ N), else
    ``(None, scale·σ²)``.

    Kept as a product so that the caller can fuse it with what it adds σ² to (one addmm).
    ``cov`` is already detached and in ``weight``'s dtype; autocast is off. With ``inv_count``
    ([C], 1/n per class) ``cov`` is the scatter n·Σ, and 1/n is applied to the result. ``onehot``
    (the labels' one-hot in ``weight``'s dtype) is reused when given, built when needed.
    """
    if cov.dim() == 2:
        var = cov if inv_count is None else cov * inv_count[:, None]  # [C, A]: small
        return None, _DiagonalQuadratic.apply(weight, var, labels, scale)
    # Cost min(N, C)·C·A²: a C×C table over classes when the batch has at least as many
    # samples as there are classes (CIFAR), per sample otherwise (ImageNet-sized C).
    if weight.shape[0] <= labels.shape[0]:
        table = _PairwiseQuadratic.apply(weight, cov, None, scale, None)  # [C, C]
        # Row selection as a 0/1 matrix product: exact, and its backward is a product too,
        # deterministic on GPU unlike the atomic scatter behind index_select's backward.
        if onehot is None or onehot.dtype != table.dtype:
            onehot = _one_hot(labels, weight.shape[0], table.dtype)
        if inv_count is not None:  # 1/n rides on the selection: one [N, C] op, none in backward
            onehot = onehot * inv_count
        return onehot, table
    row_scale = None if inv_count is None else inv_count.index_select(0, labels)
    return None, _PairwiseQuadratic.apply(weight, cov, labels, scale, row_scale)


def isda_sigma2(weight: Tensor, cov: Tensor, labels: Tensor) -> Tensor:
    """σ²[i, j] = (w_j - w_{y_i})ᵀ Σ_{y_i} (w_j - w_{y_i}), shape [N, C]; exactly 0 where j = y_i.

    ``cov`` is [C, A, A] (full) or [C, A] (per-feature variances). Gradient flows to
    ``weight`` only; the statistics are treated as constants. Computed in ``weight``'s dtype
    with autocast off.
    """
    with torch.autocast(device_type=weight.device.type, enabled=False):
        onehot, sigma2 = _sigma2_parts(weight, cov.detach().to(weight.dtype), labels, None)
        return sigma2 if onehot is None else onehot @ sigma2


def make_statistics(num_classes: int, feature_dim: int, mode: str, sync: str) -> ClassCovariance | None:
    """The statistics a loss in covariance ``mode`` (LOSS_MODES) keeps: per class, one shared
    full covariance (as a single class), or none for the identity."""
    if mode not in LOSS_MODES:
        raise ValueError(f"mode must be one of {LOSS_MODES}, got {mode!r}")
    if mode == "identity":
        return None
    if mode == "shared":
        return ClassCovariance(1, feature_dim, "full", sync)
    return ClassCovariance(num_classes, feature_dim, mode, sync)


class ISDALoss(nn.Module):
    """Cross-entropy on ISDA-augmented logits; holds the class statistics as a submodule.

    ``loss, logits = crit(features, fc, labels, lam)``: merges the batch into the statistics
    first (the reference's order), then returns the loss on
    ``fc(features) + lam/2 · σ²`` and the plain, unaugmented logits (use those for accuracy).
    ``update=False`` uses the statistics as they are, e.g. to check gradients with the
    statistics held fixed. ``mode``: one of LOSS_MODES. ``sync`` and ``pad_to``: see ``ClassCovariance``.
    """

    def __init__(self, num_classes: int, feature_dim: int, mode: str = "full", sync: str = "local") -> None:
        super().__init__()
        self.mode = mode
        self.stats = make_statistics(num_classes, feature_dim, mode, sync)

    def forward(
        self, features: Tensor, fc: nn.Linear, labels: Tensor, lam: float | Tensor, *, update: bool = True,
        pad_to: int | None = None,
    ) -> tuple[Tensor, Tensor]:
        # The plain logits first, under the caller's autocast: they do not depend on the
        # statistics, so this order gives the same result as updating first, and everything
        # after it runs in one autocast-off region instead of entering and leaving one per part.
        logits = fc(features)
        if self.mode in ("identity", "shared"):
            from bench.methods.isda_shared import one_covariance_loss

            return one_covariance_loss(self.stats, features, logits, fc, labels, lam, update, pad_to), logits
        stats = self.stats
        with torch.autocast(device_type=features.device.type, enabled=False):
            # float32 at least (float64 stays float64, for gradient checks)
            weight = fc.weight.to(_at_least_float32(fc.weight.dtype))
            # One one-hot serves the update and σ²'s row selection where both need it and
            # their dtypes agree (float32 in training).
            onehot = None
            table = stats.mode == "full" and weight.shape[0] <= labels.shape[0]
            if (update and not stats._gathers()) or table:
                onehot = _one_hot(labels, stats.num_classes, weight.dtype)
            if update:
                # Global sync gathers detached copies for the statistics only: the loss below,
                # and so the gradient, uses this rank's own features and labels.
                with torch.no_grad():
                    inv_count = stats._update(features, labels, onehot, pad_to).view(-1).reciprocal()
            else:
                inv_count = stats.inverse_count()
            # λ/2 rides inside σ²'s products when it is a Python number; a tensor λ (which
            # could only become an alpha by reading it back) multiplies afterwards.
            scale = 1.0 if isinstance(lam, Tensor) else 0.5 * lam
            onehot, sigma2 = _sigma2_parts(weight, stats.scatter.to(weight.dtype), labels, onehot, scale,
                                           inv_count.to(weight.dtype))
            if isinstance(lam, Tensor):
                sigma2 = sigma2 * (0.5 * lam)
            if onehot is None:  # type promotion computes a bf16 + float32 sum in float32: no cast op
                augmented = logits + sigma2
            else:
                augmented = torch.addmm(logits.to(weight.dtype), onehot, sigma2)
            loss = F.cross_entropy(augmented, labels)
        return loss, logits


def strength(lambda0: float, progress: float | Tensor, schedule: str = "linear") -> float | Tensor:
    """λ at ``progress`` = epoch / epochs: λ0·progress (linear, the papers') or λ0 (constant)."""
    return lambda0 * progress if schedule == "linear" else lambda0


class ISDAMethod(ISDALoss):
    """ISDA as a method of the registry (bench.methods): λ = strength(λ0, progress, schedule),
    progress = epoch / epochs."""

    accepts_pad_to = True  # bench.train.trainer gives the step's largest local batch under global sync

    def __init__(self, num_classes: int, feature_dim: int, lambda0: float, mode: str = "full",
                 sync: str = "local", schedule: str = "linear") -> None:
        super().__init__(num_classes, feature_dim, mode, sync)
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        self.lambda0, self.schedule = lambda0, schedule

    @property
    def synchronised(self) -> bool:
        """Every rank holds the same statistics (global sync): bench.train.trainer broadcasts rather than gathers."""
        return self.stats is None or self.stats.sync == "global"

    def strength(self, progress: float) -> float:
        return float(strength(self.lambda0, progress, self.schedule))

    def forward(  # type: ignore[override]
        self, features: Tensor, fc: nn.Linear, labels: Tensor, progress: float | Tensor, *,
        pad_to: int | None = None,
    ) -> tuple[Tensor, Tensor]:
        return super().forward(features, fc, labels, strength(self.lambda0, progress, self.schedule), pad_to=pad_to)


def lambda_at(lambda0: float, epoch: int, epochs: int) -> float:
    """ISDA strength for 0-based ``epoch`` of ``epochs``: λ0·epoch/epochs (0 in the first epoch)."""
    if epochs <= 0:
        raise ValueError(f"epochs must be positive, got {epochs}")
    return lambda0 * epoch / epochs
