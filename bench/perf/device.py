"""The device a benchmark runs on: chosen from ``--device``, named for file names, its free memory,
and whether an error is it running out of memory."""

from __future__ import annotations

import os
import re

import torch

from bench.common.errors import ConfigError
from bench.perf.options import parse_choice

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(value: str) -> torch.device:
    parse_choice("--device", value, DEVICES)
    if value == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if value == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device", value, "cpu or auto: no CUDA device is available here")
    return torch.device(value)


def device_label(device: torch.device) -> str:
    """``cpu``, or ``cuda-<model>`` (e.g. ``cuda-nvidia-h200``): the device part of a result's file name."""
    if device.type != "cuda":
        return device.type
    name = torch.cuda.get_device_name(device)
    return "cuda-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def available_bytes(device: torch.device) -> int:
    """Memory free on ``device`` now: CUDA's free memory, or the host's MemAvailable."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def allocation_failed(exc: BaseException) -> bool:
    """Whether ``exc`` is a device running out of memory: CUDA's OutOfMemoryError, or the CPU
    allocator's refusal, which torch raises as a plain RuntimeError."""
    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc))


def sync(device: torch.device) -> None:
    """Wait for the work queued on a CUDA device (nothing to wait for on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
