"""Shared fixtures: tiny synthetic data, a tiny model spec, and a temporary model cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REAL_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")


def make_tiny_data(train_count: int = 512, test_count: int = 128, seed: int = 0):
    """Learnable synthetic Fashion-MNIST look-alike: class k is a bright 8×8 block at a class-specific spot.

    Returns ((x_train, y_train), (x_test, y_test)) uint8 arrays with the real dataset's shapes per image.
    """
    rng = np.random.default_rng(seed)

    def split(count: int):
        labels = rng.integers(0, 10, size=count).astype(np.uint8)
        images = rng.integers(0, 40, size=(count, 28, 28)).astype(np.uint8)
        for index, label in enumerate(labels):
            row, col = 2 + (label // 5) * 12, 1 + (label % 5) * 5
            images[index, row : row + 8, col : col + 6] = 200 + rng.integers(0, 55)
        return images, labels

    return split(train_count), split(test_count)


@pytest.fixture(scope="session", autouse=True)
def isolated_roots(tmp_path_factory):
    """No test sees what ships with the app (models, recorded races) or writes to the user's real cache unless it
    asks: both roots of fmnist_core.paths point at empty folders of this session, for subprocesses too."""
    os.environ["FMNIST_SHIPPED_DIR"] = str(tmp_path_factory.mktemp("nothing-shipped"))
    os.environ["FMNIST_CACHE_DIR"] = str(tmp_path_factory.mktemp("user-cache"))


@pytest.fixture(scope="session")
def tiny_data():
    return make_tiny_data()


@pytest.fixture(scope="session")
def tiny_spec():
    """A registry-shaped spec small enough to train in seconds (named model1 so pages treat it as Model 1)."""
    from fmnist_core.models import ModelSpec

    return ModelSpec(
        "model1", "Model 1", first_filters=8, block2_filters=8, block3_filters=8, dense_units=16, dropout=0.1
    )


@pytest.fixture(scope="session")
def tiny_config():
    from fmnist_core.config import TrainConfig

    return TrainConfig(
        epochs=2, batch_size=64, learning_rate=3e-3, train_limit=None, validation_split=0.1, precision="float32"
    )


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """An empty model cache in a temporary folder, exported as FMNIST_CACHE_DIR."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(folder))
    return folder


@pytest.fixture(scope="session")
def trained_cache_dir(tmp_path_factory, tiny_data, tiny_spec, tiny_config) -> Path:
    """A cache folder holding one tiny trained model (trained once per test session)."""
    from fmnist_core.cache import ModelCache
    from fmnist_core.pipeline import train_and_cache

    folder = tmp_path_factory.mktemp("trained-cache")
    train_and_cache(tiny_spec, tiny_config, cache=ModelCache(folder), data=tiny_data)
    return folder


@pytest.fixture
def trained_cache(trained_cache_dir, tmp_path, monkeypatch) -> Path:
    """A private copy of the trained cache, exported as FMNIST_CACHE_DIR (tests may damage it)."""
    import shutil

    folder = tmp_path / "cache"
    shutil.copytree(trained_cache_dir, folder)
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(folder))
    return folder


def require_real_data() -> Path:
    """The Debian copy of Fashion-MNIST; fails (never skips) with the fix when it is missing."""
    if not all(
        (REAL_DATA_DIR / name).is_file()
        for name in (
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
        )
    ):
        pytest.fail(f"Real Fashion-MNIST missing in {REAL_DATA_DIR}: apt-get install -y dataset-fashion-mnist")
    return REAL_DATA_DIR
