"""Micro-benchmarks: ``isda-bench perf <subcommand> ...`` calls ``main([subcommand, ...])``.

``isda`` times one ISDA step (statistics update + loss forward + backward) for bench.methods.isda,
for plain cross-entropy, and for the transcription of the authors' formulation, over a grid
of shapes, and records the extra memory each step needs.

What is measured:
- time: median over ``--repeats`` steps after ``--warmup`` steps; on CUDA each step is
  bracketed by CUDA events after a synchronize, on CPU by ``time.perf_counter``.
- extra memory: bytes allocated during one step beyond what was allocated before it (inputs,
  parameters and the persistent statistics are excluded; the statistics' size is reported
  separately as ``state_mb``). CUDA: ``torch.cuda.max_memory_allocated`` minus the allocated
  bytes before the step. CPU: the running peak of the allocation and free events that
  ``torch.profiler`` records for torch's CPU allocator during one extra, untimed step
  (tracemalloc would not see torch's allocations).

``isda-ops`` counts the ATen ops each of those steps dispatches (the per-step CPU cost that
dominates on a launch-bound GPU host). Other subcommands (``step``, ``loader``, ``epoch``)
register themselves in ``SUBCOMMANDS``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from bench.common import bounds
from bench.common.errors import ConfigError, OneLineParser
from bench.common.files import atomic_write_csv, atomic_write_text, make_dir
from bench.common.paths import output_folder

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("float32", "bfloat16")
GRIDS = ("full", "quick")
MODES = ("full", "diagonal")
METHODS = ("ce", "isda", "reference")

Shape = tuple[int, int, int, str]  # N, C, A, covariance mode

GRID: dict[str, list[Shape]] = {
    # CIFAR-10/100 at A = 64 (ResNets), 640 (WRN-28-10), 1024 (ResNeXt-29); ImageNet diagonal
    # and full covariance at A = 2048 (ResNet-50).
    "full": [
        (128, 10, 64, "full"),
        (128, 100, 64, "full"),
        (128, 100, 640, "full"),
        (128, 100, 1024, "full"),
        (256, 1000, 2048, "diagonal"),
        (64, 1000, 2048, "full"),
    ],
    # Small enough for a 2-core CPU in well under a minute.
    "quick": [
        (128, 10, 64, "full"),
        (128, 100, 64, "full"),
        (64, 200, 128, "full"),
        (128, 100, 256, "diagonal"),
    ],
}

CSV_FIELDS = [
    "device", "torch", "dtype", "N", "C", "A", "mode", "method", "status",
    "time_ms", "time_ms_min", "extra_mb", "state_mb", "repeats",
]  # fmt: skip


# --------------------------------------------------------------------------- CLI plumbing


def _parse_choice(key: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(key, value, allowed)
    return value


def _parse_shape(value: str) -> Shape:
    allowed = "N,C,A,MODE with positive integers and MODE full or diagonal, e.g. 128,100,640,full"
    parts = value.split(",")
    if len(parts) != 4 or parts[3] not in MODES or not all(p.isdigit() and int(p) > 0 for p in parts[:3]):
        raise ConfigError("--shape", value, allowed)
    n, c, a = (int(bounds.check(name, f"--shape {what}", int(p), "an integer"))
               for name, what, p in zip(("batch_size", "classes", "features"), "NCA", parts))
    return n, c, a, parts[3]


def _resolve_device(value: str) -> torch.device:
    _parse_choice("--device", value, DEVICES)
    if value == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if value == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device", value, "cpu or auto: no CUDA device is available here")
    return torch.device(value)


def _add_isda_args(p: argparse.ArgumentParser) -> None:
    # Values are validated by hand so that bad input raises ConfigError, not SystemExit.
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--dtype", default="float32", help="float32 | bfloat16 (autocast)")
    p.add_argument("--repeats", default="20", help="timed steps; the median is reported")
    p.add_argument("--warmup", default="3", help="untimed steps before timing")
    p.add_argument("--grid", default="full", help="full | quick")
    p.add_argument("--shape", action="append", default=None, metavar="N,C,A,MODE",
                   help="run only these shapes instead of the grid (repeatable)")  # fmt: skip
    p.add_argument("--out", default="results/perf", help="output directory")
    p.add_argument("--skip-reference-above", default="auto", metavar="GB",
                   help="skip the reference formulation where its estimated memory exceeds this "
                        "many GB (auto: the memory available now)")  # fmt: skip


@dataclass(frozen=True)
class IsdaConfig:
    device: torch.device
    dtype: str
    repeats: int
    warmup: int
    shapes: list[Shape]
    out: Path
    reference_limit_bytes: float


def _isda_config(ns: argparse.Namespace) -> IsdaConfig:
    device = _resolve_device(ns.device)
    dtype = _parse_choice("--dtype", ns.dtype, DTYPES)
    grid = _parse_choice("--grid", ns.grid, GRIDS)
    shapes = [_parse_shape(s) for s in ns.shape] if ns.shape else GRID[grid]
    if ns.skip_reference_above == "auto":
        limit = float(_available_bytes(device))
    else:
        allowed = "auto or a positive number of GB"
        try:
            limit = float(ns.skip_reference_above) * 1e9
        except ValueError:
            raise ConfigError("--skip-reference-above", ns.skip_reference_above, allowed) from None
        if not limit > 0:
            raise ConfigError("--skip-reference-above", ns.skip_reference_above, allowed)
    return IsdaConfig(
        device=device,
        dtype=dtype,
        repeats=bounds.parse_int("--repeats", ns.repeats, "repeats"),
        warmup=bounds.parse_int("--warmup", ns.warmup, "warmup"),
        shapes=shapes,
        out=output_folder(Path(ns.out), "--out"),  # before measuring: a bad --out must not cost the run
        reference_limit_bytes=limit,
    )


# --------------------------------------------------------------------------- measurement


def allocation_failed(exc: BaseException) -> bool:
    """Whether ``exc`` is a device running out of memory: CUDA's OutOfMemoryError, or the CPU
    allocator's refusal, which torch raises as a plain RuntimeError."""
    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc))


