"""``isda-bench perf accuracy``: does the fast path change what a run learns?

Trains the same experiment for several seeds twice, through ``bench.train.trainer.run``:

- ``plain``: float32, the data kept on the host and augmented there (``fast_loader: false``),
  NCHW, eager;
- ``fast``: what a run uses by default (bf16 autocast on CUDA, the data resident on the device and
  augmented there, channels_last), compiled if ``--compile`` says so;

and compares the final test errors across seeds: the gap fast − plain with Welch's t interval,
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

import torch

from bench.common.paths import path_text
from bench.experiment.runconfig import COMPILE
from bench.perf.device import device_label
from bench.perf.output import compile_flag, compile_suffix, write
from bench.perf.plans import check_accuracy


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="digits")
    p.add_argument("--arch", default="resnet32")
    p.add_argument("--method", default="isda")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds, at least two")
    p.add_argument("--epochs", default=None, help="default: the recipe's")
    p.add_argument("--train-size", default=None, help="train on a stratified subset of this many images "
                   "(default: the whole training set; the test set is always whole)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--compile", default="off", help="torch.compile mode of the fast setting: " + " | ".join(COMPILE))
    p.add_argument("--data-root", default=None, type=path_text)
    p.add_argument("--out", default="results/perf", type=path_text, help="output directory")


def run(ns: argparse.Namespace) -> int:
    from bench.results import stats
    from bench.train import trainer

    plan = check_accuracy(ns)
    device, seeds, compile_mode = plan.device, plan.seeds, plan.compile_mode
    rows: list[dict] = []
    errors: dict[str, list] = {"plain": [], "fast": []}  # final test errors, None where a run has none
    for name, cfg, run_dir in plan.runs:
        res = trainer.run(cfg, run_dir)  # bars on a terminal only
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
            f"{plan.epochs} epochs, seeds {','.join(map(str, seeds))}\n\n{device_label(device)}, torch "
            f"{torch.__version__} (`isda-bench perf accuracy --dataset {ns.dataset} --arch {ns.arch} --method "
            f"{ns.method} --seeds {','.join(map(str, seeds))} --epochs {plan.epochs}{size_flag}"
            f"{compile_flag(compile_mode)}`).")
    name = f"accuracy_{ns.arch}_{ns.dataset}" + (f"_n{train_size}" if train_size is not None else "")
    write(ns, name + compile_suffix(compile_mode), "mixed", rows, "\n".join(lines), note)
    return 0
