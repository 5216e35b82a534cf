"""Whole-step and input-pipeline benchmarks: ``isda-bench perf step | loader | epoch``.

- ``step``: one training step (forward, loss, backward, SGD) of a real architecture on synthetic
  inputs, for cross-entropy, this suite's ISDA and the transcription of the authors' ISDA.
  Steps are timed back to back, as in training (the CPU queues work while the GPU runs), in
  blocks of ``--steps``; the median block's time per step is reported, with the method's own
  peak memory: what it holds between steps (parameters, gradients, optimizer state, statistics;
  ``state_mb``) plus the most one step allocates beyond that (CUDA: the allocator's peak; CPU: the
  profiler's allocation events). Models of methods measured earlier in the process are not counted.
  Under CUDA graphs a replay allocates nothing, so the graph's private memory pool is not counted.
- ``loader``: images/s of the reference input pipeline (PIL transforms in a DataLoader with
  ``--workers`` processes) against the device-resident uint8 loader with batched crop/flip.
- ``epoch``: training throughput with input included: the reference setting (PIL loader, fp32,
  the authors' ISDA) against this suite's (resident loader, bf16 autocast, channels_last, ISDA).

Each writes a CSV named after device, torch version and precision, and prints a Markdown table
with ratios to the baseline measured in the same process.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.common.files import atomic_write_csv, atomic_write_text, make_dir
from bench.experiment.runconfig import COMPILE
from bench.perf.isda_bench import _cpu_peak_bytes, _cuda_peak_bytes, _device_label, _resolve_device, allocation_failed
from bench.perf.plans import SHAPES, STEP_METHODS, check_epoch, check_loader, check_step
from bench.train.fastpath import (
    CUDA_GRAPH_MODES,
    compiled,
    cuda_settings,
    cudagraph_skips,
    drop_batchnorm_counters,
    scalar_input,
    static_addresses,
)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _blocks(step: Callable[[], None], device: torch.device, steps: int, blocks: int, warmup: int) -> float:
    """Median over ``blocks`` of the mean time per step (ms) of ``steps`` back-to-back steps."""
    for _ in range(warmup):
        step()
    _sync(device)
    times = []
    for _ in range(blocks):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(device)
        times.append((time.perf_counter() - t0) * 1e3 / steps)
    return statistics.median(times)


def _state_bytes(model: torch.nn.Module, crit: torch.nn.Module | None, opt: torch.optim.Optimizer) -> int:
    """Bytes a method holds between steps: parameters, buffers, gradients, optimizer state and the
    ISDA statistics, each storage counted once."""
    tensors = [*model.parameters(), *model.buffers()]
    tensors += [p.grad for p in model.parameters() if p.grad is not None]
    if crit is not None:
        tensors += [*crit.parameters(), *crit.buffers()]
    tensors += [v for state in opt.state.values() for v in state.values() if torch.is_tensor(v)]
    storages = {(t.device, t.untyped_storage().data_ptr()): t.untyped_storage().nbytes() for t in tensors}
    return sum(storages.values())


def _step_peak_bytes(step: Callable[[], None], device: torch.device) -> int:
    """Peak bytes allocated during one step beyond what was allocated before it. Only this step's
    own allocations count, so the models of methods measured earlier in the process do not."""
    return _cuda_peak_bytes(step, device) if device.type == "cuda" else _cpu_peak_bytes(step)


def _train_step(model, crit, method: str, opt, bf16: bool, lam: float,
                compile_mode: str = "off") -> Callable[[torch.Tensor, torch.Tensor], None]:
    """One SGD step on a batch, as a function of the batch. ``compile_mode`` (a RunConfig.compile
    value) compiles forward and loss as training does; the authors' formulation always runs eagerly."""
    def forward(x: torch.Tensor, y: torch.Tensor, lam: float | torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            feats = model.features(x)
            if method == "ce":
                return F.cross_entropy(model.fc(feats).float(), y)
            return crit(feats, model.fc, y, lam)[0]

    mode = "off" if method == "reference" else compile_mode
    fwd = compiled(forward, mode)
    lam_in = scalar_input(lam, mode, next(model.parameters()).device)
    graphs = mode in CUDA_GRAPH_MODES
    if graphs:
        static_addresses(model, crit)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        if graphs and x.device.type == "cuda":
            torch.compiler.cudagraph_mark_step_begin()
        opt.zero_grad(set_to_none=True)  # before the forward: the old gradients are not held at its peak
        loss = fwd(x, y, lam_in)
        loss.backward()
        opt.step()

    return step


def _model_and_loss(arch: str, dataset: str, method: str, device: torch.device, channels_last: bool,
                    cov_mode: str, bn_counters: bool = False):
    """Model, ISDA criterion (None for CE) and SGD as training builds them; ``bn_counters`` keeps
    BatchNorm's step counters, as the authors' code does."""
    from bench.methods.isda import ISDALoss
    from bench.methods.isda_reference import ReferenceISDALoss
    from bench.models import create_model

    classes, chans, _ = SHAPES[dataset]
    torch.manual_seed(0)
    model = create_model(arch, num_classes=classes, in_chans=chans).to(device)
    if not bn_counters:
        drop_batchnorm_counters(model)  # as training does
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    crit = None
    if method == "isda":
        crit = ISDALoss(classes, model.num_features, cov_mode).to(device)
    elif method == "reference":
        crit = ReferenceISDALoss(classes, model.num_features, cov_mode).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)
    return model, crit, opt


