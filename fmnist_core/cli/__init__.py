"""Command-line interface: `python -m fmnist_core data|train|evaluate|explain|attack|cache|race|report|bench|sweep`.

Each command lives in its own module exposing `register(subparsers)`; the handler it installs returns an
exit code. Errors a user can cause (`FmnistError`) print one clear message and exit with their code:
2 bad arguments or settings, 3 data problem, 4 cache problem, 5 busy, 6 distributed engine (sweep),
130 interrupted.
"""

from __future__ import annotations

import argparse
import sys

from fmnist_core.cli import (
    attack_command,
    bench_command,
    cache_command,
    data_command,
    evaluate_command,
    explain_command,
    race_command,
    report_command,
    sweep_command,
    train_command,
)
from fmnist_core.errors import FmnistError

COMMANDS = (
    data_command,
    train_command,
    evaluate_command,
    explain_command,
    attack_command,
    cache_command,
    race_command,
    report_command,
    bench_command,
    sweep_command,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fmnist_core",
        description="Fashion-MNIST CNN Explorer, headless: data, training, evaluation, cache, race, report, sweep.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(subparsers)
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