def _available_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def estimate_bytes(method: str, shape: Shape) -> int:
    """Rough float32 footprint (persistent statistics + one step's temporaries), for skipping."""
    n, c, a, mode = shape
    f = 4
    state = c * a * a if mode == "full" else c * a
    if method == "ce":
        return f * (3 * n * c + c * a)
    if method == "isda":
        from bench.methods import covariance, isda

        if mode == "diagonal":
            return f * (2 * state + 6 * n * a + 6 * n * c)
        rows = min(n, c)
        work = 3 * covariance.CHUNK_ELEMS + min(rows * c * a, isda.SAVE_ELEMS)
        return f * (state + work + 4 * n * c)
    # reference: N×C×A masks/differences, a fresh C×A×A each step plus its weight and merge
    # temporaries, the N×A×A gather, the N×C×C product and its eye mask.
    if mode == "diagonal":
        return f * (state + 10 * n * c * a + 6 * state)
    return f * (8 * n * c * a + 7 * state + 2 * n * a * a + 3 * n * c * c)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Hold back what C++ writes to file descriptor 2 (the profiler's start/stop and allocator lines,
    which bypass sys.stderr); it is shown after all if the block raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _cpu_peak_bytes(step: Callable[[], None]) -> int:
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda e: e.start_ns())
    current = peak = 0
    for e in events:  # allocations positive, frees negative, in time order
        current += e.nbytes()
        peak = max(peak, current)
    return peak


def _cuda_peak_bytes(step: Callable[[], None], device: torch.device) -> int:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    step()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


