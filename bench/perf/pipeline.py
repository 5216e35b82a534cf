"""The input-pipeline benchmarks on synthetic CIFAR-shaped images:

- ``isda-bench perf loader``: images/s of the reference input pipeline (PIL transforms in a DataLoader
  with ``--workers`` processes) against the device-resident uint8 loader with batched crop/flip;
- ``isda-bench perf epoch``: training throughput with input included: the reference setting (PIL
  loader, fp32, the authors' ISDA) against this suite's (resident loader, bf16 autocast,
  channels_last, ISDA).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

import torch

from bench.perf.device import device_label
from bench.perf.options import SHAPES, add_common_args, add_compile_arg
from bench.perf.output import compile_flag, compile_suffix, say, skips_note, write
from bench.perf.plans import check_epoch, check_loader
from bench.perf.timing import images_per_s
from bench.perf.training_step import model_and_loss, train_step
from bench.train.fastpath import CUDA_GRAPH_MODES, cuda_settings, cudagraph_skips


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

    def __getitem__(self, i: int) -> tuple[Any, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.y[i])


def _reference_batches(x: torch.Tensor, y: torch.Tensor, batch: int, workers: int, device: torch.device) -> Iterator:
    loader = torch.utils.data.DataLoader(_ReferenceCifar(x, y), batch_size=batch, shuffle=True, num_workers=workers,
                                         pin_memory=device.type == "cuda", drop_last=True,
                                         persistent_workers=workers > 0)
    while True:
        for xb, yb in loader:
            yield xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)


def _our_batches(x: torch.Tensor, y: torch.Tensor, batch: int, device: torch.device, method: str = "ce") -> Iterator:
    from bench.data.batches import make_batches
    from bench.data.sources import CIFAR_MEAN, CIFAR_STD, DatasetInfo, Split
    from bench.methods import parse_method

    info = DatasetInfo("cifar100", 100, 3, 32, CIFAR_MEAN, CIFAR_STD, pad=4, flip=True, cutout=16)
    b = make_batches(Split(x, y), info, batch, device, parse_method(method))
    g = torch.Generator().manual_seed(0)
    while True:  # full batches only, as the reference's drop_last: a short one would recompile a compiled step
        yield from ((xb, yb) for xb, yb in b.epoch(g) if len(yb) == batch)


# --------------------------------------------------------------------------- loader
def add_loader_args(p: argparse.ArgumentParser) -> None:
    add_common_args(p, arch=False)
    p.add_argument("--images", default="50000", help="synthetic CIFAR-shaped images")
    p.add_argument("--steps", default="100", help="batches timed per pipeline")
    p.add_argument("--workers", default="1,8", help="reference DataLoader worker counts to measure")


def run_loader(ns: argparse.Namespace) -> int:
    p = check_loader(ns)  # every option and --out: nothing is allocated, measured or written before
    device, images, steps, workers, batch = p.device, p.images, p.steps, p.workers, p.batch
    x, y = _synthetic_cifar(images)
    rows: list[dict[str, Any]] = []
    for w in workers:
        say(f"perf loader: reference, {w} worker(s) ...")
        rows.append({"pipeline": f"reference: PIL + DataLoader, {w} worker(s)", "images_per_s":
                     round(images_per_s(_reference_batches(x, y, batch, w, device), batch, steps, device))})
    for method in ("ce", "cutout"):
        say(f"perf loader: resident, {method} ...")
        rows.append({"pipeline": f"resident uint8 on {device.type}, batched crop/flip"
                     + ("/cutout" if method == "cutout" else ""),
                     "images_per_s": round(images_per_s(_our_batches(x, y, batch, device, method), batch, steps,
                                                        device))})
    base = rows[0]["images_per_s"]
    lines = ["| pipeline | images/s | vs first |", "|---|---|---|"]
    lines += [f"| {r['pipeline']} | {r['images_per_s']:,} | {r['images_per_s'] / base:.1f}× |" for r in rows]
    note = (f"# CIFAR input pipeline, batch {batch}\n\n{device_label(device)}, torch {torch.__version__}; "
            f"{steps} batches each after 3 warm-up batches (`isda-bench perf loader`).")
    write(ns, "loader", "uint8", rows, "\n".join(lines), note)
    return 0


# --------------------------------------------------------------------------- epoch
def add_epoch_args(p: argparse.ArgumentParser) -> None:
    add_common_args(p)
    p.add_argument("--steps", default="50", help="training steps timed per setting")
    p.add_argument("--workers", default="1", help="reference DataLoader workers")
    add_compile_arg(p)


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
        model, crit, opt = model_and_loss(ns.arch, ns.dataset, method, device, channels_last, "full",
                                          bn_counters=loader == "ref")
        batches = (_reference_batches(x, y, batch, workers, device) if loader == "ref"
                   else _our_batches(x, y, batch, device))

        one = train_step(model, crit, method, opt, bf16, 0.5, mode)

        def consume(xb, yb, one=one, cl=channels_last):
            if cl:
                xb = xb.contiguous(memory_format=torch.channels_last)
            one(xb, yb)

        say(f"perf epoch {ns.arch}: {label} ...")
        skips = cudagraph_skips()
        ips = images_per_s(batches, batch, steps, device, consume)
        ips_raw.append(ips)
        rows.append({"setting": label, "arch": ns.arch, "dataset": ns.dataset, "batch": batch,
                     "images_per_s": round(ips, 1),
                     "epoch_s_50k": round(50_000 / ips, 2),
                     "cudagraph_skips": cudagraph_skips() - skips if mode in CUDA_GRAPH_MODES else ""})
        del model, crit, opt  # before the next setting builds its own
    lines = ["| setting | images/s | s per 50k-image epoch | speed-up |", "|---|---|---|---|"]
    lines += [f"| {r['setting']} | {round(r['images_per_s']):,} | {r['epoch_s_50k']} | {ips / ips_raw[0]:.2f}× |"
              for r, ips in zip(rows, ips_raw)]
    note = (f"# Training throughput with input: {ns.arch}, {ns.dataset}-shaped, batch {batch}\n\n"
            f"{device_label(device)}, torch {torch.__version__}; {steps} steps each after 3 warm-up steps "
            f"(`isda-bench perf epoch --arch {ns.arch} --dataset {ns.dataset} --batch {batch} --steps {steps} "
            f"--workers {workers}{compile_flag(compile_mode)}`).")
    note += skips_note({r["setting"]: r["cudagraph_skips"] for r in rows})
    write(ns, f"epoch_{ns.arch}_{ns.dataset}{compile_suffix(compile_mode)}", "mixed", rows, "\n".join(lines), note)
    return 0
