"""The fast path's machinery: CUDA settings, torch.compile and CUDA graphs (bench.train uses it).

``cuda_settings`` is shared with the benchmarks so that they measure what training does;
``compiled`` wraps a function in torch.compile for a RunConfig ``compile`` mode;
``static_addresses`` lets CUDA graphs update weights and statistics in place;
``deterministic_if_compiled_on_cpu`` keeps compiled CPU runs bit-identical when repeated.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn


def cuda_settings(device: torch.device) -> None:
    """Process-wide settings of a CUDA run, shared with the benchmarks so that they measure what
    training does: cuDNN picks its fastest convolution for each (fixed) shape, and float32 matrix
    products (ISDA's, under bf16 autocast) use TF32 tensor cores. The ISDA statistics are still
    stored and accumulated in float32; TF32 rounds the products' inputs to 10 bits of mantissa,
    far below the sampling noise of a class covariance and the bf16 logits it is added to."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")


CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune", "cudagraphs")  # compile modes that replay CUDA graphs


def compiled(fn: Callable[..., Any], mode: str) -> Callable[..., Any]:
    """``fn`` under torch.compile in ``mode`` (a RunConfig.compile value); ``off``: ``fn`` itself.

    Shapes are static: a run has two training batch sizes (full and last), so two graphs, and
    CUDA graphs (reduce-overhead, max-autotune) need fixed shapes anyway.
    """
    if mode == "off":
        return fn
    if mode == "cudagraphs":  # a backend, not a mode: AOTAutograd's graphs replayed as CUDA graphs
        return torch.compile(fn, backend="cudagraphs", dynamic=False)
    return torch.compile(fn, mode=None if mode == "default" else mode, dynamic=False)


def static_addresses(*modules: nn.Module | None) -> None:
    """Tell torch.compile that these modules' parameters and buffers keep their storage.

    A CUDA graph replays fixed addresses: the weights, BatchNorm's running statistics and the ISDA
    statistics, all updated in place, are then read and written where they are, instead of being
    copied into the graph's own inputs before every replay (the covariance alone is 164 MB for
    WRN-28-10 on CIFAR-100) or making the graph refuse the in-place update. Inductor's CUDA graphs
    (reduce-overhead, max-autotune) honour the mark; the ``cudagraphs`` backend does not (it treats
    only AOTAutograd's own fixed arguments as static) and copies them, which costs memory traffic.
    """
    for module in modules:
        if module is not None:
            for t in (*module.parameters(), *module.buffers()):
                torch._dynamo.mark_static_address(t)


@contextlib.contextmanager
def deterministic_if_compiled_on_cpu(mode: str, device: torch.device) -> Iterator[None]:
    """Torch's deterministic mode for the run, when it is compiled on the CPU.

    Inductor turns the ISDA update's scatter-add (index_add_) into a parallel loop of atomic adds
    on the CPU, whose summation order varies from run to run; in deterministic mode it calls
    ATen's sequential kernel instead, so a compiled CPU run repeats bit for bit, as an eager one
    does. The previous mode is restored afterwards.
    """
    if mode == "off" or device.type != "cpu":
        yield
        return
    before = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_only)
