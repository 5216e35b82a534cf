"""Does the fast path change what a run learns? ``isda-bench perf accuracy``.

Trains the same experiment for several seeds twice, through ``bench.train.trainer.run``:

- ``plain``: float32, the data kept on the host and augmented there (``fast_loader: false``),
  NCHW, eager;
- ``fast``: what a run uses by default (bf16 autocast on CUDA, the data resident on the device and
  augmented there, channels_last), compiled if ``--compile`` says so;

and compares the final test errors across seeds: the gap fast − plain with a bootstrap interval,
Welch's p and P(fast better), and whether the interval contains 0 (no difference beyond seed
noise). On the CPU both settings compute the same thing (float32, the data is always resident
there), so the gap is exactly 0: a check of the harness, not of the GPU path.

Runs land in ``OUT/accuracy/<setting>-<device>[-compile-<mode>]/<run_id>/``; a finished run is not
trained again, so an interrupted benchmark resumes. A run that diverges or fails is listed with
its status; fewer than two finished runs in a setting leave nothing to compare, and the benchmark
says so.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.common import bounds
from bench.common.errors import ConfigError
from bench.common.paths import output_folder
from bench.experiment.resolve import resolve
from bench.experiment.runconfig import COMPILE, RunConfig
from bench.perf.isda_bench import _device_label, _parse_choice, _resolve_device


def _add_accuracy_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="digits")
    p.add_argument("--arch", default="resnet32")
    p.add_argument("--method", default="isda")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds, at least two")
    p.add_argument("--epochs", default=None, help="default: the recipe's")
    p.add_argument("--train-size", default=None, help="train on a stratified subset of this many images "
                   "(default: the whole training set; the test set is always whole)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--compile", default="off", help="torch.compile mode of the fast setting: " + " | ".join(COMPILE))
    p.add_argument("--data-root", default=None)
    p.add_argument("--out", default="results/perf", help="output directory")


def _seeds(value: str) -> list[int]:
    try:
        seeds = sorted({int(s) for s in value.split(",") if s.strip()})
    except ValueError:
        seeds = []
    if len(seeds) < 2:
        raise ConfigError("--seeds", value, "two or more comma-separated integers >= 0")
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

    device = _resolve_device(ns.device)
    seeds = _seeds(ns.seeds)
    compile_mode = _parse_choice("--compile", ns.compile, COMPILE)
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
    out = output_folder(Path(ns.out), "--out")
    runs = []
    for seed in seeds:
        for name, fields in settings.items():
            cfg = resolve({**base.to_dict(), **fields, "seed": seed})
            runs.append((name, cfg, check_run_dir(out / "accuracy" / folders[name] / cfg.run_id, cfg.run_id, "--out")))
    check_source(base.dataset, base.data_root, base.download)
    return AccuracyPlan(device, seeds, compile_mode, base.epochs, runs)


def run_accuracy(ns: argparse.Namespace) -> int:
    from bench.perf.training import _compile_flag, _compile_suffix, _write
    from bench.results import stats
    from bench.train.trainer import run

    plan = check_accuracy(ns)
    device, seeds, compile_mode = plan.device, plan.seeds, plan.compile_mode
    rows, errors = [], {"plain": [], "fast": []}
    for name, cfg, run_dir in plan.runs:
        res = run(cfg, run_dir)  # bars on a terminal only
        errors[name].append(res["final_test_error"])
        rows.append({"setting": name, "seed": cfg.seed, "status": res["status"], "precision": res["precision"],
                     "compile": cfg.compile, "final_test_error": res["final_test_error"],
                     "images_per_s": round(res["images_per_s"] or 0.0, 1), "run_id": cfg.run_id})
    done = {name: len(stats.clean(v)) for name, v in errors.items()}
    if min(done.values()) < 2:
        print(f"perf accuracy: too few runs with a final test error to compare ({done}); their result.json "
              f"files under {ns.out}/accuracy say why", file=sys.stderr)
        return 1
    cmp = stats.compare(errors["fast"], errors["plain"])
    lines = ["| setting | runs with an error | final test error % (mean ± sd) | 95 % CI |", "|---|---|---|---|"]
    for name, summary in (("plain", cmp.control), ("fast", cmp.treatment)):
        lines.append(f"| {name} | {summary.n} | {summary.mean:.2f} ± {summary.std:.2f} "
                     f"| [{summary.ci_low:.2f}, {summary.ci_high:.2f}] |")
    within = cmp.gap_ci_low <= 0.0 <= cmp.gap_ci_high
    verdict = "within seed noise" if within else "a difference beyond seed noise"
    lines.append("")
    lines.append(f"Gap fast − plain: {cmp.gap:+.2f} points, 95 % CI [{cmp.gap_ci_low:+.2f}, {cmp.gap_ci_high:+.2f}]"
                 f", Welch p = {cmp.p_value:.2f}, P(fast better) = {cmp.p_improvement:.2f}: {verdict}.")
    train_size = plan.runs[0][1].train_size
    subset = f", {train_size} training images" if train_size is not None else ""
    size_flag = f" --train-size {train_size}" if train_size is not None else ""
    note = (f"# Final accuracy, plain against fast path: {ns.arch} on {ns.dataset}{subset}, method {ns.method}, "
            f"{plan.epochs} epochs, seeds {','.join(map(str, seeds))}\n\n{_device_label(device)}, torch "
            f"{torch.__version__} (`isda-bench perf accuracy --dataset {ns.dataset} --arch {ns.arch} --method "
            f"{ns.method} --seeds {','.join(map(str, seeds))} --epochs {plan.epochs}{size_flag}"
            f"{_compile_flag(compile_mode)}`).")
    name = f"accuracy_{ns.arch}_{ns.dataset}" + (f"_n{train_size}" if train_size is not None else "")
    _write(ns, name + _compile_suffix(compile_mode), "mixed", rows, "\n".join(lines), note)
    return 0


SUBCOMMANDS = {"accuracy": (_add_accuracy_args, run_accuracy)}
