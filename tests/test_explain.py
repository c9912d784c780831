"""Inside the model (fmnist_core.explain.inside): shapes, dtypes, determinism, known answers and clear errors.

Tiny models built by our factory stand in for the trained ones; one test trains the quick preset on the real
data and runs the deletion test on real test images (marked realdata and slow).
"""

from __future__ import annotations

import numpy as np
import pytest

from fmnist_core.display import format_accuracy
from fmnist_core.machine import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402

from fmnist_core.data.fashion_mnist import CLASS_NAMES  # noqa: E402
from fmnist_core.errors import ExplainError, FmnistError  # noqa: E402
from fmnist_core.explain import inside as explain  # noqa: E402
from fmnist_core.models.mirror import mirror_averaged  # noqa: E402
from fmnist_core.models.registry import build_from_spec  # noqa: E402
from tests.conftest import make_tiny_data, require_real_data  # noqa: E402


@pytest.fixture(scope="module")
def network(tiny_spec):
    return build_from_spec(tiny_spec, seed=3, precision="float32")


@pytest.fixture(scope="module")
def pictures():
    (_, _), (images, labels) = make_tiny_data(train_count=1, test_count=12, seed=5)
    return images, labels


def test_first_layer_filters_are_the_first_kernels(network, tiny_spec):
    filters = explain.first_layer_filters(network)
    assert filters.shape == (tiny_spec.first_filters, 3, 3) and filters.dtype == np.float32
    kernel = network.get_layer("block1_conv").kernel.numpy()
    np.testing.assert_array_equal(filters[2], kernel[:, :, 0, 2])


def test_feature_maps_cover_every_block_with_shapes_and_growing_receptive_fields(network, tiny_spec, pictures):
    layers = explain.feature_maps(network, pictures[0][0])
    assert [layer.name for layer in layers] == ["block1_relu", "block2a_relu", "block2b_relu", "block3_relu"]
    assert [layer.shape for layer in layers] == [(14, 14, 8), (14, 14, 8), (14, 14, 8), (7, 7, 8)]
    assert all(layer.maps.dtype == np.float32 and (layer.maps >= 0).all() for layer in layers)  # After ReLU.
    # 3×3 conv then 2×2 pooling: 4 pixels; each later 3×3 conv adds 2 steps of the layer's stride.
    assert [layer.receptive_field for layer in layers] == [4, 8, 12, 22]
    assert "8 filters" in layers[0].description and layers[0].title == "Block 1"
    # The maps are the model's own intermediate outputs.
    probe = keras.Model(network.input, network.get_layer("block2b_relu").output)
    expected = probe(pictures[0][:1, :, :, None].astype("float32") / 255.0, training=False).numpy()[0]
    np.testing.assert_allclose(layers[2].maps, expected, atol=1e-5)


@pytest.mark.parametrize("method", explain.SALIENCY_METHODS)
def test_saliency_is_a_deterministic_28x28_map_in_0_1(network, pictures, method):
    image = pictures[0][1]
    first = explain.saliency(network, image, method=method)
    assert first.shape == (28, 28) and first.dtype == np.float32
    assert first.min() >= 0.0 and first.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(first, explain.saliency(network, image, method=method))


def test_saliency_explains_the_predicted_class_by_default(network, pictures):
    image = pictures[0][2]
    predicted = int(explain.probabilities(network, image[None]).argmax())
    np.testing.assert_array_equal(explain.saliency(network, image), explain.saliency(network, image, predicted))
    other = (predicted + 1) % 10
    assert not np.array_equal(explain.saliency(network, image), explain.saliency(network, image, other))


def test_uint8_and_unit_float_pictures_give_the_same_answers(network, pictures):
    image = pictures[0][3]
    as_float = image.astype(np.float32) / 255.0
    np.testing.assert_allclose(explain.saliency(network, image), explain.saliency(network, as_float), atol=1e-6)
    np.testing.assert_allclose(explain.embedding(network, image[None]), explain.embedding(network, as_float[None]))


def test_a_batch_and_single_pictures_give_the_same_saliency_and_features(network, pictures):
    images = pictures[0][:5]
    batch = explain.saliency_maps(network, images)
    features = explain.embedding(network, images)
    assert features.shape == (5, 16) and features.dtype == np.float32
    for index, image in enumerate(images):
        np.testing.assert_allclose(explain.saliency(network, image), batch[index], atol=1e-5)
        np.testing.assert_allclose(explain.embedding(network, image[None])[0], features[index], rtol=1e-5, atol=1e-6)


