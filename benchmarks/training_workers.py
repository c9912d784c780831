"""One training worker or two: what running two trainings at once does on this machine.

Two requests (Model 1, the same settings but different seeds, so they are different models) go through the
app's job manager and `start_training_job`, as two visitors' requests would: once with `workers=1` (one after
the other) and once with `workers=2` (side by side), alternating, each into an empty cache folder. Reported
per mode: wall time for both, each run's training images per second, the process's peak thread count (the
jobs share TensorFlow's process-wide thread pools, so a second worker should not add compute threads), and
whether the two models came out the same as in the other mode (Keras seeds are process-wide, so runs side by
side can draw each other's random numbers).

Usage: .venv/bin/python benchmarks/training_workers.py [--repeats 2] [--epochs 1] [--images 9000]
Run it alone on the machine (`flock -x /work/cpu.lock ...`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from fmnist_core.config import PRESETS, for_this_machine
from fmnist_core.jobs.queue import DONE, JobManager
from fmnist_core.machine import cpu_model, import_tensorflow, usable_cores
from fmnist_core.store.cache import ModelCache
from fmnist_core.training.pipeline import start_training_job

PROJECT_ROOT = Path(__file__).resolve().parent.parent

SEEDS = (1, 2)


def thread_count() -> int:
    return len(os.listdir("/proc/self/task"))


def run_mode(workers: int, config, folder: Path) -> dict:
    """Both requests through a manager with `workers`; wall time, speeds, peak threads, test losses."""
    manager = JobManager(workers=workers)
    cache = ModelCache(folder)
    peak, done = [thread_count()], threading.Event()

    def watch() -> None:
        while not done.wait(0.2):
            peak.append(thread_count())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.perf_counter()
    jobs = [
        start_training_job(manager, "model1", config.replace(seed=seed), cache, owner=f"{seed:032x}") for seed in SEEDS
    ]
    finals = [manager.wait(job.job_id) for job in jobs]
    wall = time.perf_counter() - started
    done.set()
    watcher.join()
    failed = [final.error for final in finals if final.state != DONE]
    if failed:
        sys.exit(f"a training failed: {failed}")
    entries = [final.result.entry for final in finals]
    return {
        "wall_seconds": wall,
        "images_per_second": [entry.record.images_per_second for entry in entries],
        "peak_threads": max(peak),
        "test_losses": [entry.record.evaluation.test_loss for entry in entries],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each mode (default 2)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--images", type=int, default=9000, help="training images per run (default 9000)")
    arguments = parser.parse_args()
    config = for_this_machine(PRESETS["quick"]).replace(epochs=arguments.epochs, train_limit=arguments.images)
    tf = import_tensorflow()
    print(
        f"{cpu_model()}, {usable_cores()} cores, TensorFlow {tf.__version__}; two Model 1 runs of "
        f"{arguments.epochs} epoch(s) x {arguments.images:,} images, {config.precision}, XLA off; threads at start: "
        f"{thread_count()}"
    )
    results: dict[int, list[dict]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="training-workers-") as folder:
        for repeat in range(arguments.repeats):
            for workers in (1, 2):
                result = run_mode(workers, config, Path(folder) / f"{workers}-{repeat}")
                results[workers].append(result)
                speeds = ", ".join(f"{speed:,.0f}" for speed in result["images_per_second"])
                print(
                    f"workers={workers} run {repeat + 1}: both done in {result['wall_seconds']:.1f} s; "
                    f"img/s per run {speeds}; peak threads {result['peak_threads']}; "
                    f"test losses {result['test_losses']}"
                )
    for workers, runs in results.items():
        print(
            f"workers={workers}: median wall {statistics.median(r['wall_seconds'] for r in runs):.1f} s for both, "
            f"peak threads {max(r['peak_threads'] for r in runs)}"
        )
    same = all(run["test_losses"] == results[1][0]["test_losses"] for runs in results.values() for run in runs)
    print(f"same models in every run and mode (test losses equal): {'yes' if same else 'no'}")


if __name__ == "__main__":
    main()
