"""Real Fashion-MNIST (Debian package dataset-fashion-mnist): loading and the quick preset's accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from fmnist_core.data import loading as data
from tests.conftest import require_real_data

pytestmark = pytest.mark.realdata


def test_real_files_load_with_the_keras_contract(cache_dir, monkeypatch):
    monkeypatch.setenv("FMNIST_DATA_DIR", str(require_real_data()))
    (x_train, y_train), (x_test, y_test) = data.load_fashion_mnist()
    assert x_train.shape == (60000, 28, 28) and y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert x_train.dtype == y_train.dtype == np.uint8
    # Fashion-MNIST is balanced: 6000 training and 1000 test images per class.
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert not data.last_load_report().from_cache
    second = data.load_fashion_mnist()
    assert data.last_load_report().from_cache
    np.testing.assert_array_equal(second[1][0], x_test)


@pytest.mark.slow
def test_model1_quick_preset_reaches_85_percent(cache_dir):
    """The issue's bar: Model 1 with the `quick` preset reaches ≥85% test accuracy on real data."""
    from fmnist_core.config import PRESETS, for_this_machine
    from fmnist_core.training.pipeline import train_and_cache

    require_real_data()
    outcome = train_and_cache("model1", for_this_machine(PRESETS["quick"]))  # As `train --preset quick` trains it.
    assert not outcome.reused
    assert outcome.entry.record.test_accuracy >= 0.85, outcome.entry.record.test_accuracy