def test_integrated_gradients_add_up_to_the_change_of_the_logit(network, pictures):
    """Completeness: the attributions sum to logit(image) − logit(black) for the explained class."""
    from fmnist_core.explain.inside import _evidence
    from fmnist_core.explain.network import as_batch, network_of

    wired = network_of(network)
    batch = as_batch(pictures[0][:4])
    classes = wired.logits(batch).argmax(axis=1).astype(np.int32)
    attributions = _evidence(wired, batch, classes, "integrated_gradients").reshape(4, -1).sum(axis=1)
    rows = np.arange(4)
    change = wired.logits(batch)[rows, classes] - wired.logits(np.zeros_like(batch))[rows, classes]
    np.testing.assert_allclose(attributions, change, rtol=0.02, atol=0.02)


def test_saliency_of_a_model_that_only_sees_one_region_stays_in_that_region(tiny_spec):
    """The classifier reads only the top-right cell of the last 3×3 grid, whose inputs are rows 0–16, columns 7–27.

    Any pixel outside that receptive field cannot change the answer, so a faithful saliency gives it nothing.
    """
    model = build_from_spec(tiny_spec, seed=11, precision="float32")
    dense = model.get_layer("dense")
    kernel, bias = dense.get_weights()
    channels = model.get_layer("block3_conv").filters
    seen = np.zeros((3, 3, channels), bool)
    seen[0, 2] = True  # Flatten is row-major over (row, column, channel).
    dense.set_weights([np.where(seen.reshape(-1, 1), kernel, 0.0), bias])
    image = np.random.default_rng(0).uniform(0.2, 1.0, (28, 28)).astype(np.float32)
    for method in ("integrated_gradients", "gradient_x_input"):
        for class_index in range(10):
            evidence = explain.saliency(model, image, class_index, method=method)
            assert evidence[17:, :].max() == 0.0 and evidence[:, :7].max() == 0.0, (method, class_index)
        assert explain.saliency(model, image, method=method)[:17, 7:].max() == pytest.approx(1.0), method
    # The input really matters inside the region and not outside it.
    moved = image.copy()
    moved[20:, :5] = 0.0
    np.testing.assert_allclose(explain.probabilities(model, moved[None]), explain.probabilities(model, image[None]))


@pytest.fixture(scope="module")
def block_reader(tiny_spec):
    """A tiny network trained to tell the tiny data set's classes apart by where their bright block is."""
    (images, labels), _ = make_tiny_data(train_count=1024, test_count=1, seed=2)
    model = build_from_spec(tiny_spec, seed=0, precision="float32")
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(images[..., None] / 255.0, labels, batch_size=64, epochs=8, verbose=0)
    return model


