"""What the cache saves: a trained model's architecture and weights (mirror-averaged when trained with flips), never
its optimizer state, which the app has no use for (it never resumes training) and which tripled the file.

Saved sizes of the registry models in their shipped form (mirror-averaged), measured by this test (`-rP` prints
them): Model 1 1,870,691 bytes, Model 2 2,021,482, Model 3 2,323,050: 6.2 MB together. Saved with AdamW's state,
Model 1's file was 5.4 MB (8 more bytes per weight).
"""

from __future__ import annotations

import json
import zipfile

import h5py
import numpy as np
import pytest

from fmnist_core.config import PRESETS
from fmnist_core.models.mirror import is_mirror_averaged, mirror_averaged
from fmnist_core.models.registry import MODEL_NAMES, get_spec
from fmnist_core.store.cache import MODEL_FILE, ModelCache
from fmnist_core.training.loop import TrainResult, compile_model
from tests.test_pipeline import trained_without_fitting

# config.json and the HDF5 headers on top of 4 bytes per float32 weight (measured 80-85 KB); AdamW's state would add
# 8 bytes per weight.
FILE_OVERHEAD_BYTES = 128 * 1024


def trained_one_batch(spec, config, progress=None, should_stop=None, data=None) -> TrainResult:
    """Stands in for `train`: the real architecture, compiled as training compiles it, fitted on one batch so that
    the optimizer holds its state (moments and step count) as after a real run."""
    result = trained_without_fitting(spec, config, progress, should_stop, data)
    (x_train, y_train), _ = data
    compile_model(result.model, config, steps_per_epoch=1)
    result.model.fit(x_train[:16, ..., None] / 255.0, y_train[:16], batch_size=16, epochs=1, verbose=0)
    assert result.model.optimizer.variables, "the stand-in must carry optimizer state for the test to mean anything"
    return result


def stored_weight_names(model_file) -> list[str]:
    with zipfile.ZipFile(model_file) as archive, archive.open("model.weights.h5") as weights:
        names: list[str] = []
        h5py.File(weights, "r").visit(names.append)
        return names


# Model 1 in the fast loop; the wider two (seconds more each) with the slow tests.
@pytest.mark.parametrize(
    "name", [name if name == "model1" else pytest.param(name, marks=pytest.mark.slow) for name in MODEL_NAMES]
)
def test_the_cache_saves_weights_and_architecture_without_optimizer_state(name, cache_dir, tiny_data, monkeypatch):
    from fmnist_core.training.pipeline import train_and_cache

    trained = []
    monkeypatch.setattr(
        "fmnist_core.training.pipeline.train",
        lambda *args, **kwargs: trained.append(trained_one_batch(*args, **kwargs)) or trained[-1],
    )
    config = PRESETS["full"]  # Trained with flips: saved mirror-averaged, the shipped models' form.
    outcome = train_and_cache(get_spec(name), config, cache=ModelCache(cache_dir), data=tiny_data)
    entry, network = outcome.entry, trained[0].model
    model_file = entry.path / MODEL_FILE

    names = stored_weight_names(model_file)
    assert names and not [stored for stored in names if "optimizer" in stored], names
    config_json = json.loads(zipfile.ZipFile(model_file).read("config.json"))
    assert not config_json.get("compile_config"), "saved uncompiled: no optimizer or loss to rebuild"
    size = model_file.stat().st_size
    weights_bytes = 4 * network.count_params()
    assert weights_bytes <= size <= weights_bytes + FILE_OVERHEAD_BYTES, (size, weights_bytes)
    print(f"{get_spec(name).title} saved: {size:,} bytes ({network.count_params():,} weights)")

    # Loaded as the app loads it (checksum, safe mode): the custom layers (fused batch norm, the mirror pair)
    # come back and it answers exactly as the trained network, mirror-averaged, does.
    loaded = ModelCache(cache_dir).load_model(entry.entry_id)
    assert is_mirror_averaged(loaded)
    assert [type(layer).__name__ for layer in loaded.layers[2].layers].count("FusedBatchNormalization") == 4
    pictures = tiny_data[1][0][:8, ..., None].astype(np.float32) / 255.0
    expected = mirror_averaged(network)(pictures, training=False)
    np.testing.assert_array_equal(np.asarray(loaded(pictures, training=False)), np.asarray(expected))
    assert entry.record.parameters == network.count_params()
