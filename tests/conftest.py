"""Shared fixtures: tiny synthetic data, a tiny model spec, a temporary model cache, and the fast loop's guard."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REAL_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
# Tests with one of these markers may start processes and read the real dataset; the others form the fast loop.
HEAVY_MARKERS = ("slow", "realdata", "browser")


@pytest.fixture(autouse=True)
def unmarked_tests_stay_fast(request, monkeypatch):
    """The unmarked tests are `make check`'s fast loop: one that starts a process or reads the real dataset fails
    here, naming the marker it needs, instead of quietly slowing the loop down."""
    if any(request.node.get_closest_marker(marker) for marker in HEAVY_MARKERS):
        return
    from fmnist_core.data import loading as data

    original_popen, original_read, original_npz = subprocess.Popen.__init__, data.read_verified, data._read_array_cache
    official = {spec.sha256 for spec in data.FILES.values()}

    def popen(self, arguments, *more, **options):
        # Python processes are ours (the CLI, race lanes, cache workers, a Streamlit server); quick probes such
        # as nvidia-smi or lscpu, which libraries and the race page run, are not what makes a test slow.
        program = arguments[0] if isinstance(arguments, list | tuple) else str(arguments).split()[0]
        if Path(str(program)).name.startswith("python") or str(program) == sys.executable:
            pytest.fail(f"An unmarked test started a process ({arguments!r}): mark it @pytest.mark.slow.")
        original_popen(self, arguments, *more, **options)

    def read_verified(path, spec, verify=True):
        array = original_read(path, spec, verify)
        if verify and spec.sha256 in official:  # It matched the official SHA-256: the real Fashion-MNIST.
            pytest.fail(f"An unmarked test read the real dataset ({path}): mark it @pytest.mark.realdata.")
        return array

    def read_array_cache(path):
        arrays = original_npz(path)  # Raises for a damaged cache; accepts only arrays made from the files in FILES.
        if {spec.sha256 for spec in data.FILES.values()} == official:  # Not a test's tiny stand-in: the real ones.
            pytest.fail(f"An unmarked test read the real dataset ({path}): mark it @pytest.mark.realdata.")
        return arrays

    def start_local_cluster(*arguments, **keywords):
        # Dask starts its worker processes through multiprocessing, not Popen. Raised as the engine's own error, so
        # what the app does without an engine (the Train page's speed probe: "not known yet") is what the test sees.
        from fmnist_core.errors import ClusterError

        raise ClusterError("An unmarked test started no Dask cluster (mark it @pytest.mark.slow).")

    monkeypatch.setattr(subprocess.Popen, "__init__", popen)
    monkeypatch.setattr("fmnist_core.engine.cluster.start_local_cluster", start_local_cluster)
    monkeypatch.setattr(data, "read_verified", read_verified)
    monkeypatch.setattr(data, "_read_array_cache", read_array_cache)


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
    return Path(os.environ["FMNIST_SHIPPED_DIR"])


@pytest.fixture(autouse=True)
def nothing_ships_after_the_test(isolated_roots):
    """The session's "nothing shipped" folder stays empty: a test that ships something (a recorded race or sweep)
    must point FMNIST_SHIPPED_DIR at its own folder, or every later test would see it. Fails the test that leaked."""
    yield
    leaked = sorted(path.name for path in isolated_roots.iterdir())
    assert not leaked, f"this test wrote {leaked} into the session's shared, empty shipped folder {isolated_roots}"


@pytest.fixture(scope="session")
def tiny_data():
    return make_tiny_data()


@pytest.fixture(scope="session")
def tiny_spec():
    """A registry-shaped spec small enough to train in seconds (named model1 so pages treat it as Model 1)."""
    from fmnist_core.models.registry import ModelSpec

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
    from fmnist_core.store.cache import ModelCache
    from fmnist_core.training.pipeline import train_and_cache

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
