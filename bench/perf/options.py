"""The command-line options that several benchmarks share, and the helper that checks a choice."""

from __future__ import annotations

import argparse

from bench.common.errors import ConfigError
from bench.experiment.datasets import DATASETS
from bench.experiment.runconfig import COMPILE

# dataset → (classes, channels, image size): the synthetic input of the training benchmarks.
SHAPES = {n: (d.classes, d.channels, d.image_size) for n, d in DATASETS.items() if n != "synthetic"}


def parse_choice(key: str, value: str, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``; otherwise the one-line ConfigError naming ``key``."""
    if value not in allowed:
        raise ConfigError(key, value, allowed)
    return value


def add_common_args(p: argparse.ArgumentParser, arch: bool = True) -> None:
    """--arch (training benchmarks), --dataset, --device, --batch, --out; the loader has its own."""
    if arch:
        p.add_argument("--arch", default="resnet110")
        p.add_argument("--dataset", default="cifar100", help=" | ".join(SHAPES) + " (shapes only)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--batch", default=None, help="batch size (default: the recipe's; 256 for imagenet)" if arch
                   else "batch size (default: 128)")
    p.add_argument("--out", default="results/perf", help="output directory")


def add_compile_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--compile", default="off", help=" | ".join(COMPILE) + ": torch.compile of forward and loss for "
                   "this suite's steps (reduce-overhead and cudagraphs replay CUDA graphs on GPU)")
