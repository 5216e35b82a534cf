"""The ``isda-bench perf`` command line: a fixed table of benchmarks (name → its options, its run), the
parser built from it, and ``main([benchmark, ...])``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple

from bench.common.errors import OneLineParser
from bench.perf import accuracy, isda, isda_ops, pipeline, report, step


class Benchmark(NamedTuple):
    add_args: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# In the order `isda-bench perf --help` lists them; read-only, so that nothing can change it at run time.
COMMANDS: Mapping[str, Benchmark] = MappingProxyType({
    "isda": Benchmark(isda.add_args, isda.run),
    "isda-ops": Benchmark(isda_ops.add_args, isda_ops.run),
    "step": Benchmark(step.add_args, step.run),
    "loader": Benchmark(pipeline.add_loader_args, pipeline.run_loader),
    "epoch": Benchmark(pipeline.add_epoch_args, pipeline.run_epoch),
    "accuracy": Benchmark(accuracy.add_args, accuracy.run),
    "report": Benchmark(report.add_args, report.run),
})


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="isda-bench perf", description="Benchmarks: ISDA alone (isda, "
                           "isda-ops), training steps, input pipeline, epochs, accuracy, report.")
    sub = parser.add_subparsers(dest="subcommand", required=True)
    for name, benchmark in COMMANDS.items():
        benchmark.add_args(sub.add_parser(name))
    return parser


def main(argv: list[str]) -> int:
    ns = build_parser().parse_args(argv)
    return COMMANDS[ns.subcommand].run(ns)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
