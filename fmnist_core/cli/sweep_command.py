"""`sweep`: every model × several seeds on Dask distributed, then means, intervals and paired verdicts."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from fmnist_core.cli.output import ProgressBar, print_json
from fmnist_core.cli.train_command import add_config_arguments, config_from_arguments
from fmnist_core.config import PRESETS, decimal_number, for_this_machine, precision_note, whole_number
from fmnist_core.engine.cluster import SCHEDULER_VARIABLE
from fmnist_core.errors import ConfigError
from fmnist_core.files import check_output_file
from fmnist_core.models.registry import MODEL_NAMES
from fmnist_core.paths import writable_cache_folder


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="train each model with several seeds; means, 95 %% intervals, paired verdicts",
        description=(
            "Train every (model, seed) pair on Dask distributed (a local cluster by default) or reuse its cache "
            "entry, then report per model the mean, standard deviation and 95 % t interval of test accuracy, "
            "training time and images/s, and paired differences between the models over the same seeds. "
            "Interrupted sweeps resume: finished runs are cache entries."
        ),
    )
    parser.add_argument(
        "--models", default=",".join(MODEL_NAMES), help=f"comma-separated (default {','.join(MODEL_NAMES)})"
    )
    parser.add_argument(
        "--seeds",
        type=whole_number,
        default=5,
        help="seeds per model, counting up from --seed (the preset's) (default 5)",
    )
    add_config_arguments(parser)
    parser.add_argument(
        "--scheduler",
        metavar="tcp://HOST:8786",
        default=os.environ.get(SCHEDULER_VARIABLE) or None,
        help=f"a running Dask scheduler (default: ${SCHEDULER_VARIABLE}, else a local cluster)",
    )
    parser.add_argument(
        "--workers",
        type=whole_number,
        help="trainings at once on this machine without --scheduler (default: measured best)",
    )
    parser.add_argument(
        "--threads-per-run", type=whole_number, help="TensorFlow threads per training (default: cores shared)"
    )
    parser.add_argument(
        "--worker-wait",
        type=decimal_number,
        default=120.0,
        metavar="SECONDS",
        help="give up after this long without any worker connected (default 120)",
    )
    parser.add_argument("--out", type=Path, help="also write the sweep's JSON here")
    parser.add_argument("--json", action="store_true", help="print the sweep's JSON instead of tables")
    parser.set_defaults(handler=run)


def parse_models(text: str) -> list:
    from fmnist_core.models.registry import get_spec

    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names or len(set(names)) != len(names):
        raise ConfigError(f"--models needs distinct model names separated by commas (got {text!r}).")
    return [get_spec(name) for name in names]


def run(arguments: argparse.Namespace) -> int:
    from fmnist_core.store.cache import ModelCache
    from fmnist_core.sweep.result import sweep_path
    from fmnist_core.sweep.runner import DEFAULT_LOCAL_WORKERS, run_sweep, sweep_seeds

    specs = parse_models(arguments.models)
    config = config_from_arguments(arguments)
    note = None
    if arguments.precision is None:
        note = precision_note(config)
        config = for_this_machine(config)
    seeds = sweep_seeds(config.seed, arguments.seeds)
    for name, value in (("--workers", arguments.workers), ("--threads-per-run", arguments.threads_per_run)):
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be at least 1 (got {value}).")
    if not arguments.worker_wait > 0:
        raise ConfigError(f"--worker-wait must be more than 0 seconds (got {arguments.worker_wait:g}).")
    if arguments.scheduler and arguments.workers is not None:
        raise ConfigError(
            f"--workers sizes the local cluster; with --scheduler (or {SCHEDULER_VARIABLE}), start as many workers as "
            "you want."
        )
    cache = ModelCache()
    # Before the first run: where the sweep will be saved (a sweep of hours must not end on an unwritable path).
    writable_cache_folder("sweeps", root=cache.root)
    if arguments.out is not None:
        check_output_file(arguments.out, "--out")
    # The preset in this machine's precision is still that preset (as `config.preset_name` counts it).
    same_preset = PRESETS[arguments.preset].replace(seed=config.seed, precision=config.precision) == config
    preset = arguments.preset if same_preset else "custom"
    display = SweepDisplay(len(specs) * len(seeds), quiet=arguments.json)
    display.say(
        f"Sweep: {', '.join(spec.title for spec in specs)} × {len(seeds)} seeds ({seeds[0]}–{seeds[-1]}), "
        f"{preset} preset, on "
        + (f"the Dask scheduler at {arguments.scheduler}" if arguments.scheduler else "a local Dask cluster")
    )
    if note:
        display.say(f"note: {note} (--precision mixed_bfloat16 keeps bfloat16)")
    try:
        result = run_sweep(
            specs,
            config,
            seeds,
            preset=preset,
            scheduler=arguments.scheduler,
            workers=arguments.workers or DEFAULT_LOCAL_WORKERS,
            threads_per_run=arguments.threads_per_run,
            on_event=display.show,
            worker_wait_seconds=arguments.worker_wait,
            cache=cache,
            out=arguments.out,
        )
    except KeyboardInterrupt:
        print(
            "\ninterrupted; the runs that finished are kept in the model cache: run the same command again to resume.",
            file=sys.stderr,
        )
        return 130
    kept = sweep_path(cache.root, result.sweep_id)
    if arguments.json:
        print_json({**result.to_dict(), "saved_to": str(kept)})
        return 0
    print_tables(result)
    print(f"\nSaved to {kept}" + (f" and {arguments.out}" if arguments.out else ""))
    return 0


class SweepDisplay:
    """A live bar per running run (redrawn in a terminal), a line per finished one; all on stderr."""

    def __init__(self, total_runs: int, quiet: bool = False, stream=None):
        self.total_runs, self.quiet = total_runs, quiet
        self.bar = ProgressBar(stream or sys.stderr)
        self.stream = self.bar.stream
        self.active: dict[tuple[str, int], tuple[float, str, float]] = {}  # run → (fraction, text, started)
        self.done = 0
        self.drawn_lines = 0
        self.last_draw = 0.0

    def say(self, text: str) -> None:
        if not self.quiet:
            self._clear()
            self.bar.message(text)
            self._draw(force=True)

    def show(self, event) -> None:
        if self.quiet:
            return
        run = (event.model, event.seed)
        label = f"{event.model} · seed {event.seed}"
        if event.kind == "progress":
            if run not in self.active and not self.bar.interactive:
                self.bar.message(f"{label}: started on worker {event.worker}")
            started = self.active.get(run, (0.0, "", time.monotonic()))[2]
            self.active[run] = (event.fraction, event.text, started)
            self._draw()
            return
        if event.kind == "note":
            self.say(event.text)
            return
        self.active.pop(run, None)
        self.done += 1
        if event.kind == "failed":
            line = f"✗ {label}: failed: {event.text}"
        else:
            how = "in the cache" if event.run.reused else f"trained in {event.run.training_seconds:.1f} s"
            line = f"✓ {label}: {event.run.test_accuracy:.2%} test accuracy, {how}"
        self.say(f"[{self.done}/{self.total_runs}] {line}")

    def _clear(self) -> None:
        if self.bar.interactive and self.drawn_lines:
            self.stream.write(f"\x1b[{self.drawn_lines}F\x1b[J")
            self.drawn_lines = 0

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.bar.interactive or (not force and now - self.last_draw < 0.1):
            return
        self._clear()
        for (model, seed), (fraction, text, started) in self.active.items():
            percent = round(100 * fraction)
            self.stream.write(f"{model} · seed {seed}  {self.bar.line(percent, 100, now - started, {}, text)}\n")
        self.drawn_lines = len(self.active)
        self.last_draw = now
        self.stream.flush()


def print_tables(result) -> None:
    """Per-model means with intervals, then one verdict per pair of models."""
    seeds = f"{result.seed_count} seed{'s' if result.seed_count != 1 else ''} per model"
    print(f"\n{seeds} ({', '.join(map(str, result.seeds))}); mean ± 95 % interval (sd):")
    header = f"{'Model':<9} {'Filters':>7}  {'Test accuracy':>26}  {'Training time':>24}  {'Images/s':>22}"
    print(header)
    print("-" * len(header))
    for summary in result.models:
        print(
            f"{summary.title:<9} {summary.first_filters:>7}  "
            f"{format_summary(summary.test_accuracy, '{:.2f} %', '{:.2f}'):>26}  "
            f"{format_summary(summary.training_seconds, '{:.1f} s', '{:.1f}'):>24}  "
            f"{format_summary(summary.images_per_second, '{:,.0f}', '{:,.0f}'):>22}"
        )
    if not result.comparisons:  # One model: nothing to pair.
        return
    print("\nPaired differences in test accuracy (same seeds):")
    for comparison in result.comparisons:
        print(f"  {comparison.verdict}")


def format_summary(summary, value_format: str, spread_format: str) -> str:
    """'86.41 % ± 0.12 (sd 0.10)', or the value alone with one seed."""
    text = value_format.format(summary.mean)
    if summary.half_width is None:
        return f"{text} (one seed)"
    spread, deviation = spread_format.format(summary.half_width), spread_format.format(summary.standard_deviation)
    return f"{text} ± {spread} (sd {deviation})"
