"""What a step costs in memory: the peak it allocates beyond what was allocated before it (CUDA: the
allocator's peak; CPU: the running sum of the allocation events ``torch.profiler`` records, which
tracemalloc would not see), and the bytes a method holds between steps."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator

import torch


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Hold back what C++ writes to file descriptor 2 (the profiler's start/stop and allocator lines,
    which bypass sys.stderr); it is shown after all if the block raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def cpu_peak_bytes(step: Callable[[], None]) -> int:
    """The running peak of torch's CPU allocations and frees during one call of ``step``."""
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda e: e.start_ns())
    current = peak = 0
    for e in events:  # allocations positive, frees negative, in time order
        current += e.nbytes()
        peak = max(peak, current)
    return peak


def cuda_peak_bytes(step: Callable[[], None], device: torch.device) -> int:
    """CUDA's peak allocated bytes during one call of ``step``, less what was allocated before it."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    step()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


def step_peak_bytes(step: Callable[[], None], device: torch.device) -> int:
    """Peak bytes allocated during one step beyond what was allocated before it. Only this step's
    own allocations count, so the models of methods measured earlier in the process do not."""
    return cuda_peak_bytes(step, device) if device.type == "cuda" else cpu_peak_bytes(step)


def state_bytes(model: torch.nn.Module, crit: torch.nn.Module | None, opt: torch.optim.Optimizer) -> int:
    """Bytes a method holds between steps: parameters, buffers, gradients, optimizer state and the
    ISDA statistics, each storage counted once."""
    tensors = [*model.parameters(), *model.buffers()]
    tensors += [p.grad for p in model.parameters() if p.grad is not None]
    if crit is not None:
        tensors += [*crit.parameters(), *crit.buffers()]
    tensors += [v for state in opt.state.values() for v in state.values() if torch.is_tensor(v)]
    storages = {(t.device, t.untyped_storage().data_ptr()): t.untyped_storage().nbytes() for t in tensors}
    return sum(storages.values())
