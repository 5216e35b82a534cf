"""What a benchmark leaves: a CSV and a Markdown file named after the benchmark, device, torch version
and precision, the table printed, and the wording its notes share (the command's compile flag, CUDA
graphs that torch declined, progress lines on a terminal)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from bench.common.files import atomic_write_csv, atomic_write_text, make_dir
from bench.perf.device import device_label, resolve_device


def file_stem(name: str, label: str, precision: str) -> str:
    """``perf_<name>_<device label>_torch<version>_<precision>``: the name of a result's files."""
    return f"perf_{name}_{label}_torch{torch.__version__.split('+')[0]}_{precision}"


def write_files(out: Path, stem: str, rows: Sequence[Mapping[str, Any]], fields: list[str], markdown: str, *,
                ignore_extra: bool = False) -> None:
    """``out/<stem>.csv`` (``fields`` as columns) and ``out/<stem>.md``, each written whole or not at all."""
    make_dir(out, "--out")
    atomic_write_csv(out / f"{stem}.csv", rows, fields, ignore_extra=ignore_extra)
    atomic_write_text(out / f"{stem}.md", markdown)


def write(ns: argparse.Namespace, name: str, precision: str, rows: list[dict], table: str, note: str) -> None:
    """A training benchmark's files (its rows' keys as columns; the note above the table) and the
    note and table printed."""
    label = device_label(resolve_device(ns.device))
    write_files(Path(ns.out), file_stem(name, label, precision), rows, list(rows[0]), f"{note}\n\n{table}\n")
    print(note)
    print(table)


def say(what: str) -> None:
    """One line per measurement on a terminal (a benchmark runs for minutes), none in logs."""
    if sys.stderr.isatty():
        print(what, file=sys.stderr, flush=True)


def compile_flag(mode: str) -> str:
    return "" if mode == "off" else f" --compile {mode}"


def compile_suffix(mode: str) -> str:
    return "" if mode == "off" else f"_compile-{mode}"


def skips_note(by_setting: dict[str, int | str], late: int = 0) -> str:
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
