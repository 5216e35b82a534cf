"""How long a sweep will take: device-hours from measured or recorded training throughput.

Throughput (training images per second on one device) comes, in order of preference, from the
sweep's own finished runs of the same dataset family and architecture (``images_per_s`` in
result.json), or from the measurements recorded below. A run's estimate is
``epochs × train images / throughput × devices``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bench.config import RunConfig

TRAIN_IMAGES = {"digits": 1437, "synthetic": 1000, "cifar10": 50_000, "cifar100": 50_000, "imagenet": 1_281_167}

# Images/s of one whole CE training step on one NVIDIA H200, bf16 + channels_last, eager
# (ISDA-method.md §5: ResNet-110 36.4 ms and WRN-28-10 14.6 ms at batch 128; ResNet-50 on
# 224² images 56.1 ms at batch 256). Input time not included.
RECORDED: dict[tuple[str, str], tuple[float, str]] = {
    ("cifar", "resnet110"): (128 / 0.0364, "H200 step, ISDA-method.md §5"),
    ("cifar", "wrn28_10"): (128 / 0.0146, "H200 step, ISDA-method.md §5"),
    ("imagenet", "resnet50"): (256 / 0.0561, "H200 step, ISDA-method.md §5"),
}


def family(dataset: str) -> str:
    return "cifar" if dataset in ("cifar10", "cifar100") else dataset


@dataclass
class Estimate:
    devices: int
    hours: float | None  # device-hours for this run; None when no throughput is known
    source: str


def measured_throughput(sweep_dir: Path) -> dict[tuple[str, str], float]:
    """Mean images/s per (dataset family, arch) over the sweep's finished runs."""
    seen: dict[tuple[str, str], list[float]] = {}
    for path in Path(sweep_dir).glob("*/result.json"):
        try:
            res = json.loads(path.read_text())
            ips = float(res["images_per_s"]) * int(res.get("world_size") or 1)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if ips > 0:
            seen.setdefault((family(res["dataset"]), res["arch"]), []).append(ips)
    return {k: sum(v) / len(v) for k, v in seen.items()}


def estimate_run(cfg: RunConfig, devices: int, measured: dict[tuple[str, str], float]) -> Estimate:
    key = (family(cfg.dataset), cfg.arch)
    if key in measured:
        ips, source = measured[key], "this sweep's finished runs"
    elif key in RECORDED:
        ips, source = RECORDED[key]
    else:
        return Estimate(devices, None, "no measurement yet")
    seconds = cfg.epochs * TRAIN_IMAGES.get(cfg.dataset, 0) / ips
    return Estimate(devices, seconds * devices / 3600, source)
