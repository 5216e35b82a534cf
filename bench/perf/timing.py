"""How benchmarks time work: each step alone (CUDA events, or ``time.perf_counter`` on the CPU), blocks
of back-to-back steps as training runs them, and images per second through a batch pipeline."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from bench.perf.device import sync


def time_ms(step: Callable[[], None], device: torch.device, repeats: int, warmup: int) -> list[float]:
    """The time of each of ``repeats`` steps (ms) after ``warmup`` untimed ones; on CUDA each step is
    bracketed by CUDA events after a synchronize, on the CPU by ``time.perf_counter``."""
    for _ in range(warmup):
        step()
    times = []
    if device.type == "cuda":
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize(device)
            start.record()
            step()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
    else:
        for _ in range(repeats):
            t0 = time.perf_counter()
            step()
            times.append((time.perf_counter() - t0) * 1e3)
    return times


def time_blocks(step: Callable[[], None], device: torch.device, steps: int, blocks: int, warmup: int) -> float:
    """Median over ``blocks`` of the mean time per step (ms) of ``steps`` back-to-back steps."""
    for _ in range(warmup):
        step()
    sync(device)
    times = []
    for _ in range(blocks):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        sync(device)
        times.append((time.perf_counter() - t0) * 1e3 / steps)
    return statistics.median(times)


def images_per_s(batches: Iterator, batch: int, steps: int, device: torch.device,
                 consume: Callable[[Any, Any], None] | None = None) -> float:
    """Images per second drawn from ``batches`` (and passed to ``consume``, e.g. a training step) over
    ``steps`` batches after 3 warm-up batches."""
    for _ in range(3):  # warm-up: worker start, first copies
        xb, yb = next(batches)
        if consume is not None:
            consume(xb, yb)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        xb, yb = next(batches)
        if consume is not None:
            consume(xb, yb)
    sync(device)
    return steps * batch / (time.perf_counter() - t0)
