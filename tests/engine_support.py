"""Data loaders the engine tests ship to their Dask workers (importable there: the workers run from the repository)."""

from __future__ import annotations

from tests.conftest import make_tiny_data


def load_long_data():
    """Enough tiny pictures for a run that lasts long enough to be stopped or to lose its worker mid-way."""
    return make_tiny_data(train_count=4096, test_count=96)