def _time_ms(step: Callable[[], None], device: torch.device, repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        step()
    times = []
    if device.type == "cuda":
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize(device)
            start.record()
            step()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
    else:
        for _ in range(repeats):
            t0 = time.perf_counter()
            step()
            times.append((time.perf_counter() - t0) * 1e3)
    return times


def _make_step(method: str, shape: Shape, device: torch.device, dtype: str) -> tuple[Callable[[], None], int]:
    """A closure running one step of ``method`` and the bytes of its persistent statistics."""
    from bench.methods.isda import ISDALoss
    from bench.methods.isda_reference import ReferenceISDALoss

    n, c, a, mode = shape
    g = torch.Generator(device="cpu").manual_seed(0)
    feats = torch.randn(n, a, generator=g).to(device).requires_grad_()
    labels = torch.randint(0, c, (n,), generator=g).to(device)
    fc = nn.Linear(a, c).to(device)
    lam = 0.5
    bf16 = dtype == "bfloat16"
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    crit: nn.Module | None = None
    if method == "isda":
        crit = ISDALoss(c, a, mode).to(device)
    elif method == "reference":
        crit = ReferenceISDALoss(c, a, mode).to(device)

    def step() -> None:
        feats.grad = None  # fresh gradients each step, so every step allocates the same
        fc.weight.grad = fc.bias.grad = None
        with autocast:
            if crit is None:
                loss = F.cross_entropy(fc(feats).float(), labels)
            else:
                loss, _ = crit(feats, fc, labels, lam)
        loss.backward()

    state = sum(b.numel() * b.element_size() for b in crit.buffers()) if crit is not None else 0
    return step, state


def _run_one(method: str, shape: Shape, cfg: IsdaConfig) -> dict[str, object]:
    row: dict[str, object] = {"method": method, "status": "ok", "time_ms": "", "time_ms_min": "",
                              "extra_mb": "", "state_mb": "", "repeats": cfg.repeats}  # fmt: skip
    est = estimate_bytes(method, shape)
    limit = cfg.reference_limit_bytes if method == "reference" else float(_available_bytes(cfg.device))
    if est > limit:
        row["status"] = f"skipped (est. {est / 1e9:.1f} GB)"
        return row
    try:
        step, state = _make_step(method, shape, cfg.device, cfg.dtype)
        times = _time_ms(step, cfg.device, cfg.repeats, cfg.warmup)
        if cfg.device.type == "cuda":
            extra = _cuda_peak_bytes(step, cfg.device)
        else:
            extra = _cpu_peak_bytes(step)
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


def _device_label(device: torch.device) -> str:
    if device.type != "cuda":
        return device.type
    name = torch.cuda.get_device_name(device)
    return "cuda-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


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


def run_isda(ns: argparse.Namespace) -> int:
    cfg = _isda_config(ns)
    device_label = _device_label(cfg.device)
    version = torch.__version__.split("+")[0]
    common = {"device": device_label, "torch": torch.__version__, "dtype": cfg.dtype}
    chatty = sys.stderr.isatty()
    rows = []
    for shape in cfg.shapes:
        for method in METHODS:
            if chatty:
                print(f"perf isda {shape} {method} ...", file=sys.stderr, flush=True)
            n, c, a, mode = shape
            row = {**common, "N": n, "C": c, "A": a, "mode": mode, **_run_one(method, shape, cfg)}
            rows.append(row)
    make_dir(cfg.out, "--out")
    stem = f"perf_isda_{device_label}_torch{version}_{cfg.dtype}"
    atomic_write_csv(cfg.out / f"{stem}.csv", rows, CSV_FIELDS)
    table = markdown_table(rows)
    measured = (
        "torch.cuda.max_memory_allocated"
        if cfg.device.type == "cuda"
        else "torch.profiler CPU allocator events"
    )
    header = (
        f"# ISDA step: update + loss forward + backward\n\n"
        f"device {device_label}, torch {torch.__version__}, {cfg.dtype}, median of {cfg.repeats} "
        f"after {cfg.warmup} warm-up steps. Extra MB: memory allocated during one step beyond "
        f"inputs, parameters and statistics ("
        f"{measured}). Skipped rows give the estimate that exceeded the memory limit.\n\n"
    )
    atomic_write_text(cfg.out / f"{stem}.md", header + table + "\n")
    print(table)
    return 0


# --------------------------------------------------------------------------- op counts

OPS_SHAPES: list[Shape] = [(128, 100, 64, "full"), (128, 100, 640, "full"), (256, 1000, 2048, "diagonal")]
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


def _make_phased_step(method: str, shape: Shape, dtype: str) -> Callable[..., None]:
    """One CPU training step of ``method`` as in ``_make_step``, calling ``phase()`` between the
    forward (statistics update included) and the backward."""
    from bench.methods.isda import ISDALoss
    from bench.methods.isda_reference import ReferenceISDALoss

    n, c, a, mode = shape
    g = torch.Generator(device="cpu").manual_seed(0)
    feats = torch.randn(n, a, generator=g).requires_grad_()
    labels = torch.randint(0, c, (n,), generator=g)
    fc = nn.Linear(a, c)
    autocast = torch.autocast(device_type="cpu", dtype=torch.bfloat16) if dtype == "bfloat16" else nullcontext()
    crit = {"ce": None, "isda": lambda: ISDALoss(c, a, mode), "reference": lambda: ReferenceISDALoss(c, a, mode)}
    make = crit[method]
    loss_fn = make() if make is not None else None

    def step(phase: Callable[[], None] = lambda: None) -> None:
        feats.grad = None
        fc.weight.grad = fc.bias.grad = None
        with autocast:
            if loss_fn is None:
                loss = F.cross_entropy(fc(feats).float(), labels)
            else:
                loss, _ = loss_fn(feats, fc, labels, 0.5)
        phase()
        loss.backward()

    return step


def _add_ops_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dtype", default="float32", help="float32 | bfloat16 (CPU autocast)")
    p.add_argument("--shape", action="append", default=None, metavar="N,C,A,MODE",
                   help=f"shapes to count (repeatable; default {' '.join(','.join(map(str, s)) for s in OPS_SHAPES)})")
    p.add_argument("--repeats", default="0", help="also time this many CPU steps (median; 0: count only)")
    p.add_argument("--out", default="results/perf", help="output directory")


def run_ops(ns: argparse.Namespace) -> int:
    """``isda-ops``: ATen ops per training step (update + forward + backward) on the CPU, for CE,
    bench.methods.isda and the reference formulation. On a launch-bound GPU host each op costs
    dispatch and launch time whatever its size, so this count, not FLOPs, sets ISDA's
    overhead at small shapes. Shapes whose estimated memory exceeds what is available are
    skipped (the reference's op count does not depend on the shape: count it at a smaller one)."""
    dtype = _parse_choice("--dtype", ns.dtype, DTYPES)
    shapes = [_parse_shape(s) for s in ns.shape] if ns.shape else OPS_SHAPES
    repeats = bounds.parse_int("--repeats", ns.repeats, "op_repeats")
    out = output_folder(Path(ns.out), "--out")  # checked: nothing is measured or written above this line
    rows = []
    for shape in shapes:
        for method in METHODS:
            n, c, a, mode = shape
            row: dict[str, object] = {"torch": torch.__version__, "dtype": dtype, "N": n, "C": c, "A": a,
                                      "mode": mode, "method": method, "status": "ok", "time_ms": "",
                                      "repeats": repeats}  # fmt: skip
            est = estimate_bytes(method, shape)
            if est > _available_bytes(torch.device("cpu")):
                row["status"] = f"skipped (est. {est / 1e9:.1f} GB)"
                rows.append(row)
                continue
            step = _make_phased_step(method, shape, dtype)
            step()  # warm-up: lazily created state, first-call paths
            row.update(count_step_ops(step))
            if repeats:
                row["time_ms"] = round(statistics.median(_time_ms(step, torch.device("cpu"), repeats, 3)), 4)
            rows.append(row)
    make_dir(out, "--out")
    stem = f"perf_isda_ops_cpu_torch{torch.__version__.split('+')[0]}_{dtype}"
    atomic_write_csv(out / f"{stem}.csv", rows, OPS_FIELDS, ignore_extra=True)
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
    atomic_write_text(out / f"{stem}.md", header + table + "\n")
    print(table)
    return 0


AddArgs = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]

# name → (add its arguments, run it); others add "step", "loader", "epoch" here.
SUBCOMMANDS: dict[str, tuple[AddArgs, Run]] = {
    "isda": (_add_isda_args, run_isda),
    "isda-ops": (_add_ops_args, run_ops),
}


def build_parser() -> argparse.ArgumentParser:
    from bench.perf.accuracy import SUBCOMMANDS as ACCURACY
    from bench.perf.training import SUBCOMMANDS as TRAINING

    SUBCOMMANDS.update(TRAINING)
    SUBCOMMANDS.update(ACCURACY)
    parser = OneLineParser(prog="isda-bench perf", description="Benchmarks: ISDA alone (isda, "
                           "isda-ops), training steps, input pipeline, epochs, accuracy.")
    sub = parser.add_subparsers(dest="subcommand", required=True)
    for name, (add_args, _) in SUBCOMMANDS.items():
        add_args(sub.add_parser(name))
    return parser


def main(argv: list[str]) -> int:
    ns = build_parser().parse_args(argv)
    return SUBCOMMANDS[ns.subcommand][1](ns)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