def test_saliency_peaks_on_the_block_that_tells_the_classes_apart(block_reader, pictures):
    """In the tiny data set each class is a bright block at its own place: the evidence must sit on it."""
    images, labels = pictures
    predicted = explain.probabilities(block_reader, images).argmax(axis=1)
    right = np.flatnonzero(predicted == labels)
    assert len(right) >= 10, f"the trained tiny model gets only {len(right)} of 12 right"
    for method in ("integrated_gradients", "gradient_x_input"):
        maps = explain.saliency_maps(block_reader, images[right], method=method)
        for evidence, label in zip(maps, labels[right], strict=True):
            row, column = 2 + (label // 5) * 12, 1 + (label % 5) * 5
            block = np.zeros((28, 28), bool)
            block[row : row + 8, column : column + 6] = True
            # The block is 6 % of the picture; it must hold the peak and most of the evidence.
            assert block[np.unravel_index(evidence.argmax(), evidence.shape)], (method, CLASS_NAMES[label])
            assert evidence[block].sum() > 0.5 * evidence.sum(), (method, CLASS_NAMES[label])


def test_the_deletion_test_finds_the_block_readers_saliency_faithful(block_reader, pictures):
    from fmnist_core.explain.faithfulness import DELETION_FRACTIONS, RANDOM, RANDOM_GARMENT, deletion_test

    results = {result.method: result for result in deletion_test(block_reader, pictures[0], random_repeats=2)}
    assert set(results) == {*explain.SALIENCY_METHODS, RANDOM, RANDOM_GARMENT}
    chosen = results[explain.DEFAULT_SALIENCY]
    assert chosen.images == 12 and chosen.fractions == DELETION_FRACTIONS
    assert chosen.beats_random >= 0.8 and chosen.area < results[RANDOM].area
    assert results[RANDOM].beats_random is None and results[RANDOM_GARMENT].background_share == 0.0
    # Nothing hidden yet: every ranking starts from the same confidence.
    assert len({result.mean_confidence[0] for result in results.values()}) == 1


def test_a_mirror_averaged_model_is_explained_by_the_network_inside(network, pictures):
    wrapped = mirror_averaged(network)
    image = pictures[0][4]
    assert explain.describe(wrapped).mirror_averaged and not explain.describe(network).mirror_averaged
    np.testing.assert_array_equal(explain.first_layer_filters(wrapped), explain.first_layer_filters(network))
    np.testing.assert_allclose(explain.saliency(wrapped, image), explain.saliency(network, image), atol=1e-6)
    np.testing.assert_allclose(
        explain.probabilities(wrapped, image[None]), network(image[None, :, :, None] / 255.0).numpy(), atol=1e-5
    )


def test_explain_image_gathers_every_view_in_one_call(network, pictures):
    image = pictures[0][6]
    result = explain.explain_image(network, image, other_class=3)
    assert result.predicted == int(result.probabilities.argmax())
    assert result.probabilities.shape == (10,) and result.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(result.saliency, explain.saliency(network, image), atol=1e-6)
    np.testing.assert_allclose(result.other_saliency, explain.saliency(network, image, 3), atol=1e-6)
    assert result.other_class == 3 and len(result.maps) == 4 and result.seconds > 0
    assert explain.explain_image(network, image).other_saliency is None


def test_embedding_map_marks_the_mistakes(network):
    (_, _), (images, labels) = make_tiny_data(train_count=1, test_count=80, seed=6)
    result = explain.embedding_map(network, images, labels, count=20)
    table = result.table
    assert np.bincount(table["label"], minlength=10).tolist() == [2] * 10, "as many of each class"
    assert len(table) == 20 and {"x", "y", "index", "label", "predicted", "predicted_name", "mistake"} <= set(table)
    shown = table["index"].to_numpy()
    predicted = explain.probabilities(network, images[shown]).argmax(axis=1)
    np.testing.assert_array_equal(table["predicted"], predicted)
    np.testing.assert_array_equal(table["label"], labels[shown])
    np.testing.assert_array_equal(table["mistake"], predicted != labels[shown])
    assert result.accuracy == pytest.approx(float((predicted == labels[shown]).mean()))
    # A subset's accuracy says it is one, and of how many images.
    assert result.accuracy_sentence.startswith(f"{format_accuracy(result.accuracy)} right on these 20 of the 80 test")
    again = explain.embedding_map(network, images, labels, count=20)
    np.testing.assert_array_equal(again.table[["x", "y"]], table[["x", "y"]])  # Seeded sample and projection.


def test_effective_rank_counts_equal_independent_directions():
    assert explain.effective_rank(np.eye(7)) == pytest.approx(7.0)
    assert explain.effective_rank(np.ones((5, 5))) == pytest.approx(1.0)
    assert explain.effective_rank(np.diag([1.0, 1.0, 0.0])) == pytest.approx(2.0)


def test_filter_redundancy_finds_planted_copies_and_a_dead_filter(tiny_spec, pictures):
    """Filters 1–3 copy filter 0 (kernel and batch norm), filter 4 is its negative, filter 7 never fires."""
    model = build_from_spec(tiny_spec, seed=4, precision="float32")
    conv, norm = model.get_layer("block1_conv"), model.get_layer("block1_bn")
    kernel = conv.kernel.numpy()
    kernel[..., 1:4] = kernel[..., :1] * np.array([1.0, 2.0, 0.5])  # Scale does not matter after batch norm.
    kernel[..., 4] = -kernel[..., 0]
    conv.kernel.assign(kernel)
    gamma, beta, mean, variance = norm.get_weights()
    variance[:4] = variance[0] * np.array([1.0, 4.0, 0.25, 1.0])  # Each copy's own scale, normalised away.
    beta[7] = -1e4  # Pushed far below zero: the ReLU never lets it through.
    norm.set_weights([gamma, beta, mean, variance])
    report = explain.filter_redundancy(model, pictures[0])
    assert report.filters == 8 and report.dead == 1
    assert report.near_duplicates >= 4  # Filters 0–3 respond identically.
    assert report.distinct_groups <= 4  # 7 live filters, four of them one group.
    assert report.kernel_near_duplicates >= 5  # The negative is parallel too, by absolute cosine.
    assert 1.0 <= report.effective_filters <= 4.0 + 1e-6
    assert 1.0 <= report.kernel_effective_rank <= explain.KERNEL_DIMENSIONS
    assert report.to_dict()["duplicate_correlation"] == explain.DUPLICATE_CORRELATION


# Errors: always an ExplainError (a ValueError of the project's family) with a message that says what to do -----


@pytest.mark.parametrize(
    "class_index, words",
    [(10, "There is no class 10"), (-1, "There is no class -1"), (2.5, "whole number"), ("3", "whole number")],
)
def test_an_unknown_class_is_refused_clearly(network, pictures, class_index, words):
    with pytest.raises(ExplainError, match=words) as raised:
        explain.saliency(network, pictures[0][0], class_index)
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, FmnistError)
    assert raised.value.exit_code == 2
    assert "0 T-shirt/top" in str(raised.value) or "0 to 9" in str(raised.value)


