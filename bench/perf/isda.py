"""``isda-bench perf isda``: the time and extra memory of one ISDA step (statistics update + loss
forward + backward) for this suite's ISDA, plain cross-entropy and the authors' formulation, over a
grid of shapes.

What is measured:
- time: median over ``--repeats`` steps after ``--warmup`` steps (:func:`bench.perf.timing.time_ms`).
- extra memory: bytes allocated during one step beyond what was allocated before it (inputs,
  parameters and the persistent statistics are excluded; the statistics' size is reported
  separately as ``state_mb``), measured during one extra, untimed step (:mod:`bench.perf.memory`).
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch

from bench.common.paths import path_text
from bench.perf.device import allocation_failed, available_bytes, device_label
from bench.perf.isda_steps import METHODS, Shape, estimate_bytes, make_step
from bench.perf.memory import cpu_peak_bytes, cuda_peak_bytes
from bench.perf.output import file_stem, write_files
from bench.perf.plans import IsdaPlan, check_isda
from bench.perf.timing import time_ms

CSV_FIELDS = [
    "device", "torch", "dtype", "N", "C", "A", "mode", "method", "status",
    "time_ms", "time_ms_min", "extra_mb", "state_mb", "repeats",
]  # fmt: skip


def add_args(p: argparse.ArgumentParser) -> None:
    # Values are validated by hand so that bad input raises ConfigError, not SystemExit.
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--dtype", default="float32", help="float32 | bfloat16 (autocast)")
    p.add_argument("--repeats", default="20", help="timed steps; the median is reported")
    p.add_argument("--warmup", default="3", help="untimed steps before timing")
    p.add_argument("--grid", default=None, help="full (the default) | quick; not with --shape")
    p.add_argument("--shape", action="append", default=None, metavar="N,C,A,MODE",
                   help="run only these shapes instead of the grid (repeatable)")  # fmt: skip
    p.add_argument("--out", default="results/perf", type=path_text, help="output directory")
    p.add_argument("--skip-reference-above", default="auto", metavar="GB",
                   help="skip the reference formulation where its estimated memory exceeds this "
                        "many GB (auto: the memory available now)")  # fmt: skip


def _run_one(method: str, shape: Shape, cfg: IsdaPlan) -> dict[str, object]:
    row: dict[str, object] = {"method": method, "status": "ok", "time_ms": "", "time_ms_min": "",
                              "extra_mb": "", "state_mb": "", "repeats": cfg.repeats}  # fmt: skip
    est = estimate_bytes(method, shape)
    limit = cfg.reference_limit_bytes if method == "reference" else float(available_bytes(cfg.device))
    if est > limit:
        row["status"] = f"skipped (est. {est / 1e9:.1f} GB)"
        return row
    try:
        step, state = make_step(method, shape, cfg.device, cfg.dtype)
        times = time_ms(step, cfg.device, cfg.repeats, cfg.warmup)
        if cfg.device.type == "cuda":
            extra = cuda_peak_bytes(step, cfg.device)
        else:
            extra = cpu_peak_bytes(step)
    except Exception as exc:  # noqa: BLE001 - re-raised unless it is an allocation failure
        if not allocation_failed(exc):
            raise
        row["status"] = f"out of memory (est. {est / 1e9:.1f} GB)"
        return row
    finally:
        if cfg.device.type == "cuda":
            torch.cuda.empty_cache()
    row.update(time_ms=round(statistics.median(times), 4), time_ms_min=round(min(times), 4),
               extra_mb=round(extra / 2**20, 3), state_mb=round(state / 2**20, 3))  # fmt: skip
    return row


def _ratio(a: object, b: object) -> str:
    if isinstance(a, float) and isinstance(b, float) and b > 0:
        return f"{a / b:.2f}×"
    return "–"


def _cell(row: dict[str, object], key: str) -> str:
    return str(row[key]) if row["status"] == "ok" else str(row["status"])


def markdown_table(rows: list[dict[str, object]]) -> str:
    """One line per shape: times, extra memory, and ISDA's ratios to CE and to the reference."""
    by_shape: dict[tuple, dict[str, dict[str, object]]] = {}
    for r in rows:
        by_shape.setdefault((r["N"], r["C"], r["A"], r["mode"]), {})[str(r["method"])] = r
    lines = [
        "| N | C | A | mode | CE ms | ISDA ms | reference ms | ISDA/CE time | ISDA/reference time "
        "| CE extra MB | ISDA extra MB | reference extra MB | ISDA/reference memory | ISDA state MB |",
        "|" + "---|" * 14,
    ]
    for (n, c, a, mode), m in by_shape.items():
        ce, ours, ref = m["ce"], m["isda"], m["reference"]
        lines.append(
            f"| {n} | {c} | {a} | {mode} | {_cell(ce, 'time_ms')} | {_cell(ours, 'time_ms')} "
            f"| {_cell(ref, 'time_ms')} | {_ratio(ours['time_ms'], ce['time_ms'])} "
            f"| {_ratio(ours['time_ms'], ref['time_ms'])} | {_cell(ce, 'extra_mb')} "
            f"| {_cell(ours, 'extra_mb')} | {_cell(ref, 'extra_mb')} "
            f"| {_ratio(ours['extra_mb'], ref['extra_mb'])} | {_cell(ours, 'state_mb')} |"
        )
    return "\n".join(lines)


def run(ns: argparse.Namespace) -> int:
    cfg = check_isda(ns)
    label = device_label(cfg.device)
    common = {"device": label, "torch": torch.__version__, "dtype": cfg.dtype}
    chatty = sys.stderr.isatty()
    rows = []
    for shape in cfg.shapes:
        for method in METHODS:
            if chatty:
                print(f"perf isda {shape} {method} ...", file=sys.stderr, flush=True)
            n, c, a, mode = shape
            row = {**common, "N": n, "C": c, "A": a, "mode": mode, **_run_one(method, shape, cfg)}
            rows.append(row)
    table = markdown_table(rows)
    measured = (
        "torch.cuda.max_memory_allocated"
        if cfg.device.type == "cuda"
        else "torch.profiler CPU allocator events"
    )
    header = (
        f"# ISDA step: update + loss forward + backward\n\n"
        f"device {label}, torch {torch.__version__}, {cfg.dtype}, median of {cfg.repeats} "
        f"after {cfg.warmup} warm-up steps. Extra MB: memory allocated during one step beyond "
        f"inputs, parameters and statistics ("
        f"{measured}). Skipped rows give the estimate that exceeded the memory limit.\n\n"
    )
    write_files(cfg.out, file_stem("isda", label, cfg.dtype), rows, CSV_FIELDS, header + table + "\n")
    print(table)
    return 0
