"""Which device a run computes on (its ``device`` field) and whether it computes under bf16 autocast."""

from __future__ import annotations

import torch

from bench.common.errors import ConfigError


def pick_device(name: str) -> torch.device:
    """``auto``: a GPU where one is visible, else the CPU; ``cuda`` without a visible GPU is refused."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", name, "cpu or auto (no CUDA device is visible)")
    return torch.device(name)


def uses_bf16(precision: str, device: torch.device) -> bool:
    """Whether a run computes under bf16 autocast: ``bf16``, or ``auto`` on a GPU; ``fp32`` never."""
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")
