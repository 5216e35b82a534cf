"""The fast path's machinery: CUDA settings, torch.compile and CUDA graphs (bench.train.trainer uses it).

``cuda_settings`` is shared with the benchmarks so that they measure what training does;
``compiled`` wraps a function in torch.compile for a RunConfig ``compile`` mode, and
``scalar_input`` gives it a number that changes between epochs (the run's progress, ISDA's λ);
``static_addresses`` lets CUDA graphs update weights and statistics in place;
``deterministic_if_compiled_on_cpu`` keeps compiled CPU runs bit-identical when repeated;
``drop_batchnorm_counters`` removes a kernel per BatchNorm layer and step that nothing reads.
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


COUNTER = "num_batches_tracked"


def drop_batchnorm_counters(model: nn.Module) -> int:
    """Remove the step counter of every BatchNorm that has a fixed momentum; returns how many.

    Such a layer (all of the paper's networks: momentum 0.1) only increments its counter, one
    kernel per layer and step that nothing reads: 111 of the 1,244 kernel-launching operations of
    an eager ResNet-110 step with bf16 autocast and foreach SGD. The running statistics are
    computed exactly as before.
    """
    dropped = 0
    for m in model.modules():
        if _counts_steps(m) and getattr(m, COUNTER) is not None:
            setattr(m, COUNTER, None)  # a None buffer: skipped by forward and by state_dict
            dropped += 1
    return dropped


def _counts_steps(m: nn.Module) -> bool:
    # A stock BatchNorm of this kind has a counter; one that tracks no statistics has none.
    return isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats and m.momentum is not None


def with_batchnorm_counters(model: nn.Module, state: dict[str, Any], steps: int) -> dict[str, Any]:
    """``state`` (``model.state_dict()``, changed in place) with the counters that
    ``drop_batchnorm_counters`` removed put back, each ``steps``: what a stock BatchNorm holds after
    that many training steps. A checkpoint then loads into the stock network (``timm.create_model``)
    with a strict ``load_state_dict``, as if the counters had never been dropped."""
    for name, m in model.named_modules():
        if _counts_steps(m) and getattr(m, COUNTER) is None:
            state[f"{name}.{COUNTER}" if name else COUNTER] = torch.tensor(steps, dtype=torch.long)
    return state


def load_model_state(model: nn.Module, state: dict[str, Any]) -> None:
    """``model.load_state_dict(state)``, strict except for the BatchNorm counters that ``model`` no
    longer has (``with_batchnorm_counters`` writes them). Filtering the keys instead would lose the
    state dict's version metadata, and BatchNorm puts its counter back into a state dict it takes
    to be old."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    unexpected = [k for k in unexpected if not k.endswith("." + COUNTER)]
    if missing or unexpected:
        raise RuntimeError(f"model state does not fit {type(model).__name__}: missing keys {missing}, "
                           f"unexpected keys {unexpected}")


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


def cudagraph_skips() -> int:
    """Compiled graphs that torch has so far, in this process, declined to replay as CUDA graphs.

    A declined graph (an input it may not keep at a fixed address, a CPU tensor, an op that cannot
    be captured, …) still runs, at eager launch cost, and torch says nothing unless asked
    (``TORCH_LOGS=cudagraphs`` prints the reasons). Benchmarks and training check this count so a
    slow "CUDA-graph" time is never taken for one."""
    from torch._dynamo.utils import counters

    return int(counters["inductor"]["cudagraph_skips"])


def scalar_input(value: float, mode: str, device: torch.device) -> float | torch.Tensor:
    """A number that changes between epochs (the run's progress, ISDA's λ) as the step function takes
    it: compiled, a device tensor, an input of the graph, since a Python number would be a constant
    baked into it and recompiled whenever it changes."""
    return value if mode == "off" else torch.tensor(value, device=device)


def static_addresses(*modules: nn.Module | None) -> None:
    """Tell torch.compile that these modules' parameters and buffers keep their storage.

    A CUDA graph replays fixed addresses: the weights, BatchNorm's running statistics and the ISDA
    statistics, all updated in place, are then read and written where they are, instead of being
    copied into the graph's own inputs before every replay (the covariance alone is 164 MB for
    WRN-28-10 on CIFAR-100) or making the graph refuse the in-place update. Inductor's CUDA graphs
    (reduce-overhead, max-autotune) honour the mark; the ``cudagraphs`` backend does not (it treats
    only AOTAutograd's own fixed arguments as static) and copies them, which costs memory traffic.
    Torch 2.14 already treats the tensors of the modules it inlines as static (tests/test_fastpath.py
    checks the step's graph either way); the mark keeps that true whatever that default becomes.
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
