"""How long a sweep will take: device-hours from measured or recorded training throughput.

Throughput (training images per second on one device) comes, in order of preference, from the
sweep's own finished runs of the same dataset family and architecture (``images_per_s`` in
result.json), from the measurements recorded below, or, for another architecture, from a rough
model of those measurements (``modelled_throughput``). A run's estimate is
``epochs × (train images + test images / 3) / throughput`` device-hours, whatever the number of
devices (linear scaling: eight devices take an eighth of the time): each epoch ends with an
evaluation of the test set, a forward pass per image, which costs about a third of a training step's
image. On the whole training set that is a few percent; on a ``train_size`` of 1,000 it is most of
the run.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from bench.experiment.datasets import DATASETS
from bench.experiment.runconfig import RunConfig

# Images/s of one whole CE training step on one NVIDIA H200, bf16 + channels_last, eager
# (docs/performance.md: ResNet-110 36.4 ms and WRN-28-10 14.6 ms at batch 128; ResNet-50 on
# 224² images 56.1 ms at batch 256). Input time not included.
RECORDED: dict[tuple[str, str], tuple[float, str]] = {
    ("cifar", "resnet110"): (128 / 0.0364, "H200 step, docs/performance.md"),
    ("cifar", "wrn28_10"): (128 / 0.0146, "H200 step, docs/performance.md"),
    ("imagenet", "resnet50"): (256 / 0.0561, "H200 step, docs/performance.md"),
}


def family(dataset: str) -> str:
    """The family a dataset's runs are timed with (bench.experiment.datasets); an unknown name is its own."""
    return DATASETS[dataset].family if dataset in DATASETS else dataset


# Datasets without recorded steps of their own, timed as a family that is no faster: a 28×28 grey
# image costs a network at most what a 32×32 colour one does, so the estimate errs long.
BORROWED = {"fashion_mnist": "cifar"}


@dataclass
class Estimate:
    devices: int
    hours: float | None  # device-hours for this run (wall hours × devices); None when no throughput is known
    source: str


def measured_throughput(sweep_dir: Path) -> dict[tuple[str, str], float]:
    """Mean images/s per device, per (dataset family, arch), over the sweep's finished runs
    (result.json's images_per_s is the whole run's, over all its processes)."""
    seen: dict[tuple[str, str], list[float]] = {}
    for path in Path(sweep_dir).glob("*/result.json"):
        try:
            res = json.loads(path.read_text())
            ips = float(res["images_per_s"]) / int(res.get("world_size") or 1)
            key = (family(res["dataset"]), str(res["arch"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):  # not a result this can use
            continue
        if ips > 0:
            seen.setdefault(key, []).append(ips)
    return {k: sum(v) / len(v) for k, v in seen.items()}


# What the recorded steps ran: (batch, dataset), the dataset giving channels, image side and classes.
_STEPS = {"cifar": (128, "cifar100"), "imagenet": (256, "imagenet")}
MODELLED = "rough model of the recorded H200 steps (FLOPs, layer count)"


@functools.cache
def forward_cost(arch: str, fam: str) -> tuple[float, int]:
    """(multiply-adds of one image's forward pass, number of conv/linear/norm layers), counted by
    torch's FlopCounterMode on the meta device: shapes only, no memory, no arithmetic."""
    from torch.utils.flop_counter import FlopCounterMode

    from bench.models import create_model

    data = DATASETS[_STEPS[fam][1]]
    chans, side, classes = data.channels, data.image_size, data.classes
    with torch.device("meta"):
        model = create_model(arch, num_classes=classes, in_chans=chans).eval()  # BatchNorm takes one image
        x = torch.empty(1, chans, side, side)
    layers = sum(isinstance(m, (nn.Conv2d, nn.Linear, nn.modules.batchnorm._NormBase)) for m in model.modules())
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / 2, layers


def modelled_throughput(arch: str, fam: str) -> float | None:
    """Images/s for an architecture without a measurement, from the recorded ones of its family.

    CIFAR steps on the recorded GPU are largely bound by launching kernels, so a step's time is
    modelled as α·layers + β·FLOPs, with α and β solved from ResNet-110 and WRN-28-10 (which
    the model then reproduces exactly); ImageNet steps at 224² are bound by arithmetic, so the
    ResNet-50 throughput is scaled by FLOPs. A training step counts as three forward passes.
    Rough: expect tens of percent off, and only for budgeting.
    """
    try:
        if fam == "cifar":
            (t1, l1, f1), (t2, l2, f2) = ((128 / RECORDED[(fam, a)][0], *_layers_flops(a, fam))
                                          for a in ("resnet110", "wrn28_10"))
            det = l1 * f2 - l2 * f1
            alpha, beta = (t1 * f2 - t2 * f1) / det, (l1 * t2 - l2 * t1) / det
            layers, flops = _layers_flops(arch, fam)
            return 128 / (alpha * layers + beta * flops)
        if fam == "imagenet":
            ref_ips = RECORDED[(fam, "resnet50")][0]
            return ref_ips * forward_cost("resnet50", fam)[0] / forward_cost(arch, fam)[0]
    except Exception:  # noqa: BLE001 - an estimate must never stop `plan`: then there is none
        return None
    return None


def _layers_flops(arch: str, fam: str) -> tuple[int, float]:
    """(layers, training FLOPs of one recorded-size batch)."""
    macs, layers = forward_cost(arch, fam)
    return layers, 3 * 2 * macs * _STEPS[fam][0]


def estimate_run(cfg: RunConfig, devices: int, measured: dict[tuple[str, str], float]) -> Estimate:
    key = (family(cfg.dataset), cfg.arch)
    fam = BORROWED.get(key[0], key[0])
    note = f" (timed as {fam}, whose images are no smaller)" if fam != key[0] else ""
    if key in measured:
        ips, source = measured[key], "this sweep's finished runs"
    elif (fam, cfg.arch) in RECORDED:
        ips, source = RECORDED[(fam, cfg.arch)][0], RECORDED[(fam, cfg.arch)][1] + note
    elif (modelled := modelled_throughput(cfg.arch, fam)) is not None:
        ips, source = modelled, MODELLED + note
    else:
        return Estimate(devices, None, "no measurement yet")
    data = DATASETS[cfg.dataset]
    images = (cfg.train_size if cfg.train_size is not None else data.train_images) + data.test_images / 3
    # Per-device throughput and linear scaling: n devices take 1/n of the time, so the device-hours
    # do not depend on n.
    return Estimate(devices, cfg.epochs * images / ips / 3600, source)
