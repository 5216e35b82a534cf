"""``isda-bench perf step``: one training step (forward, loss, backward, SGD) of a real architecture on
synthetic inputs, for cross-entropy, this suite's ISDA and the transcription of the authors' ISDA.

Steps are timed back to back, as in training (the CPU queues work while the GPU runs), in blocks of
``--steps``; the median block's time per step is reported, with the method's own peak memory: what it
holds between steps (parameters, gradients, optimizer state, statistics; ``state_mb``) plus the most
one step allocates beyond that. Models of methods measured earlier in the process are not counted.
Under CUDA graphs a replay allocates nothing, so the graph's private memory pool is not counted.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench.perf.device import allocation_failed, device_label
from bench.perf.memory import state_bytes, step_peak_bytes
from bench.perf.options import SHAPES, add_common_args, add_compile_arg
from bench.perf.output import compile_flag, compile_suffix, say, skips_note, write
from bench.perf.plans import STEP_METHODS, check_step
from bench.perf.timing import time_blocks
from bench.perf.training_step import model_and_loss, train_step
from bench.train.fastpath import CUDA_GRAPH_MODES, cuda_settings, cudagraph_skips


def add_args(p: argparse.ArgumentParser) -> None:
    add_common_args(p)
    p.add_argument("--dtype", default="auto", help="auto (bfloat16 on CUDA) | float32 | bfloat16 (autocast; "
                   "statistics stay float32)")
    p.add_argument("--channels-last", default="auto", help="auto (on for CUDA) | on | off")
    p.add_argument("--cov-mode", default=None, help="full | diagonal (default: diagonal for imagenet)")
    p.add_argument("--methods", default=",".join(STEP_METHODS))
    p.add_argument("--steps", default="10", help="steps per timed block")
    p.add_argument("--blocks", default="5", help="timed blocks; the median is reported")
    p.add_argument("--warmup", default="5")
    add_compile_arg(p)


def _mb(row: dict) -> str:
    return f"{row['peak_mb']} ({row['state_mb']})" if row["peak_mb"] != "" else "–"


def run(ns: argparse.Namespace) -> int:
    p = check_step(ns)  # every option and --out: nothing is allocated, measured or written before
    device, dtype, channels_last, cov_mode = p.device, p.dtype, p.channels_last, p.cov_mode
    methods, compile_mode, steps, blocks, warmup, n = p.methods, p.compile_mode, p.steps, p.blocks, p.warmup, p.batch
    cuda_settings(device)  # training's, so that the benchmark measures what training does
    classes, chans, size = SHAPES[ns.dataset]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, chans, size, size, generator=g).to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (n,), generator=g).to(device)
    rows, steps_by_method = [], {}
    for method in methods:
        row = {"arch": ns.arch, "dataset": ns.dataset, "N": n, "cov_mode": cov_mode, "method": method,
               "dtype": dtype, "channels_last": channels_last,
               "compile": "off" if method == "reference" else compile_mode,
               "ms_per_step": "", "peak_mb": "", "state_mb": "", "first_3_steps_s": "", "cudagraph_skips": "",
               "status": "ok"}
        rows.append(row)
        say(f"perf step {ns.arch} {ns.dataset} {method} ...")
        skips = cudagraph_skips()
        try:
            model, crit, opt = model_and_loss(ns.arch, ns.dataset, method, device, channels_last, cov_mode)
            one = train_step(model, crit, method, opt, dtype == "bfloat16", 0.5, compile_mode)

            def step(one=one) -> None:
                one(x, y)

            t0 = time.perf_counter()
            time_blocks(step, device, 3, 1, 0)  # compiles (graphs for CUDA graphs are recorded on later calls)
            row["first_3_steps_s"] = round(time.perf_counter() - t0, 2)  # with compilation, if any
            state, extra = state_bytes(model, crit, opt), step_peak_bytes(step, device)
            row.update(state_mb=round(state / 2**20, 1), peak_mb=round((state + extra) / 2**20, 1))
            steps_by_method[method] = step
        except Exception as exc:  # noqa: BLE001 - re-raised unless it is an allocation failure
            if not allocation_failed(exc):
                raise
            row["status"] = "out of memory"
        if row["compile"] in CUDA_GRAPH_MODES:  # graphs are compiled and recorded in those first steps
            row["cudagraph_skips"] = cudagraph_skips() - skips
        if device.type == "cuda":
            torch.cuda.empty_cache()
    # Interleave the methods block by block, so drift (clocks, other load) hits all alike.
    times: dict[str, list[float]] = {m: [] for m in steps_by_method}
    for step in steps_by_method.values():
        time_blocks(step, device, 1, 1, warmup)
    skips = cudagraph_skips()
    for _ in range(blocks):
        for m, step in steps_by_method.items():
            times[m].append(time_blocks(step, device, steps, 1, 0))
    late_skips = cudagraph_skips() - skips
    for row in rows:
        if row["method"] in times:
            row["ms_per_step"] = round(statistics.median(times[row["method"]]), 3)
    base = next((r for r in rows if r["method"] == "ce" and r["status"] == "ok"), None)
    lines = ["| arch | dataset | N | cov | method | ms/step | vs CE | peak MB (state MB) | peak vs CE |",
             "|" + "---|" * 9]
    for r in rows:
        vs = f"{(r['ms_per_step'] / base['ms_per_step'] - 1) * 100:+.1f} %" if base and r["status"] == "ok" else "–"
        pk = (f"{(r['peak_mb'] / base['peak_mb'] - 1) * 100:+.1f} %"
              if base and r["status"] == "ok" and r["peak_mb"] != "" else "–")
        lines.append(f"| {r['arch']} | {r['dataset']} | {r['N']} | {r['cov_mode']} | {r['method']} "
                     f"| {r['ms_per_step'] or r['status']} | {vs} | {_mb(r)} | {pk} |")
    note = (f"# Training step: {ns.arch} on {ns.dataset}-shaped synthetic input\n\n{device_label(device)}, "
            f"torch {torch.__version__}, {dtype}, channels_last={channels_last}; median over {blocks} blocks of "
            f"{steps} back-to-back steps after {warmup} warm-up steps (`isda-bench perf step --arch {ns.arch} "
            f"--dataset {ns.dataset}{compile_flag(compile_mode)}`).")
    if compile_mode != "off":
        note += f" CE and ISDA compiled with torch.compile mode {compile_mode}; the reference runs eagerly."
    note += skips_note({r["method"]: r["cudagraph_skips"] for r in rows}, late_skips)
    write(ns, f"step_{ns.arch}_{ns.dataset}{compile_suffix(compile_mode)}", dtype, rows, "\n".join(lines), note)
    return 0
