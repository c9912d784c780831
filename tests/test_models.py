"""The model registry, parametrised over every registered model (a new model is tested for free)."""

from __future__ import annotations

import numpy as np
import pytest

from fmnist_core.models.registry import MODEL_NAMES, MODEL_SPECS, build_model, forward_flops, get_spec, model_size


def test_registry_is_exactly_the_three_mission_models():
    assert MODEL_NAMES == ("model1", "model2", "model3")
    assert [MODEL_SPECS[name].first_filters for name in MODEL_NAMES] == [64, 128, 256]


def test_unknown_name_raises_value_error_listing_valid_ones():
    with pytest.raises(ValueError, match="model1, model2, model3"):
        build_model("resnet")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_first_conv_width_and_softmax_output(name):
    model = build_model(name, seed=0)
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert convs[0].filters == get_spec(name).first_filters
    assert any(type(layer).__name__ == "MaxPooling2D" for layer in model.layers)
    images = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    probabilities = np.asarray(model(images, training=False))
    assert probabilities.shape == (3, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.slow  # Trains a model (besides the session's shared tiny one).
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_one_training_step_lowers_the_loss(name):
    import keras

    model = build_model(name, seed=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", jit_compile=False)
    rng = np.random.default_rng(1)
    images, labels = rng.random((16, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 16)
    before = float(model.evaluate(images, labels, verbose=0))
    for _ in range(3):
        model.train_on_batch(images, labels)
    assert float(model.evaluate(images, labels, verbose=0)) < before


def test_only_the_first_layer_differs_between_models():
    fields = [
        {k: v for k, v in spec.to_dict().items() if k not in ("name", "title", "first_filters")}
        for spec in MODEL_SPECS.values()
    ]
    assert fields[0] == fields[1] == fields[2]


def test_size_grows_with_first_layer_width_and_flops_match_hand_count():
    sizes = [model_size(name) for name in MODEL_NAMES]
    assert sizes[0].parameters < sizes[1].parameters < sizes[2].parameters
    assert sizes[0].forward_flops < sizes[1].forward_flops < sizes[2].forward_flops
    # Hand count for the first conv of Model 1: 28·28 outputs × 3·3·1 inputs × 64 filters, ×2 for multiply-add.
    first_conv_flops = 2 * 28 * 28 * 9 * 1 * 64
    second_conv_flops = 2 * 14 * 14 * 9 * 64 * 64
    model = build_model("model1")
    assert forward_flops(model) > first_conv_flops + second_conv_flops
    assert sizes[0].parameters == model.count_params()


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
def test_precision_keeps_float32_probabilities(precision):
    model = build_model("model1", precision=precision)
    output = model(np.zeros((1, 28, 28, 1), np.float32), training=False)
    assert output.dtype.name == "float32"


def test_block1_pools_before_batch_norm_and_later_blocks_normalise_first():
    """Architecture 2: the wide 28×28 maps are pooled before batch norm and ReLU (the fast-path choice)."""
    model = build_model("model3")
    names = [layer.name for layer in model.layers]
    assert (
        names.index("block1_conv") < names.index("block1_pool") < names.index("block1_bn") < names.index("block1_relu")
    )
    assert model.get_layer("block1_bn").output.shape[1:] == (14, 14, 256)
    assert names.index("block2b_relu") < names.index("block2_pool")
    # 3: models trained on mirrored pictures are also saved mirror-averaged, so older entries stop matching.
    assert get_spec("model3").architecture_version == 3
