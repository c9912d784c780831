"""Tests for fmnist_core.data.explore on tiny synthetic data: filtering, paging, tables, maps."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fmnist_core.data import explore
from fmnist_core.data.fashion_mnist import CLASS_NAMES, NUM_CLASSES
from fmnist_core.errors import ConfigError


@pytest.fixture
def train_split(tiny_data):
    (images, labels), _ = tiny_data
    return images, labels


def test_class_indices_keeps_dataset_order_and_only_chosen_classes(train_split):
    _, labels = train_split
    indices = explore.class_indices(labels, [3, 1])
    assert np.all(np.diff(indices) > 0)
    assert set(labels[indices]) <= {1, 3}
    assert len(indices) == np.isin(labels, [1, 3]).sum()


@pytest.mark.parametrize("classes", [[], [NUM_CLASSES], [-1]])
def test_class_indices_rejects_no_or_unknown_classes(train_split, classes):
    with pytest.raises(ConfigError):
        explore.class_indices(train_split[1], classes)


def test_page_of_slices_and_clamps():
    indices = np.arange(95)
    first = explore.page_of(indices, 1, 40)
    assert (first.page, first.pages, first.total) == (1, 3, 95)
    assert list(first.indices) == list(range(40))
    last = explore.page_of(indices, 99, 40)
    assert last.page == 3 and list(last.indices) == list(range(80, 95))
    assert explore.page_of(indices, -5, 40).page == 1
    empty = explore.page_of(np.array([], dtype=int), 1, 40)
    assert (empty.page, empty.pages, len(empty.indices)) == (1, 1, 0)
    with pytest.raises(ConfigError):
        explore.page_of(indices, 1, 0)


def test_to_display_enlarges_with_square_pixels_and_clips():
    images = np.array([[[0.4, 300.0], [-2.0, 128.6]]])
    shown = explore.to_display(images, scale=3)
    assert shown.shape == (1, 6, 6) and shown.dtype == np.uint8
    assert np.all(shown[0, :3, :3] == 0) and np.all(shown[0, :3, 3:] == 255) and np.all(shown[0, 3:, 3:] == 129)


def test_class_balance_counts_every_class(train_split):
    _, labels = train_split
    table = explore.class_balance(labels)
    assert list(table["class_name"]) == list(CLASS_NAMES)
    assert list(table["count"]) == list(np.bincount(labels, minlength=NUM_CLASSES))
    assert table["share"].sum() == pytest.approx(1.0)


def test_the_balance_caption_says_what_the_chart_shows():
    balanced = explore.class_balance(np.repeat(np.arange(NUM_CLASSES), 3))
    every = explore.balance_sentence(balanced, range(NUM_CLASSES))
    assert every.startswith("Every class has the same number of pictures (3)") and "grey" not in every
    assert explore.balance_sentence(balanced, [0, 1]).endswith("The 8 grey bars are classes not picked above.")
    assert explore.balance_sentence(balanced, range(9)).endswith(" The grey bar is the class not picked above.")
    uneven = explore.class_balance(np.array([0, 0, 1, *range(2, NUM_CLASSES)]))
    assert explore.balance_sentence(uneven, range(NUM_CLASSES)) == "Classes have 1 to 2 pictures each."


def test_the_histogram_caption_reads_its_peak_and_middle_from_the_data():
    # Nine pixels near white (220) and one black: the peak is 216-223, not 'mid-grey'.
    images = np.array([[220] * 9 + [0]], dtype=np.uint8)
    said = explore.histogram_sentence(explore.pixel_histogram(images, bins=32))
    assert "most common brightness here is 216–223 (90% of the pixels shown)" in said
    assert "half of them are darker than 224" in said


def test_mean_images_match_a_direct_average_and_empty_classes_are_black(train_split):
    images, labels = train_split
    subset = labels != 4
    means = explore.mean_images(images[subset], labels[subset], [2, 4])
    assert means.shape == (2, 28, 28) and means.dtype == np.float32
    np.testing.assert_allclose(means[0], images[labels == 2].mean(axis=0), rtol=1e-5)
    assert not means[1].any()


def test_pixel_histogram_counts_every_pixel_or_only_non_background(train_split):
    images, _ = train_split
    every = explore.pixel_histogram(images, bins=16)
    assert len(every) == 16 and every["count"].sum() == images.size
    assert every["start"].iloc[0] == 0 and every["end"].iloc[-1] == 256
    garment = explore.pixel_histogram(images, bins=16, skip_background=True)
    assert garment["count"].sum() == np.count_nonzero(images)
    assert garment["share"].sum() == pytest.approx(1.0)
    with pytest.raises(ConfigError):
        explore.pixel_histogram(images, bins=0)


def test_stratified_sample_is_balanced_seeded_and_unique(train_split):
    _, labels = train_split
    sample = explore.stratified_sample(labels, [0, 5, 9], 30, seed=1)
    assert len(sample) == 30 and len(set(sample)) == 30
    assert sorted(np.bincount(labels[sample], minlength=NUM_CLASSES)[[0, 5, 9]]) == [10, 10, 10]
    assert np.array_equal(sample, explore.stratified_sample(labels, [0, 5, 9], 30, seed=1))
    assert not np.array_equal(sample, explore.stratified_sample(labels, [0, 5, 9], 30, seed=2))
    # Asking for more than a class has gives all of it, never duplicates.
    everything = explore.stratified_sample(labels, [7], 10_000)
    assert len(everything) == np.sum(labels == 7)
    with pytest.raises(ConfigError):
        explore.stratified_sample(labels, [0], 0)


def test_image_data_url_is_an_enlarged_png_of_the_image(train_split):
    images, _ = train_split
    url = explore.image_data_url(images[0], scale=2)
    assert url.startswith("data:image/png;base64,")
    decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
    assert decoded.shape == (56, 56)
    assert np.array_equal(decoded[::2, ::2], images[0])


@pytest.mark.parametrize("method", explore.EMBEDDING_METHODS)
def test_embed_puts_look_alike_images_next_to_each_other(train_split, method):
    images, labels = train_split
    sample = explore.stratified_sample(labels, range(NUM_CLASSES), 100, seed=0)
    embedding = explore.embed(images, labels, sample, method=method, seed=0)
    table = embedding.table
    assert list(table.columns) == ["x", "y", "index", "label", "class_name", "image"]
    assert list(table["index"]) == list(sample) and list(table["label"]) == list(labels[sample])
    # Each synthetic class is a bright block in its own place, so a point's nearest neighbour on the map
    # should nearly always share its class.
    points = table[["x", "y"]].to_numpy()
    distances = np.linalg.norm(points[:, None] - points[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    agreement = np.mean(table["label"].to_numpy()[distances.argmin(axis=1)] == table["label"].to_numpy())
    assert agreement > 0.8
    if method == "pca":
        first, second = embedding.explained_variance
        assert 0 < second <= first <= 1
    else:
        assert embedding.explained_variance is None


def test_embed_is_seeded_and_can_skip_images(train_split):
    images, labels = train_split
    sample = np.arange(40)
    first = explore.embed(images, labels, sample, seed=3, with_images=False)
    again = explore.embed(images, labels, sample, seed=3, with_images=False)
    assert "image" not in first.table.columns
    np.testing.assert_allclose(first.table[["x", "y"]], again.table[["x", "y"]])


def test_embed_rejects_unknown_methods_and_tiny_samples(train_split):
    images, labels = train_split
    with pytest.raises(ConfigError, match="umap"):
        explore.embed(images, labels, np.arange(10), method="umap")
    with pytest.raises(ConfigError, match="at least 3"):
        explore.embed(images, labels, np.arange(2))


def test_points_in_box_includes_the_edges_and_accepts_reversed_ranges():
    table = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0.0, 1.0, 2.0, 3.0]})
    assert list(explore.points_in_box(table, [1.0, 2.0], [0.0, 5.0]).index) == [1, 2]
    assert list(explore.points_in_box(table, [3.0, 0.0], [2.5, -1.0]).index) == [0, 1, 2]


def test_tsne_estimate_grows_with_the_sample():
    assert 0 < explore.tsne_seconds_estimate(200) < explore.tsne_seconds_estimate(2000)
