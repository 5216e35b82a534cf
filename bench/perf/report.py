"""``isda-bench perf report``: how long a reader waits for a report.

Writes a sweep's results as the training engine leaves them, for ``--runs`` of its planned runs (chosen
with a fixed seed; the others stay pending): config.yaml, a metrics.csv with the recipe's epochs and
result.json (:func:`bench.train.result.record`). Then it times ``isda-bench report SWEEP --format
FORMATS`` ``--repeat`` times, each in a fresh process so that its imports count, and gives the least and
the median CPU time (user + system; a shared machine only ever adds to it) and wall time against the
budget (``--budget``, CPU seconds), and where the time
goes: one more fresh process times each step the command takes (imports, reading the run folders, the
tables, the figures, the documents) with the same functions (:mod:`bench.perf.report_steps`).

Its files: ``OUT/perf_report_<sweep>.csv`` and ``.md``; the fabricated results under ``OUT/report-data/``
(rewritten every time).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common.files import atomic_write_json, make_dir
from bench.common.paths import path_text
from bench.perf.output import say, write_files
from bench.perf.plans import check_report
from bench.rundir.files import RESULT_FILE, write_config
from bench.rundir.metrics import write_metrics
from bench.rundir.state import RunState


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sweep", default="cifar_main", help="a shipped sweep's name or a sweep file")
    p.add_argument("--runs", default="57", help="how many of its planned runs have finished (the others are pending)")
    p.add_argument("--format", default="md,tex,html", help="the report's formats, as `isda-bench report --format`")
    p.add_argument("--repeat", default="3", help="timed reports, each in a fresh process")
    p.add_argument("--budget", default="3.5", help="CPU seconds a report may take")
    p.add_argument("--out", default="results/perf", type=path_text, help="output directory")


def _write_run(run_dir: Path, cfg: Any, rng: np.random.Generator) -> None:
    """A finished run as the engine leaves it: config.yaml, one metrics.csv row per epoch, result.json."""
    from bench.train.result import record

    level = {"cifar10": 5.0, "cifar100": 22.0}.get(cfg.dataset, 10.0) - (0.6 if "isda" in cfg.method else 0.0)
    epochs = np.arange(cfg.epochs)
    errors = level + 60.0 * np.exp(-epochs / (cfg.epochs / 12)) + rng.normal(0.0, 0.3, cfg.epochs)
    rows = [{"epoch": int(e), "lr": cfg.lr, "lambda": 0.0, "train_loss": 1.0 / (e + 1), "train_error": float(err) - 3.0,
             "test_loss": 0.5, "test_error": float(err), "epoch_time_s": 30.0} for e, err in zip(epochs, errors)]
    make_dir(run_dir, "--out")
    write_config(run_dir, cfg.record())
    write_metrics(run_dir, rows)
    result = record(cfg, rows, RunState.COMPLETED, wall_time_s=30.0 * cfg.epochs, images_per_s=4000.0,
                    device="fabricated", precision="bf16", num_params=1_000_000)
    atomic_write_json(run_dir / RESULT_FILE, result)  # as the trainer writes it


def fabricate(sweep: Any, results: Path, runs: int, seed: int = 0) -> None:
    """``runs`` of ``sweep``'s planned runs finished under ``results/<sweep>/``, the rest not started."""
    shutil.rmtree(results / sweep.name, ignore_errors=True)
    rng = np.random.default_rng(seed)
    for i in sorted(rng.choice(len(sweep.runs), size=runs, replace=False)):
        cfg = sweep.runs[int(i)]
        _write_run(sweep.run_dir(results, cfg), cfg, rng)


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time_command(argv: list[str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of ``argv`` run to its end in a fresh process; its output is dropped."""
    cpu, wall = _child_cpu(), time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return _child_cpu() - cpu, time.perf_counter() - wall


def run(ns: argparse.Namespace) -> int:
    plan = check_report(ns)
    data = plan.out / "report-data"
    results, reports = data / "results", data / "reports"
    say(f"writing {plan.runs} finished runs of {plan.sweep.name} ({len(plan.sweep.runs)} planned)")
    fabricate(plan.sweep, results, plan.runs)
    command = [sys.executable, "-m", "bench.cli", "report", plan.sweep_ref, "--results", str(results),
               "--reports", str(reports), "--format", plan.formats]
    timings = []
    for k in range(plan.repeat):
        say(f"report {k + 1} of {plan.repeat}")
        timings.append(_time_command(command))
    done = subprocess.run([sys.executable, "-m", "bench.perf.report_steps", plan.sweep_ref, str(results),
                           str(reports), plan.formats], capture_output=True, text=True, check=True)
    steps = json.loads(done.stdout.strip().splitlines()[-1])
    cpus, walls = [c for c, _ in timings], [w for _, w in timings]
    rows = [{"what": f"isda-bench report ({name} of {plan.repeat})", "cpu_s": round(pick(cpus), 3),
             "wall_s": round(pick(walls), 3), "of_budget": round(pick(cpus) / plan.budget, 3)}
            for name, pick in (("least", min), ("median", statistics.median))]
    rows += [{"what": f"step: {name}", "cpu_s": round(s, 3), "wall_s": "", "of_budget": round(s / plan.budget, 3)}
             for name, s in steps.items()]
    lines = ["| what | CPU s | wall s | × budget |", "| :--- | ---: | ---: | ---: |"]
    lines += [f"| {r['what']} | {r['cpu_s']:.2f} | {'' if r['wall_s'] == '' else format(r['wall_s'], '.2f')} "
              f"| {r['of_budget']:.2f} |" for r in rows]
    cpu = statistics.median(cpus)
    note = (f"`isda-bench report {plan.sweep_ref} --format {plan.formats}` on {plan.runs} finished runs of "
            f"{len(plan.sweep.runs)} planned, {plan.repeat} fresh processes: median {cpu:.2f} s CPU "
            f"({cpu / plan.budget:.2f} × the {plan.budget:g} s budget), least {min(cpus):.2f} s; "
            f"{os.cpu_count()} CPUs. Steps: one more fresh process, CPU seconds (the command's own module, start and "
            "argument checks are in its total only).")
    table = "\n".join(lines)
    write_files(plan.out, f"perf_report_{plan.sweep.name}", rows, ["what", "cpu_s", "wall_s", "of_budget"],
                f"{note}\n\n{table}\n")
    print(note)
    print(table)
    return 0
