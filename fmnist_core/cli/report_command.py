"""`report`: the Markdown comparison of Model 1, 2 and 3 (seeds and races too) that the Compare page downloads."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fmnist_core.cli.train_command import command_line
from fmnist_core.data.loading import load_fashion_mnist
from fmnist_core.errors import ConfigError
from fmnist_core.files import check_output_file, write_output
from fmnist_core.models.registry import MODEL_NAMES
from fmnist_core.store.cache import ModelCache


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write the Markdown/CSV report comparing the cached models",
        description="Compare the best cached entry of each model (or the --entry ones) in a hand-out report.",
    )
    parser.add_argument("--out", type=Path, help="write the Markdown here (default: print it)")
    parser.add_argument("--csv", type=Path, help="also write the comparison table as CSV here")
    parser.add_argument(
        "--entry",
        action="append",
        default=[],
        metavar="ENTRY_ID",
        help="use this cache entry for its model instead of the most accurate one (repeatable)",
    )
    parser.add_argument(
        "--no-latency", action="store_true", help="skip loading each model to time single-image predictions"
    )
    parser.set_defaults(handler=run)


def run(arguments: argparse.Namespace) -> int:
    # pandas (for the tables) is imported here, not when the parser is built for every command.
    from fmnist_core.paths import recorded_sweeps_dir
    from fmnist_core.race.summary import load_races
    from fmnist_core.report import comparison as report
    from fmnist_core.sweep.report import pick_sweep
    from fmnist_core.sweep.result import load_sweeps

    # The output paths first: a report that cannot be written is refused before models are loaded and timed.
    for option, path in (("--out", arguments.out), ("--csv", arguments.csv)):
        if path is not None:
            check_output_file(path, option)
    cache = ModelCache()
    picked = {}
    for entry_id in arguments.entry:
        entry = cache.inspect(entry_id)
        if not entry.ok:
            raise ConfigError(f"Cache entry {entry_id} is damaged ({entry.problem}); pick another (see `cache list`).")
        if entry.model_name not in MODEL_NAMES:
            raise ConfigError(f"Cache entry {entry_id} is not one of {', '.join(MODEL_NAMES)}.")
        picked[entry.model_name] = entry
    chosen = report.chosen_entries(cache.list(), picked)

    latencies = None
    if not arguments.no_latency:
        _, (x_test, _) = load_fashion_mnist()
        latencies = {}
        for entry in (entry for entry in chosen.values() if entry is not None and entry.ok):
            print(f"timing single-image predictions of {entry.entry_id}…", file=sys.stderr)
            latencies[entry.entry_id] = report.measure_latency(cache.load_model(entry.entry_id), x_test)

    sweeps, problems = load_sweeps(cache.root, recorded_sweeps_dir())
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    sweep = pick_sweep(sweeps, [entry.record.config for entry in chosen.values() if entry is not None and entry.ok])
    result = report.build_report(chosen, command_line, latencies, load_races(), sweep=sweep)
    if arguments.out:
        write_output(arguments.out, result.markdown, "--out")
        print(f"wrote {arguments.out}")
    else:
        sys.stdout.write(result.markdown)
    if arguments.csv:
        write_output(arguments.csv, result.csv, "--csv")
        print(f"wrote {arguments.csv}", file=sys.stderr if not arguments.out else sys.stdout)
    return 0
