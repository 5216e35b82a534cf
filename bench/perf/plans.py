"""The options of the training benchmarks (``perf step | loader | epoch``), every one of them parsed
and checked, the output folder included, before anything is allocated, measured or written.
A benchmark runs for minutes: an option it would refuse at the end must not cost the run."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.common import bounds
from bench.common.errors import ConfigError
from bench.common.paths import output_folder
from bench.experiment.datasets import DATASETS
from bench.experiment.runconfig import COMPILE
from bench.perf.isda_bench import _parse_choice, _resolve_device

SHAPES = {n: (d.classes, d.channels, d.image_size) for n, d in DATASETS.items() if n != "synthetic"}
STEP_METHODS = ("ce", "isda", "reference")


def _arch(ns: argparse.Namespace) -> None:
    _parse_choice("--dataset", ns.dataset, tuple(SHAPES))
    from bench.models import ARCHS

    if ns.arch not in ARCHS:
        raise ConfigError("--arch", ns.arch, sorted(ARCHS))


def _batch(ns: argparse.Namespace) -> int:
    if ns.batch is not None:
        return bounds.parse_int("--batch", ns.batch, "batch_size")
    if ns.dataset == "imagenet":
        return 256
    from bench.experiment.recipes import recipe_for

    return recipe_for(ns.dataset, getattr(ns, "arch", "resnet110")).batch_size


def _out(ns: argparse.Namespace) -> Path:
    return output_folder(Path(ns.out), "--out")


def _fits(key: str, value: int, nbytes: int, device: torch.device) -> None:
    """Refuse a size whose data alone would not fit in the device's free memory (the bounds allow
    ImageNet-sized batches that a small machine cannot hold): one line, not an allocation failure."""
    from bench.perf.isda_bench import _available_bytes

    free = _available_bytes(device)
    if nbytes > free:
        raise ConfigError(key, value, f"a size whose data fits in the memory free on {device.type} now "
                          f"({nbytes / 1e9:.1f} GB needed, {free / 1e9:.1f} GB free)")


@dataclass(frozen=True)
class StepPlan:
    device: torch.device
    dtype: str  # float32 | bfloat16
    channels_last: bool
    cov_mode: str
    methods: list[str]
    compile_mode: str
    steps: int
    blocks: int
    warmup: int
    batch: int
    out: Path


def check_step(ns: argparse.Namespace) -> StepPlan:
    _arch(ns)
    device = _resolve_device(ns.device)
    dtype = _parse_choice("--dtype", ns.dtype, ("auto", "float32", "bfloat16"))
    if dtype == "auto":
        dtype = "bfloat16" if device.type == "cuda" else "float32"
    cl = _parse_choice("--channels-last", ns.channels_last, ("auto", "on", "off"))
    cov_mode = _parse_choice("--cov-mode", ns.cov_mode or ("diagonal" if ns.dataset == "imagenet" else "full"),
                             ("full", "diagonal"))
    methods = [_parse_choice("--methods", m.strip(), STEP_METHODS) for m in ns.methods.split(",") if m.strip()]
    if not methods:
        raise ConfigError("--methods", ns.methods, "a comma-separated list of " + ", ".join(STEP_METHODS))
    batch = _batch(ns)
    classes, chans, size = SHAPES[ns.dataset]
    _fits("--batch", batch, 4 * batch * chans * size * size, device)  # the float32 input
    return StepPlan(device=device, dtype=dtype, channels_last=cl == "on" or (cl == "auto" and device.type == "cuda"),
                    cov_mode=cov_mode, methods=list(dict.fromkeys(methods)),  # each once
                    compile_mode=_parse_choice("--compile", ns.compile, COMPILE),
                    steps=bounds.parse_int("--steps", ns.steps, "steps"),
                    blocks=bounds.parse_int("--blocks", ns.blocks, "blocks"),
                    warmup=bounds.parse_int("--warmup", ns.warmup, "warmup"), batch=batch, out=_out(ns))


@dataclass(frozen=True)
class LoaderPlan:
    device: torch.device
    images: int
    steps: int
    workers: list[int]
    batch: int
    out: Path


def check_loader(ns: argparse.Namespace) -> LoaderPlan:
    device = _resolve_device(ns.device)
    images, steps = bounds.parse_int("--images", ns.images, "images"), bounds.parse_int("--steps", ns.steps, "steps")
    workers = [bounds.parse_int("--workers", w, "workers") for w in ns.workers.split(",") if w.strip()]
    batch = bounds.parse_int("--batch", ns.batch, "batch_size") if ns.batch else 128
    if batch > images:  # both pipelines yield full batches only: there would be none
        raise ConfigError("--batch", batch, f"at most --images ({images})")
    _fits("--images", images, 2 * 3 * 32 * 32 * images, torch.device("cpu"))  # uint8, and the reference's copy
    return LoaderPlan(device, images, steps, workers, batch, _out(ns))


@dataclass(frozen=True)
class EpochPlan:
    device: torch.device
    steps: int
    workers: int
    compile_mode: str
    batch: int
    out: Path


def check_epoch(ns: argparse.Namespace) -> EpochPlan:
    _arch(ns)
    _parse_choice("--dataset", ns.dataset, ("cifar10", "cifar100"))  # the reference pipeline is CIFAR's
    device, batch = _resolve_device(ns.device), _batch(ns)
    _fits("--batch", batch, 4 * 3 * 32 * 32 * batch, device)
    return EpochPlan(device=device, steps=bounds.parse_int("--steps", ns.steps, "steps"),
                     workers=bounds.parse_int("--workers", ns.workers, "workers"),
                     compile_mode=_parse_choice("--compile", ns.compile, COMPILE), batch=batch, out=_out(ns))
