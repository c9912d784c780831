"""The fused batch-norm layer computes what Keras' layer computes, trains the same statistics, and saves/loads."""

from __future__ import annotations

import numpy as np
import pytest

from fmnist_core.machine import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402

from fmnist_core.models.fused_norm import FusedBatchNormalization  # noqa: E402


def _pair(dtype: str = "float32", shape=(8, 6, 6, 5)):
    """A stock and a fused layer with identical, non-trivial weights."""
    rng = np.random.default_rng(1)
    stock = keras.layers.BatchNormalization(momentum=0.9, dtype=dtype)
    fused = FusedBatchNormalization(momentum=0.9, dtype=dtype)
    for layer in (stock, fused):
        layer.build(shape)
    weights = [
        rng.uniform(0.5, 1.5, shape[-1]),
        rng.normal(size=shape[-1]),
        rng.normal(size=shape[-1]),
        rng.uniform(0.5, 2.0, shape[-1]),
    ]
    for layer in (stock, fused):
        layer.set_weights([w.astype("float32") for w in weights])
    inputs = rng.normal(3.0, 2.0, size=shape).astype("float32")
    return stock, fused, inputs


@pytest.mark.parametrize("training", [False, True])
def test_fused_output_matches_keras_in_float32(training):
    stock, fused, inputs = _pair()
    np.testing.assert_allclose(
        fused(inputs, training=training).numpy(), stock(inputs, training=training).numpy(), rtol=1e-4, atol=1e-4
    )


def test_fused_training_updates_moving_statistics_like_keras():
    stock, fused, inputs = _pair()
    initial_variance = fused.moving_variance.numpy().copy()
    stock(inputs, training=True)
    fused(inputs, training=True)
    np.testing.assert_allclose(fused.moving_mean.numpy(), stock.moving_mean.numpy(), rtol=1e-5, atol=1e-5)
    # The kernel feeds the unbiased batch variance (n / (n − 1), n = 8·6·6) into the moving average.
    count = inputs.size // inputs.shape[-1]
    batch_variance = inputs.reshape(-1, inputs.shape[-1]).var(axis=0)
    expected = 0.9 * initial_variance + 0.1 * batch_variance * count / (count - 1)
    np.testing.assert_allclose(fused.moving_variance.numpy(), expected, rtol=1e-4)
    assert not np.allclose(fused.moving_variance.numpy(), initial_variance)


def test_fused_gradients_match_keras():
    stock, fused, inputs = _pair()
    x = tf.constant(inputs)
    grads = []
    for layer in (stock, fused):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.nn.relu(layer(x, training=True)) ** 2)
        grads.append([g.numpy() for g in tape.gradient(loss, [x, *layer.trainable_weights])])
    for stock_grad, fused_grad in zip(*grads, strict=True):
        np.testing.assert_allclose(fused_grad, stock_grad, rtol=1e-3, atol=1e-3)


def test_fused_runs_in_bfloat16_under_mixed_precision():
    stock, fused, inputs = _pair("mixed_bfloat16")
    outputs = fused(inputs, training=True)
    assert outputs.dtype == tf.bfloat16
    assert fused.moving_mean.dtype == "float32"
    # bfloat16 keeps ~3 significant digits.
    np.testing.assert_allclose(
        outputs.numpy().astype("float32"), stock(inputs, training=True).numpy().astype("float32"), rtol=0.05, atol=0.05
    )


def test_fused_falls_back_to_keras_where_the_kernel_does_not_apply():
    layer = FusedBatchNormalization(momentum=0.9)
    flat = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    stock = keras.layers.BatchNormalization(momentum=0.9)
    np.testing.assert_allclose(
        layer(flat, training=True).numpy(), stock(flat, training=True).numpy(), rtol=1e-5, atol=1e-5
    )


def test_model_with_fused_norm_saves_and_loads_in_safe_mode(tmp_path):
    from fmnist_core.models.registry import build_from_spec, get_spec

    model = build_from_spec(get_spec("model1"), seed=0)
    assert any(isinstance(layer, FusedBatchNormalization) for layer in model.layers)
    images = np.random.default_rng(0).uniform(size=(4, 28, 28, 1)).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    assert type(loaded.get_layer("block1_bn")) is FusedBatchNormalization
    np.testing.assert_allclose(
        loaded.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-5, atol=1e-6
    )


def test_stock_layers_on_request():
    from fmnist_core.models.registry import build_from_spec, get_spec

    model = build_from_spec(get_spec("model1"), fused_norm=False)
    assert type(model.get_layer("block1_bn")) is keras.layers.BatchNormalization
