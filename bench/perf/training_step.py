"""The model, ISDA criterion and SGD of a training benchmark, built as training builds them, and the
step that trains them on one batch (compiled as training compiles it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from bench.perf.options import SHAPES
from bench.train.fastpath import CUDA_GRAPH_MODES, compiled, drop_batchnorm_counters, scalar_input, static_addresses


def model_and_loss(arch: str, dataset: str, method: str, device: torch.device, channels_last: bool,
                   cov_mode: str, bn_counters: bool = False) -> tuple[Any, torch.nn.Module | None, torch.optim.SGD]:
    """Model, ISDA criterion (None for CE) and SGD as training builds them; ``bn_counters`` keeps
    BatchNorm's step counters, as the authors' code does."""
    from bench.methods.isda import ISDALoss
    from bench.methods.isda_reference import ReferenceISDALoss
    from bench.models import create_model

    classes, chans, _ = SHAPES[dataset]
    torch.manual_seed(0)
    model = create_model(arch, num_classes=classes, in_chans=chans).to(device)
    if not bn_counters:
        drop_batchnorm_counters(model)  # as training does
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    crit: torch.nn.Module | None = None
    if method == "isda":
        crit = ISDALoss(classes, model.num_features, cov_mode).to(device)
    elif method == "reference":
        crit = ReferenceISDALoss(classes, model.num_features, cov_mode).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)
    return model, crit, opt


def train_step(model: Any, crit: Any, method: str, opt: torch.optim.Optimizer, bf16: bool,
               lam: float, compile_mode: str = "off") -> Callable[[torch.Tensor, torch.Tensor], None]:
    """One SGD step on a batch, as a function of the batch. ``compile_mode`` (a RunConfig.compile
    value) compiles forward and loss as training does; the authors' formulation always runs eagerly."""
    def forward(x: torch.Tensor, y: torch.Tensor, lam: float | torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            feats = model.features(x)
            if method == "ce":
                return F.cross_entropy(model.fc(feats).float(), y)
            return crit(feats, model.fc, y, lam)[0]

    mode = "off" if method == "reference" else compile_mode
    fwd = compiled(forward, mode)
    lam_in = scalar_input(lam, mode, next(model.parameters()).device)
    graphs = mode in CUDA_GRAPH_MODES
    if graphs:
        static_addresses(model, crit)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        if graphs and x.device.type == "cuda":
            torch.compiler.cudagraph_mark_step_begin()
        opt.zero_grad(set_to_none=True)  # before the forward: the old gradients are not held at its peak
        loss = fwd(x, y, lam_in)
        loss.backward()
        opt.step()

    return step
