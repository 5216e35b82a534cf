"""``isda-bench perf isda-ops``: the ATen ops one ISDA step dispatches (update + forward + backward, on
the CPU) for cross-entropy, this suite's ISDA and the authors' formulation. On a launch-bound GPU
host each op costs dispatch and launch time whatever its size, so this count, not FLOPs, sets ISDA's
overhead at small shapes; unlike a timing it is the same on every run."""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

import torch

from bench.common.paths import path_text
from bench.perf.device import available_bytes
from bench.perf.isda_steps import METHODS, OPS_SHAPES, estimate_bytes, make_phased_step
from bench.perf.output import file_stem, write_files
from bench.perf.plans import check_ops
from bench.perf.timing import time_ms

OPS_FIELDS = ["torch", "dtype", "N", "C", "A", "mode", "method", "status", "ops", "ops_forward", "ops_backward",
              "kernels", "views", "time_ms", "repeats"]  # fmt: skip


def count_step_ops(step: Callable[[], None]) -> dict[str, int]:
    """ATen ops dispatched by one call of ``step`` (forward, including ISDA's statistics update,
    and backward), counted at the Python dispatch level, so every op that reaches a backend
    kernel or a view is seen once, whatever the tensor sizes. ``views``: ops that only make a
    view (no kernel on a GPU); ``kernels``: the rest. Deterministic, unlike a timing.

    ``step`` must split into the two phases itself: it is called as ``step(phase)`` with a
    callback ``phase()`` that it calls between the forward and ``loss.backward()``.
    """
    from torch.utils._python_dispatch import TorchDispatchMode

    class Counter(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.ops = self.views = self.at_phase = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            self.ops += 1
            self.views += bool(func.is_view)
            return func(*args, **(kwargs or {}))

    counter = Counter()

    def phase() -> None:
        counter.at_phase = counter.ops

    with counter:
        step(phase)  # type: ignore[call-arg]
    return {"ops": counter.ops, "ops_forward": counter.at_phase, "ops_backward": counter.ops - counter.at_phase,
            "kernels": counter.ops - counter.views, "views": counter.views}  # fmt: skip


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dtype", default="float32", help="float32 | bfloat16 (CPU autocast)")
    p.add_argument("--shape", action="append", default=None, metavar="N,C,A,MODE",
                   help=f"shapes to count (repeatable; default {' '.join(','.join(map(str, s)) for s in OPS_SHAPES)})")
    p.add_argument("--repeats", default="0", help="also time this many CPU steps (median; 0: count only)")
    p.add_argument("--out", default="results/perf", type=path_text, help="output directory")


def run(ns: argparse.Namespace) -> int:
    """Shapes whose estimated memory exceeds what is available are skipped (the reference's op count
    does not depend on the shape: count it at a smaller one)."""
    plan = check_ops(ns)  # nothing is measured or written before every option is checked
    dtype, repeats = plan.dtype, plan.repeats
    rows = []
    for shape in plan.shapes:
        for method in METHODS:
            n, c, a, mode = shape
            row: dict[str, object] = {"torch": torch.__version__, "dtype": dtype, "N": n, "C": c, "A": a,
                                      "mode": mode, "method": method, "status": "ok", "time_ms": "",
                                      "repeats": repeats}  # fmt: skip
            est = estimate_bytes(method, shape)
            if est > available_bytes(torch.device("cpu")):
                row["status"] = f"skipped (est. {est / 1e9:.1f} GB)"
                rows.append(row)
                continue
            step = make_phased_step(method, shape, dtype)
            step()  # warm-up: lazily created state, first-call paths
            row.update(count_step_ops(step))
            if repeats:
                row["time_ms"] = round(statistics.median(time_ms(step, torch.device("cpu"), repeats, 3)), 4)
            rows.append(row)
    lines = ["| N | C | A | mode | method | ops | forward | backward | kernels | views | CPU ms |",
             "|" + "---|" * 11]  # fmt: skip
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"| {r['N']} | {r['C']} | {r['A']} | {r['mode']} | {r['method']} | {r['status']} |||||")
            continue
        lines.append(f"| {r['N']} | {r['C']} | {r['A']} | {r['mode']} | {r['method']} | {r['ops']} "
                     f"| {r['ops_forward']} | {r['ops_backward']} | {r['kernels']} | {r['views']} "
                     f"| {r['time_ms'] if r['time_ms'] != '' else '–'} |")  # fmt: skip
    table = "\n".join(lines)
    header = (f"# ATen ops per step: update + loss forward + backward\n\ncpu, torch {torch.__version__}, {dtype}; "
              "counted with a TorchDispatchMode (views: ops without a GPU kernel).\n\n")  # fmt: skip
    write_files(plan.out, file_stem("isda_ops", "cpu", dtype), rows, OPS_FIELDS, header + table + "\n",
                ignore_extra=True)
    print(table)
    return 0
