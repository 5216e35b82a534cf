"""The workload of the ISDA-alone benchmarks: one step (statistics update + loss forward + backward) on
synthetic features for plain cross-entropy, this suite's ISDA and the transcription of the authors'
formulation, at shapes N (batch), C (classes), A (features) and a covariance mode, with each step's
estimated memory."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

DTYPES = ("float32", "bfloat16")
GRIDS = ("full", "quick")
MODES = ("full", "diagonal")
METHODS = ("ce", "isda", "reference")

Shape = tuple[int, int, int, str]  # N, C, A, covariance mode

GRID: dict[str, list[Shape]] = {
    # CIFAR-10/100 at A = 64 (ResNets), 640 (WRN-28-10), 1024 (ResNeXt-29); ImageNet diagonal
    # and full covariance at A = 2048 (ResNet-50).
    "full": [
        (128, 10, 64, "full"),
        (128, 100, 64, "full"),
        (128, 100, 640, "full"),
        (128, 100, 1024, "full"),
        (256, 1000, 2048, "diagonal"),
        (64, 1000, 2048, "full"),
    ],
    # Small enough for a 2-core CPU in well under a minute.
    "quick": [
        (128, 10, 64, "full"),
        (128, 100, 64, "full"),
        (64, 200, 128, "full"),
        (128, 100, 256, "diagonal"),
    ],
}

# The op counts' default shapes: CIFAR-100 with ResNets and WRN-28-10, ImageNet diagonal.
OPS_SHAPES: list[Shape] = [(128, 100, 64, "full"), (128, 100, 640, "full"), (256, 1000, 2048, "diagonal")]


def estimate_bytes(method: str, shape: Shape) -> int:
    """Rough float32 footprint (persistent statistics + one step's temporaries), for skipping."""
    n, c, a, mode = shape
    f = 4
    state = c * a * a if mode == "full" else c * a
    if method == "ce":
        return f * (3 * n * c + c * a)
    if method == "isda":
        from bench.methods import isda
        from bench.methods.covariance import CHUNK_ELEMS

        if mode == "diagonal":
            return f * (2 * state + 6 * n * a + 6 * n * c)
        rows = min(n, c)
        work = 3 * CHUNK_ELEMS + min(rows * c * a, isda.SAVE_ELEMS)
        return f * (state + work + 4 * n * c)
    # reference: N×C×A masks/differences, a fresh C×A×A each step plus its weight and merge
    # temporaries, the N×A×A gather, the N×C×C product and its eye mask.
    if mode == "diagonal":
        return f * (state + 10 * n * c * a + 6 * state)
    return f * (8 * n * c * a + 7 * state + 2 * n * a * a + 3 * n * c * c)


def make_step(method: str, shape: Shape, device: torch.device, dtype: str) -> tuple[Callable[[], None], int]:
    """A closure running one step of ``method`` and the bytes of its persistent statistics."""
    from bench.methods.isda import ISDALoss
    from bench.methods.isda_reference import ReferenceISDALoss

    n, c, a, mode = shape
    g = torch.Generator(device="cpu").manual_seed(0)
    feats = torch.randn(n, a, generator=g).to(device).requires_grad_()
    labels = torch.randint(0, c, (n,), generator=g).to(device)
    fc = nn.Linear(a, c).to(device)
    lam = 0.5
    bf16 = dtype == "bfloat16"
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    crit: nn.Module | None = None
    if method == "isda":
        crit = ISDALoss(c, a, mode).to(device)
    elif method == "reference":
        crit = ReferenceISDALoss(c, a, mode).to(device)

    def step() -> None:
        feats.grad = None  # fresh gradients each step, so every step allocates the same
        fc.weight.grad = fc.bias.grad = None
        with autocast:
            if crit is None:
                loss = F.cross_entropy(fc(feats).float(), labels)
            else:
                loss, _ = crit(feats, fc, labels, lam)
        loss.backward()

    state = sum(b.numel() * b.element_size() for b in crit.buffers()) if crit is not None else 0
    return step, state


def make_phased_step(method: str, shape: Shape, dtype: str) -> Callable[..., None]:
    """One CPU training step of ``method`` as in ``make_step``, calling ``phase()`` between the
    forward (statistics update included) and the backward."""
    from bench.methods.isda import ISDALoss
    from bench.methods.isda_reference import ReferenceISDALoss

    n, c, a, mode = shape
    g = torch.Generator(device="cpu").manual_seed(0)
    feats = torch.randn(n, a, generator=g).requires_grad_()
    labels = torch.randint(0, c, (n,), generator=g)
    fc = nn.Linear(a, c)
    autocast = torch.autocast(device_type="cpu", dtype=torch.bfloat16) if dtype == "bfloat16" else nullcontext()
    crit = {"ce": None, "isda": lambda: ISDALoss(c, a, mode), "reference": lambda: ReferenceISDALoss(c, a, mode)}
    make = crit[method]
    loss_fn = make() if make is not None else None

    def step(phase: Callable[[], None] = lambda: None) -> None:
        feats.grad = None
        fc.weight.grad = fc.bias.grad = None
        with autocast:
            if loss_fn is None:
                loss = F.cross_entropy(fc(feats).float(), labels)
            else:
                loss, _ = loss_fn(feats, fc, labels, 0.5)
        phase()
        loss.backward()

    return step
