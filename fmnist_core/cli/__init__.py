"""Command-line interface: `python -m fmnist_core data|train|evaluate|explain|cache|race|report|bench`.

Each command lives in its own module exposing `register(subparsers)`; the handler it installs returns an
exit code. Errors a user can cause (`FmnistError`) print one clear message and exit with their code:
2 bad arguments or settings, 3 data problem, 4 cache problem, 5 busy, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from fmnist_core.errors import FmnistError

COMMAND_MODULES = ("data", "train", "evaluate", "explain", "cache", "race", "report", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fmnist_core",
        description="Fashion-MNIST CNN Explorer, headless: data, training, evaluation, cache, race, report.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"fmnist_core.cli.{name}_command")
        except ModuleNotFoundError as error:
            if error.name != f"fmnist_core.cli.{name}_command":
                raise
            continue  # A command that is not built yet simply is not offered.
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        return int(arguments.handler(arguments) or 0)
    except FmnistError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("\ninterrupted; nothing half-written was kept.", file=sys.stderr)
        return 130
