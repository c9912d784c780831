"""Tiny sweep inputs shared by the sweep tests and the worker processes they start (importable as a module)."""

from __future__ import annotations

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


def load_tiny_data():
    """The data loader a sweep ships to its workers: tiny synthetic pictures, the same on every call."""
    return make_tiny_data(train_count=384, test_count=96)