def _common_args(p: argparse.ArgumentParser, arch: bool = True) -> None:
    """--arch (training benchmarks), --dataset, --device, --batch, --out; the loader has its own."""
    if arch:
        p.add_argument("--arch", default="resnet110")
        p.add_argument("--dataset", default="cifar100", help=" | ".join(SHAPES) + " (shapes only)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--batch", default=None, help="batch size (default: the recipe's; 256 for imagenet)" if arch
                   else "batch size (default: 128)")
    p.add_argument("--out", default="results/perf", help="output directory")


def _say(what: str) -> None:
    """One line per measurement on a terminal (a benchmark runs for minutes), none in logs."""
    if sys.stderr.isatty():
        print(what, file=sys.stderr, flush=True)


def _write(ns: argparse.Namespace, name: str, precision: str, rows: list[dict], table: str, note: str) -> None:
    device = _resolve_device(ns.device)
    stem = f"perf_{name}_{_device_label(device)}_torch{torch.__version__.split('+')[0]}_{precision}"
    out = make_dir(Path(ns.out), "--out")
    atomic_write_csv(out / f"{stem}.csv", rows, list(rows[0]))
    atomic_write_text(out / f"{stem}.md", f"{note}\n\n{table}\n")
    print(note)
    print(table)


# --------------------------------------------------------------------------- step
def _add_step_args(p: argparse.ArgumentParser) -> None:
    _common_args(p)
    p.add_argument("--dtype", default="auto", help="auto (bfloat16 on CUDA) | float32 | bfloat16 (autocast; "
                   "statistics stay float32)")
    p.add_argument("--channels-last", default="auto", help="auto (on for CUDA) | on | off")
    p.add_argument("--cov-mode", default=None, help="full | diagonal (default: diagonal for imagenet)")
    p.add_argument("--methods", default=",".join(STEP_METHODS))
    p.add_argument("--steps", default="10", help="steps per timed block")
    p.add_argument("--blocks", default="5", help="timed blocks; the median is reported")
    p.add_argument("--warmup", default="5")
    _compile_arg(p)


def _compile_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--compile", default="off", help=" | ".join(COMPILE) + ": torch.compile of forward and loss for "
                   "this suite's steps (reduce-overhead and cudagraphs replay CUDA graphs on GPU)")


def run_step(ns: argparse.Namespace) -> int:
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
        _say(f"perf step {ns.arch} {ns.dataset} {method} ...")
        skips = cudagraph_skips()
        try:
            model, crit, opt = _model_and_loss(ns.arch, ns.dataset, method, device, channels_last, cov_mode)
            train_step = _train_step(model, crit, method, opt, dtype == "bfloat16", 0.5, compile_mode)

            def step(train_step=train_step) -> None:
                train_step(x, y)

            t0 = time.perf_counter()
            _blocks(step, device, 3, 1, 0)  # compiles (graphs for CUDA graphs are recorded on later calls)
            row["first_3_steps_s"] = round(time.perf_counter() - t0, 2)  # with compilation, if any
            state, extra = _state_bytes(model, crit, opt), _step_peak_bytes(step, device)
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
        _blocks(step, device, 1, 1, warmup)
    skips = cudagraph_skips()
    for _ in range(blocks):
        for m, step in steps_by_method.items():
            times[m].append(_blocks(step, device, steps, 1, 0))
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
    note = (f"# Training step: {ns.arch} on {ns.dataset}-shaped synthetic input\n\n{_device_label(device)}, "
            f"torch {torch.__version__}, {dtype}, channels_last={channels_last}; median over {blocks} blocks of "
            f"{steps} back-to-back steps after {warmup} warm-up steps (`isda-bench perf step --arch {ns.arch} "
            f"--dataset {ns.dataset}{_compile_flag(compile_mode)}`).")
    if compile_mode != "off":
        note += f" CE and ISDA compiled with torch.compile mode {compile_mode}; the reference runs eagerly."
    note += _skips_note({r["method"]: r["cudagraph_skips"] for r in rows}, late_skips)
    _write(ns, f"step_{ns.arch}_{ns.dataset}{_compile_suffix(compile_mode)}", dtype, rows, "\n".join(lines), note)
    return 0


