"""The command line of isda-bench: ``main`` parses the arguments and runs a command (bench.cli.commands)."""

from bench.cli.commands import main

__all__ = ["main"]
