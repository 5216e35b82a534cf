"""The ISDA loss: cross-entropy on logits raised by λ/2·σ², σ² from the class statistics and the classifier.

Pure tensor math, no I/O, and like the statistics it reads (bench.methods.covariance) free of
host-device synchronisation: every shape is known from the inputs' sizes alone, so a CUDA step
never stalls the launching CPU.

Memory: the only tensors whose size grows with the class count squared or with A² are the
statistics themselves (``scatter``) and, for the pairwise table, C·C·A; everything that would
grow as N·C·A, N·A·A or N·C·C in the authors' formulation is either avoided or processed in
chunks whose size is bounded by ``CHUNK_ELEMS`` (bench.methods.covariance).

Op count: on a GPU host whose CPU launches kernels slowly, each dispatched op costs about the
same whatever its size, so at CIFAR shapes ISDA's overhead over cross-entropy is set by how
many ops a step dispatches, not by FLOPs. Hence: one one-hot per step shared by the update and
σ², per-class factors kept as [C, 1] columns (no view per use), scales folded into
addmm/baddbmm's alpha and beta, one autocast-off region per loss call, no slicing when one
chunk suffices, and closed-form backwards. ``isda-bench perf isda-ops`` counts them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.methods.covariance import (
    ONE_COVARIANCE_MODES,
    _at_least_float32,
    _one_hot,
    _rows_per_chunk,
    make_statistics,
)

# How λ follows training: λ0·epoch/epochs (the papers') or λ0 from the first epoch (the ablation's).
SCHEDULES = ("linear", "constant")

# σ²'s backward needs Σ_y(w_j - w_y) for every output entry. Keeping it costs R·C·A
# elements; above this bound it is recomputed in backward instead (one more A²-sized pass).
SAVE_ELEMS = 1 << 27


def _chunks(step: int, total: int, *tensors: Tensor):
    """(start, stop, slices) for rows [start, stop) of each tensor; one chunk takes no slices.

    Slicing costs a dispatched op per tensor; at the usual CIFAR shapes everything is one chunk.
    """
    if step >= total:
        yield 0, total, tensors
        return
    for start in range(0, total, step):
        yield start, start + step, tuple(t[start : start + step] for t in tensors)


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
        num_rows = num_classes if rows is None else rows.shape[0]
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
        if row_scale is not None:
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
                assert rows is not None  # saved whenever the rows are not the whole table
                r = rows if stop - start == rows.shape[0] else rows[start:stop]
                grad_w.index_add_(0, r, minus, alpha=-1.0)
        assert grad_w is not None  # there is at least one row, so at least one chunk
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


class ISDALoss(nn.Module):
    """Cross-entropy on ISDA-augmented logits; holds the class statistics as a submodule.

    ``loss, logits = crit(features, fc, labels, lam)``: merges the batch into the statistics
    first (the reference's order), then returns the loss on
    ``fc(features) + lam/2 · σ²`` and the plain, unaugmented logits (use those for accuracy).
    ``update=False`` uses the statistics as they are, e.g. to check gradients with the
    statistics held fixed. ``mode``: one of LOSS_MODES. ``sync`` and ``pad_to``: see ``ClassCovariance`` (both in
    bench.methods.covariance).
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
        if self.mode in ONE_COVARIANCE_MODES:
            from bench.methods.isda_shared import one_covariance_loss

            return one_covariance_loss(self.stats, features, logits, fc, labels, lam, update, pad_to), logits
        stats = self.stats
        assert stats is not None  # only the identity mode keeps no statistics
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
