"""Every benchmark's options (``perf isda | isda-ops | step | loader | epoch | accuracy | report``) parsed and
checked, the output folder included, before anything is allocated, measured, trained or written.
A benchmark runs for minutes: an option it would refuse at the end must not cost the run."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench.common import bounds
from bench.common.errors import ConfigError
from bench.common.option_paths import Uses, check_option_paths
from bench.common.paths import output_folder
from bench.experiment.resolve import resolve
from bench.experiment.runconfig import COMPILE, RunConfig
from bench.perf.device import available_bytes, resolve_device
from bench.perf.isda_steps import DTYPES, GRID, GRIDS, MODES, OPS_SHAPES, Shape
from bench.perf.options import SHAPES, parse_choice, parse_list

STEP_METHODS = ("ce", "isda", "reference")
# The options that only some paths of a benchmark use (bench.common.option_paths).
OPTION_PATHS: Mapping[str, Mapping[str, Uses]] = {
    "step": {"cov_mode": Uses({"isda": (True,)}, "with --methods holding isda or reference (ce has no covariance)")},
    "isda": {"grid": Uses({"shape": (False,)}, "without --shape (the shapes given replace the grid)")},
}


def _out(ns: argparse.Namespace) -> Path:
    return output_folder(Path(ns.out), "--out")


# --------------------------------------------------------------------------- isda, isda-ops
def _parse_shape(value: str) -> Shape:
    allowed = "N,C,A,MODE with positive integers and MODE full or diagonal, e.g. 128,100,640,full"
    parts = value.split(",")
    if len(parts) != 4 or parts[3] not in MODES or not all(p.isdigit() and int(p) > 0 for p in parts[:3]):
        raise ConfigError("--shape", value, allowed)
    n, c, a = (int(bounds.check(name, f"--shape {what}", int(p), "an integer"))
               for name, what, p in zip(("batch_size", "classes", "features"), "NCA", parts))
    return n, c, a, parts[3]


def _shapes(values: list[str]) -> list[Shape]:
    shapes = [_parse_shape(v) for v in values]
    for i, shape in enumerate(shapes):
        if shape in shapes[:i]:
            raise ConfigError("--shape", values[i], "each shape once (it is given twice)")
    return shapes


@dataclass(frozen=True)
class IsdaPlan:
    device: torch.device
    dtype: str
    repeats: int
    warmup: int
    shapes: list[Shape]
    out: Path
    reference_limit_bytes: float


def check_isda(ns: argparse.Namespace) -> IsdaPlan:
    device = resolve_device(ns.device)
    dtype = parse_choice("--dtype", ns.dtype, DTYPES)
    check_option_paths(OPTION_PATHS["isda"], ns, {"shape": bool(ns.shape)})
    grid = parse_choice("--grid", ns.grid or "full", GRIDS)
    shapes = _shapes(ns.shape) if ns.shape else GRID[grid]
    if ns.skip_reference_above == "auto":
        limit = float(available_bytes(device))
    else:
        allowed = "auto or a positive number of GB"
        try:
            limit = float(ns.skip_reference_above) * 1e9
        except ValueError:
            raise ConfigError("--skip-reference-above", ns.skip_reference_above, allowed) from None
        if not limit > 0:
            raise ConfigError("--skip-reference-above", ns.skip_reference_above, allowed)
    return IsdaPlan(
        device=device,
        dtype=dtype,
        repeats=bounds.parse_int("--repeats", ns.repeats, "repeats"),
        warmup=bounds.parse_int("--warmup", ns.warmup, "warmup"),
        shapes=shapes,
        out=_out(ns),
        reference_limit_bytes=limit,
    )


@dataclass(frozen=True)
class OpsPlan:
    dtype: str
    shapes: list[Shape]
    repeats: int
    out: Path


def check_ops(ns: argparse.Namespace) -> OpsPlan:
    dtype = parse_choice("--dtype", ns.dtype, DTYPES)
    shapes = _shapes(ns.shape) if ns.shape else OPS_SHAPES
    repeats = bounds.parse_int("--repeats", ns.repeats, "op_repeats")
    return OpsPlan(dtype, shapes, repeats, _out(ns))


# --------------------------------------------------------------------------- step, loader, epoch
def _arch(ns: argparse.Namespace) -> None:
    parse_choice("--dataset", ns.dataset, tuple(SHAPES))
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


def _fits(key: str, value: int, nbytes: int, device: torch.device) -> None:
    """Refuse a size whose data alone would not fit in the device's free memory (the bounds allow
    ImageNet-sized batches that a small machine cannot hold): one line, not an allocation failure."""
    free = available_bytes(device)
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
    device = resolve_device(ns.device)
    dtype = parse_choice("--dtype", ns.dtype, ("auto", "float32", "bfloat16"))
    if dtype == "auto":
        dtype = "bfloat16" if device.type == "cuda" else "float32"
    cl = parse_choice("--channels-last", ns.channels_last, ("auto", "on", "off"))
    cov_mode = parse_choice("--cov-mode", ns.cov_mode or ("diagonal" if ns.dataset == "imagenet" else "full"),
                            ("full", "diagonal"))
    methods = [parse_choice("--methods", m, STEP_METHODS) for m in parse_list("--methods", ns.methods,
                                                                                ", ".join(STEP_METHODS))]
    check_option_paths(OPTION_PATHS["step"], ns, {"isda": methods != ["ce"]})
    batch = _batch(ns)
    classes, chans, size = SHAPES[ns.dataset]
    _fits("--batch", batch, 4 * batch * chans * size * size, device)  # the float32 input
    return StepPlan(device=device, dtype=dtype, channels_last=cl == "on" or (cl == "auto" and device.type == "cuda"),
                    cov_mode=cov_mode, methods=methods,
                    compile_mode=parse_choice("--compile", ns.compile, COMPILE),
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
    device = resolve_device(ns.device)
    images, steps = bounds.parse_int("--images", ns.images, "images"), bounds.parse_int("--steps", ns.steps, "steps")
    workers = [bounds.parse_int("--workers", w, "workers") for w in parse_list("--workers", ns.workers,
                                                                                "worker counts")]
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
    parse_choice("--dataset", ns.dataset, ("cifar10", "cifar100"))  # the reference pipeline is CIFAR's
    device, batch = resolve_device(ns.device), _batch(ns)
    _fits("--batch", batch, 4 * 3 * 32 * 32 * batch, device)
    return EpochPlan(device=device, steps=bounds.parse_int("--steps", ns.steps, "steps"),
                     workers=bounds.parse_int("--workers", ns.workers, "workers"),
                     compile_mode=parse_choice("--compile", ns.compile, COMPILE), batch=batch, out=_out(ns))


# --------------------------------------------------------------------------- accuracy
def _seeds(value: str) -> list[int]:
    allowed = "two or more comma-separated integers >= 0, each once"
    items = parse_list("--seeds", value, "seeds")
    try:
        seeds = sorted(int(s) for s in items)
    except ValueError:
        raise ConfigError("--seeds", value, allowed) from None
    if len(seeds) < 2 or len(set(seeds)) < len(seeds):  # "0,00" repeats a seed in other digits
        raise ConfigError("--seeds", value, allowed)
    for seed in seeds:
        bounds.check("seed", "--seeds", seed, "integers")
    return seeds


@dataclass(frozen=True)
class AccuracyPlan:
    device: torch.device
    seeds: list[int]
    compile_mode: str
    epochs: int
    runs: list[tuple[str, RunConfig, Path]]  # (setting, config, run folder), in training order


def check_accuracy(ns: argparse.Namespace) -> AccuracyPlan:
    """Every run the benchmark will train, resolved, and its folder and data checked: a bad seed or
    folder is refused before the first run trains, not after it."""
    from bench.data.sources import check_source
    from bench.rundir.owner import check_run_dir

    device = resolve_device(ns.device)
    seeds = _seeds(ns.seeds)
    compile_mode = parse_choice("--compile", ns.compile, COMPILE)
    spec = {"dataset": ns.dataset, "arch": ns.arch, "method": ns.method, "device": device.type,
            "data_root": ns.data_root, "tracking": "disabled", "sweep": "perf-accuracy"}
    if ns.epochs is not None:
        spec["epochs"] = bounds.parse_int("--epochs", ns.epochs, "epochs")
    if ns.train_size is not None:
        spec["train_size"] = bounds.parse_int("--train-size", ns.train_size, "train_size")
    base = resolve(spec)
    settings = {"plain": {"precision": "fp32", "fast_loader": False, "channels_last": False, "compile": "off"},
                "fast": {"precision": "auto", "fast_loader": True, "channels_last": True, "compile": compile_mode}}
    # How a run computes (device, compile, loader) is not in its id: it goes into the folder name, so
    # that a fast run compiled, or on another device, is never mistaken for an earlier one.
    folders = {"plain": f"plain-{device.type}", "fast": f"fast-{device.type}-compile-{compile_mode}"}
    out = _out(ns)
    runs = []
    for seed in seeds:
        for name, fields in settings.items():
            cfg = resolve({**base.to_dict(), **fields, "seed": seed})
            runs.append((name, cfg, check_run_dir(out / "accuracy" / folders[name] / cfg.run_id, cfg.run_id, "--out")))
    check_source(base.dataset, base.data_root, base.download)
    return AccuracyPlan(device, seeds, compile_mode, base.epochs, runs)


# --------------------------------------------------------------------------- report
@dataclass(frozen=True)
class ReportPlan:
    sweep: Any  # bench.sweep.spec.Sweep
    sweep_ref: str
    runs: int
    formats: str
    repeat: int
    budget: float
    out: Path


def check_report(ns: argparse.Namespace) -> ReportPlan:
    """The sweep found and read, ``--runs`` no more than it plans, the formats known, the folder writable."""
    from bench.report.write import parse_formats
    from bench.sweep.spec import load_sweep

    sweep = load_sweep(ns.sweep)
    runs = bounds.parse_int("--runs", ns.runs, "runs")
    if runs > len(sweep.runs):
        raise ConfigError("--runs", ns.runs, f"at most the {len(sweep.runs)} runs sweep {sweep.name} plans")
    formats = ",".join(parse_formats(ns.format))
    repeat = bounds.parse_int("--repeat", ns.repeat, "repeats")
    try:
        budget = float(ns.budget)
    except ValueError:
        raise ConfigError("--budget", ns.budget, bounds.BOUNDS["budget_s"].allowed("a number of seconds")) from None
    bounds.check("budget_s", "--budget", budget, "a number of seconds")
    return ReportPlan(sweep, str(ns.sweep), runs, formats, repeat, budget, _out(ns))
