"""How many trainings at once is fastest on this machine? The same sweep on local Dask clusters of 1, 2, … workers.

Each layout trains the same runs (one model, several seeds, one preset) into its own empty cache, with
TensorFlow's threads shared out (cores // workers per run), and the wall time of the whole sweep is taken from
submitting the first run to the last result (cluster start-up included: a user pays it too). It prints, per
layout, the sweep's wall time, runs per minute, each run's training images/s, and the test accuracies: whether
the thread count changes what a seed learns.

    python benchmarks/sweep_workers.py [--model model1] [--preset quick] [--runs 4] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

from fmnist_core.config import PRESETS, for_this_machine, get_preset
from fmnist_core.machine import cpu_model, usable_cores
from fmnist_core.models.registry import MODEL_NAMES, get_spec
from fmnist_core.store.cache import ModelCache
from fmnist_core.sweep.runner import run_sweep, sweep_seeds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="model1", choices=MODEL_NAMES)
    parser.add_argument("--preset", default="quick", choices=list(PRESETS))
    parser.add_argument("--runs", type=int, default=4, help="seeds trained per layout (default 4)")
    parser.add_argument("--workers", default="1,2", help="layouts to time, comma-separated worker counts")
    args = parser.parse_args(argv)
    config, spec = for_this_machine(get_preset(args.preset)), get_spec(args.model)
    seeds = sweep_seeds(config.seed, args.runs)
    layouts = [int(count) for count in args.workers.split(",")]
    print(f"{cpu_model()}, {usable_cores()} cores; {spec.title}, {args.preset} preset, seeds {seeds[0]}–{seeds[-1]}")
    print(f"{'Workers':>7} {'Threads/run':>11} {'Sweep wall':>10} {'Runs/min':>8}  Training img/s per run; accuracy")
    for workers in layouts:
        threads = max(1, usable_cores() // workers)
        with tempfile.TemporaryDirectory(prefix="sweep-bench-") as folder:
            started = time.perf_counter()
            cache = ModelCache(folder)
            result = run_sweep([spec], config, seeds, workers=workers, threads_per_run=threads, cache=cache)
            wall = time.perf_counter() - started
        rates = ", ".join(f"{run.images_per_second:,.0f}" for run in result.runs)
        accuracies = ", ".join(f"{run.test_accuracy:.2%}" for run in result.runs)
        print(f"{workers:>7} {threads:>11} {wall:>9.1f}s {60 * len(seeds) / wall:>8.2f}  {rates}; {accuracies}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