def _skips_note(by_setting: dict[str, int | str], late: int = 0) -> str:
    """A warning for the table when compiled graphs ran without the CUDA graphs they were meant to
    replay as (``cudagraph_skips`` per setting; "" where none were asked for)."""
    declined = [f"{name}: {k} graph{'s' if k > 1 else ''}" for name, k in by_setting.items()
                if isinstance(k, int) and k > 0]
    if late > 0:
        declined.append(f"{late} more during the timed steps")
    if not declined:
        return ""
    return (" **CUDA graphs were declined** (" + "; ".join(declined) + "): those graphs ran without them, so "
            "these are not CUDA-graph times (`TORCH_LOGS=cudagraphs` prints the reasons; on a CPU there are "
            "no CUDA graphs).")


def _mb(row: dict) -> str:
    return f"{row['peak_mb']} ({row['state_mb']})" if row["peak_mb"] != "" else "–"


def _compile_flag(mode: str) -> str:
    return "" if mode == "off" else f" --compile {mode}"


def _compile_suffix(mode: str) -> str:
    return "" if mode == "off" else f"_compile-{mode}"


# --------------------------------------------------------------------------- loader
def _synthetic_cifar(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    return images, torch.randint(0, 100, (n,), generator=g)


class _ReferenceCifar(torch.utils.data.Dataset):
    """What the reference scripts do per image: a PIL image through torchvision transforms."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        from torchvision import transforms as T

        from bench.data.sources import CIFAR_MEAN, CIFAR_STD

        self.images = x.permute(0, 2, 3, 1).numpy()  # HWC, as torchvision's CIFAR keeps them
        self.y = y
        self.transform = T.Compose([T.RandomCrop(32, padding=4, padding_mode="reflect"), T.RandomHorizontalFlip(),
                                    T.ToTensor(), T.Normalize(CIFAR_MEAN, CIFAR_STD)])

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.y[i])


def _reference_batches(x, y, batch: int, workers: int, device: torch.device) -> Iterator:
    loader = torch.utils.data.DataLoader(_ReferenceCifar(x, y), batch_size=batch, shuffle=True, num_workers=workers,
                                         pin_memory=device.type == "cuda", drop_last=True,
                                         persistent_workers=workers > 0)
    while True:
        for xb, yb in loader:
            yield xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)


def _our_batches(x, y, batch: int, device: torch.device, method: str = "ce") -> Iterator:
    from bench.data.batches import make_batches
    from bench.data.sources import CIFAR_MEAN, CIFAR_STD, DatasetInfo, Split
    from bench.methods import parse_method

    info = DatasetInfo("cifar100", 100, 3, 32, CIFAR_MEAN, CIFAR_STD, pad=4, flip=True, cutout=16)
    b = make_batches(Split(x, y), info, batch, device, parse_method(method))
    g = torch.Generator().manual_seed(0)
    while True:  # full batches only, as the reference's drop_last: a short one would recompile a compiled step
        yield from ((xb, yb) for xb, yb in b.epoch(g) if len(yb) == batch)


def _images_per_s(batches: Iterator, batch: int, steps: int, device: torch.device, consume=None) -> float:
    for _ in range(3):  # warm-up: worker start, first copies
        xb, yb = next(batches)
        if consume is not None:
            consume(xb, yb)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        xb, yb = next(batches)
        if consume is not None:
            consume(xb, yb)
    _sync(device)
    return steps * batch / (time.perf_counter() - t0)


def _add_loader_args(p: argparse.ArgumentParser) -> None:
    _common_args(p, arch=False)
    p.add_argument("--images", default="50000", help="synthetic CIFAR-shaped images")
    p.add_argument("--steps", default="100", help="batches timed per pipeline")
    p.add_argument("--workers", default="1,8", help="reference DataLoader worker counts to measure")


def run_loader(ns: argparse.Namespace) -> int:
    p = check_loader(ns)  # every option and --out: nothing is allocated, measured or written before
    device, images, steps, workers, batch = p.device, p.images, p.steps, p.workers, p.batch
    x, y = _synthetic_cifar(images)
    rows = []
    for w in workers:
        _say(f"perf loader: reference, {w} worker(s) ...")
        rows.append({"pipeline": f"reference: PIL + DataLoader, {w} worker(s)", "images_per_s":
                     round(_images_per_s(_reference_batches(x, y, batch, w, device), batch, steps, device))})
    for method in ("ce", "cutout"):
        _say(f"perf loader: resident, {method} ...")
        rows.append({"pipeline": f"resident uint8 on {device.type}, batched crop/flip"
                     + ("/cutout" if method == "cutout" else ""),
                     "images_per_s": round(_images_per_s(_our_batches(x, y, batch, device, method), batch, steps,
                                                         device))})
    base = rows[0]["images_per_s"]
    lines = ["| pipeline | images/s | vs first |", "|---|---|---|"]
    lines += [f"| {r['pipeline']} | {r['images_per_s']:,} | {r['images_per_s'] / base:.1f}× |" for r in rows]
    note = (f"# CIFAR input pipeline, batch {batch}\n\n{_device_label(device)}, torch {torch.__version__}; "
            f"{steps} batches each after 3 warm-up batches (`isda-bench perf loader`).")
    _write(ns, "loader", "uint8", rows, "\n".join(lines), note)
    return 0


# --------------------------------------------------------------------------- epoch
def _add_epoch_args(p: argparse.ArgumentParser) -> None:
    _common_args(p)
    p.add_argument("--steps", default="50", help="training steps timed per setting")
    p.add_argument("--workers", default="1", help="reference DataLoader workers")
    _compile_arg(p)


def run_epoch(ns: argparse.Namespace) -> int:
    p = check_epoch(ns)  # every option and --out: nothing is allocated, measured or written before
    device, steps, workers, compile_mode, batch = p.device, p.steps, p.workers, p.compile_mode, p.batch
    cuda_settings(device)
    x, y = _synthetic_cifar(max(4 * batch * 8, 10_000))
    y = y % SHAPES[ns.dataset][0]
    rows, ips_raw = [], []
    gpu = device.type == "cuda"
    ours = "isda-bench: resident loader, " + ("bf16, channels_last" if gpu else "fp32") + ", ISDA"
    settings = [("reference: PIL loader, fp32, authors' ISDA", "reference", False, False, "ref", "off"),
                (ours, "isda", gpu, gpu, "ours", "off")]
    if compile_mode != "off":
        settings.append((f"isda-bench, torch.compile {compile_mode}", "isda", gpu, gpu, "ours", compile_mode))
    for label, method, bf16, channels_last, loader, mode in settings:
        model, crit, opt = _model_and_loss(ns.arch, ns.dataset, method, device, channels_last, "full",
                                           bn_counters=loader == "ref")
        batches = (_reference_batches(x, y, batch, workers, device) if loader == "ref"
                   else _our_batches(x, y, batch, device))

        train_step = _train_step(model, crit, method, opt, bf16, 0.5, mode)

        def consume(xb, yb, train_step=train_step, cl=channels_last):
            if cl:
                xb = xb.contiguous(memory_format=torch.channels_last)
            train_step(xb, yb)

        _say(f"perf epoch {ns.arch}: {label} ...")
        skips = cudagraph_skips()
        ips = _images_per_s(batches, batch, steps, device, consume)
        ips_raw.append(ips)
        rows.append({"setting": label, "arch": ns.arch, "dataset": ns.dataset, "batch": batch,
                     "images_per_s": round(ips, 1),
                     "epoch_s_50k": round(50_000 / ips, 2),
                     "cudagraph_skips": cudagraph_skips() - skips if mode in CUDA_GRAPH_MODES else ""})
        model = crit = opt = None
    lines = ["| setting | images/s | s per 50k-image epoch | speed-up |", "|---|---|---|---|"]
    lines += [f"| {r['setting']} | {round(r['images_per_s']):,} | {r['epoch_s_50k']} | {ips / ips_raw[0]:.2f}× |"
              for r, ips in zip(rows, ips_raw)]
    note = (f"# Training throughput with input: {ns.arch}, {ns.dataset}-shaped, batch {batch}\n\n"
            f"{_device_label(device)}, torch {torch.__version__}; {steps} steps each after 3 warm-up steps "
            f"(`isda-bench perf epoch --arch {ns.arch} --dataset {ns.dataset} --batch {batch} --steps {steps} "
            f"--workers {workers}{_compile_flag(compile_mode)}`).")
    note += _skips_note({r["setting"]: r["cudagraph_skips"] for r in rows})
    _write(ns, f"epoch_{ns.arch}_{ns.dataset}{_compile_suffix(compile_mode)}", "mixed", rows, "\n".join(lines), note)
    return 0


SUBCOMMANDS = {"step": (_add_step_args, run_step), "loader": (_add_loader_args, run_loader),
               "epoch": (_add_epoch_args, run_epoch)}