@pytest.mark.parametrize(
    "image, words",
    [
        (np.zeros((28,), np.uint8), "shape (28,)"),
        (np.zeros((27, 28), np.uint8), "shape (27, 28)"),
        (np.zeros((2, 28, 28), np.uint8), "one 28×28 image"),
        (np.zeros((28, 28), np.int64), "got int64"),
        (np.full((28, 28), 255.0, np.float32), "from 255 to 255"),
        (np.full((28, 28), np.nan, np.float32), "NaN"),
        ([["a"] * 28] * 28, "got <U1"),
    ],
)
def test_a_wrong_image_is_refused_clearly(network, image, words):
    for view in (explain.saliency, explain.feature_maps, explain.explain_image):
        with pytest.raises(ExplainError, match=words.replace("(", r"\(").replace(")", r"\)")):
            view(network, image)


def test_wrong_image_batches_are_refused_clearly(network):
    with pytest.raises(ExplainError, match="at least one image"):
        explain.embedding(network, np.zeros((0, 28, 28), np.uint8))
    with pytest.raises(ExplainError, match="2 classes for 3 images"):
        explain.saliency_maps(network, np.zeros((3, 28, 28), np.uint8), [1, 2])
    with pytest.raises(ExplainError, match="Unknown saliency method 'lime'"):
        explain.saliency(network, np.zeros((28, 28), np.uint8), method="lime")


def _other_cnn():
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(4, 3, name="block1_conv")(inputs)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize(
    "model, words",
    [
        ("model1", "it is a str, not a Keras model"),
        (None, "it is a NoneType"),
        (
            keras.Sequential([keras.Input((4,)), keras.layers.Dense(10)]),
            "it lacks the layers image, block1_conv, block1_pool and ",
        ),
        (_other_cnn(), "it lacks the layers image, block1_pool, block1_bn and "),
    ],
    ids=["text", "none", "dense-only", "other-cnn"],
)
def test_a_model_that_is_not_ours_is_refused_clearly(model, words, pictures):
    for view in (explain.first_layer_filters, explain.filter_redundancy):
        with pytest.raises(ExplainError, match="not one of the explorer's CNNs") as raised:
            view(model)
        assert words in str(raised.value)
    with pytest.raises(ExplainError, match="not one of the explorer's CNNs"):
        explain.saliency(model, pictures[0][0])


# Real data ------------------------------------------------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.slow
def test_on_real_pictures_hiding_the_top_pixels_hurts_more_than_hiding_random_ones(cache_dir):
    """The deletion test on 40 real test images with a quick-preset Model 1."""
    from fmnist_core.config import PRESETS, for_this_machine
    from fmnist_core.data.loading import load_fashion_mnist
    from fmnist_core.explain.faithfulness import RANDOM, RANDOM_GARMENT, deletion_test
    from fmnist_core.store.cache import ModelCache
    from fmnist_core.training.pipeline import train_and_cache

    require_real_data()
    entry = train_and_cache("model1", for_this_machine(PRESETS["quick"])).entry  # As `train --preset quick` does.
    model = ModelCache().load_model(entry.entry_id)
    (_, _), (images, _) = load_fashion_mnist()
    picked = np.random.default_rng(0).choice(len(images), 40, replace=False)
    results = {result.method: result for result in deletion_test(model, images[picked], random_repeats=2)}
    chosen = results[explain.DEFAULT_SALIENCY]
    assert chosen.beats_random >= 0.8 and chosen.beats_random_garment >= 0.6, chosen
    assert chosen.area < results[RANDOM_GARMENT].area < results[RANDOM].area
    # Its top pixels are garment, not background: a black pixel's attribution is 0 (the pixel times its mean
    # gradient), so one only comes in as a tie among zeros, on a picture with little positive evidence.
    assert chosen.background_share < 0.02 and results[RANDOM_GARMENT].background_share < 0.02
    black = float((images[picked] == 0).mean())
    assert results[RANDOM].background_share == pytest.approx(black, abs=0.05)
    # Hiding pixels only lowers confidence on average, from the unhidden picture's.
    assert chosen.mean_confidence[0] == results[RANDOM].mean_confidence[0]
    assert chosen.mean_confidence[-1] < chosen.mean_confidence[0]
