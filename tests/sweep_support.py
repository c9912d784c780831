"""Tiny sweep inputs shared by the sweep tests and the processes they start.

python -m tests.sweep_support CACHE_DIR   runs the tiny sweep into CACHE_DIR on a local cluster (the resume test
                                          kills it half-way).
"""

from __future__ import annotations

import sys

from fmnist_core.config import PRESETS, TrainConfig
from fmnist_core.models.registry import MODEL_SPECS, ModelSpec
from fmnist_core.sweep.result import RunResult, SweepResult, summarize_runs, sweep_id
from tests.conftest import make_tiny_data

TINY_SPECS = (
    ModelSpec("model1", "Model 1", first_filters=4, block2_filters=8, block3_filters=8, dense_units=16, dropout=0.1),
    ModelSpec("model2", "Model 2", first_filters=8, block2_filters=8, block3_filters=8, dense_units=16, dropout=0.1),
)
TINY_CONFIG = TrainConfig(
    epochs=2, batch_size=64, learning_rate=3e-3, train_limit=None, validation_split=0.1, precision="float32"
)
TINY_SEEDS = (1, 2)


def load_tiny_data():
    """The data loader a sweep ships to its workers: tiny synthetic pictures, the same on every call."""
    return make_tiny_data(train_count=384, test_count=96)


def run_tiny_sweep(cache_dir, **options):
    """2 tiny models × 2 seeds into `cache_dir` (options go to run_sweep)."""
    from fmnist_core.store.cache import ModelCache
    from fmnist_core.sweep.runner import run_sweep

    return run_sweep(
        TINY_SPECS, TINY_CONFIG, TINY_SEEDS, cache=ModelCache(cache_dir), load_data=load_tiny_data, **options
    )


# Test accuracy of the registry models on seeds 42, 43, 44 in a made-up sweep (Model 3 − Model 1: 0.3, 0.4, 0.3).
SYNTHETIC_ACCURACIES = {
    "model1": (0.8600, 0.8640, 0.8620),
    "model2": (0.8610, 0.8650, 0.8640),
    "model3": (0.8630, 0.8680, 0.8650),
}
SYNTHETIC_SEEDS = (42, 43, 44)


def synthetic_runs(accuracies=SYNTHETIC_ACCURACIES, seeds=SYNTHETIC_SEEDS) -> tuple[RunResult, ...]:
    """Up to three seeds of the registry models; training time 20, 21, 22 s and 2000, 1999, 1998 img/s by seed."""
    return tuple(
        RunResult(
            model=name,
            title=MODEL_SPECS[name].title,
            seed=seed,
            entry_id=f"{name}-{seed:012x}",
            test_accuracy=accuracies[name][index],
            training_seconds=20.0 + index,
            images_per_second=2000.0 - index,
            reused=False,
            host="h",
            threads=2,
        )
        for index, seed in enumerate(seeds)
        for name in accuracies
    )


def synthetic_sweep(
    config: TrainConfig = PRESETS["quick"],
    preset: str = "quick",
    created: str = "2026-11-30T10:00:00",
    models: tuple[str, ...] = tuple(MODEL_SPECS),
    seeds: tuple[int, ...] = SYNTHETIC_SEEDS,
) -> SweepResult:
    """A made-up sweep of the registry models (or some of them, on the first of the seeds), its statistics computed
    as a real sweep's are."""
    specs = [MODEL_SPECS[name] for name in models]
    runs = synthetic_runs({name: SYNTHETIC_ACCURACIES[name] for name in models}, seeds)
    summaries, comparisons = summarize_runs(specs, runs)
    return SweepResult(
        sweep_id(preset, specs, config, seeds),
        preset,
        config.to_dict(),
        seeds,
        runs,
        summaries,
        comparisons,
        {"kind": "local", "address": None, "threads_per_run": 2, "workers": 1},
        created,
    )


if __name__ == "__main__":
    run_tiny_sweep(sys.argv[1])
