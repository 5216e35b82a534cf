"""The command-line options that several benchmarks share, and the helpers that check a choice and a list."""

from __future__ import annotations

import argparse

from bench.common.errors import ConfigError
from bench.common.paths import path_text
from bench.experiment.datasets import DATASETS
from bench.experiment.runconfig import COMPILE

# dataset → (classes, channels, image size): the synthetic input of the training benchmarks.
SHAPES = {n: (d.classes, d.channels, d.image_size) for n, d in DATASETS.items() if n != "synthetic"}


def parse_choice(key: str, value: str, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``; otherwise the one-line ConfigError naming ``key``."""
    if value not in allowed:
        raise ConfigError(key, value, allowed)
    return value


def parse_list(key: str, text: str, what: str) -> list[str]:
    """A comma-separated option as its items: at least one, none empty, none given twice (a repeat
    would be measured once, or twice, without a word: the list was not what was meant)."""
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or "" in items:
        raise ConfigError(key, text, f"a comma-separated list of {what}, without empty items")
    for i, item in enumerate(items):
        if item in items[:i]:
            raise ConfigError(key, text, f"a list of {what} without repeats ({item} is given twice)")
    return items


def add_common_args(p: argparse.ArgumentParser, arch: bool = True) -> None:
    """--arch (training benchmarks), --dataset, --device, --batch, --out; the loader has its own."""
    if arch:
        p.add_argument("--arch", default="resnet110")
        p.add_argument("--dataset", default="cifar100", help=" | ".join(SHAPES) + " (shapes only)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--batch", default=None, help="batch size (default: the recipe's; 256 for imagenet)" if arch
                   else "batch size (default: 128)")
    p.add_argument("--out", default="results/perf", type=path_text, help="output directory")


def add_compile_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--compile", default="off", help=" | ".join(COMPILE) + ": torch.compile of forward and loss for "
                   "this suite's steps (reduce-overhead and cudagraphs replay CUDA graphs on GPU)")
