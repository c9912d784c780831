"""Tiny sweep inputs shared by the sweep tests and the processes they start.

python -m tests.sweep_support CACHE_DIR   runs the tiny sweep into CACHE_DIR on a local cluster (the resume test
                                          kills it half-way).
"""

from __future__ import annotations

import sys

from fmnist_core.config import TrainConfig
from fmnist_core.models import ModelSpec
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
    from fmnist_core.cache import ModelCache
    from fmnist_core.sweep import run_sweep

    return run_sweep(
        TINY_SPECS, TINY_CONFIG, TINY_SEEDS, cache=ModelCache(cache_dir), load_data=load_tiny_data, **options
    )


if __name__ == "__main__":
    run_tiny_sweep(sys.argv[1])
