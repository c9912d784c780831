"""Inside a trained model: its first-layer filters, what each block computes, where it looks, what it reads
before deciding, and how many of its first-layer filters are really different from one another.

Any model the cache holds can be explained (Model 1, 2 or 3, whatever its training). What is explained is
always the trained network itself (`fmnist_core.explain.network`): for a mirror-averaged model, that is the
network inside the wrapper looking at the picture alone.
Bad input (an image of the wrong shape or dtype, an unknown class, a model that is not one of ours) raises
`ExplainError` with a message that says what to do.

No Streamlit here; pictures of these arrays are drawn by `fmnist_core.explain.render`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from fmnist_core.data.fashion_mnist import CLASS_NAMES, IMAGE_SIZE, NUM_CLASSES
from fmnist_core.display import format_accuracy
from fmnist_core.errors import ExplainError
from fmnist_core.explain.network import (
    BLOCKS,
    Network,
    as_batch,
    as_image,
    check_class,
    network_of,
)

# Saliency methods, most faithful first: `python benchmarks/saliency_faithfulness.py` measures them with the
# deletion test (docs/results/inside.md).
SALIENCY_METHODS = ("integrated_gradients", "gradient_x_input", "grad_cam")
DEFAULT_SALIENCY = SALIENCY_METHODS[0]
INTEGRATED_GRADIENT_STEPS = 32  # Riemann midpoints from the black picture to the image.
MAP_IMAGES = 2000  # Test images on the embedding map: 200 per class, enough for clusters and their mistakes.


@dataclass(frozen=True)
class LayerMaps:
    """What one conv block computes for one image."""

    name: str  # The Keras layer, e.g. "block1_relu".
    title: str  # "Block 1".
    maps: np.ndarray  # (H, W, C) float32: one map per filter, after batch norm and ReLU.
    description: str  # Two sentences for the page and the CLI.
    receptive_field: int  # Each map pixel depends on a square of the 28×28 input this many pixels wide.

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(size) for size in self.maps.shape)


@dataclass(frozen=True)
class NetworkInfo:
    """Which network is explained."""

    title: str  # "Model 3" (the registry title), or the model's own name.
    first_filters: int
    mirror_averaged: bool  # True: the saved model averages picture and mirror; the explanation is the picture's.


def describe(model) -> NetworkInfo:
    """Which network an explanation of `model` is about."""
    network = network_of(model)
    return NetworkInfo(network.spec.title, network.spec.first_filters, network.mirror_averaged)


# Views -------------------------------------------------------------------------------------------------------


def first_layer_filters(model) -> np.ndarray:
    """The first convolution's kernels, float32 (F, 3, 3), F = 64, 128 or 256."""
    return network_of(model).first_kernels.astype(np.float32, copy=True)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)


def probabilities(model, images) -> np.ndarray:
    """The network's class probabilities (N, 10) float32, each picture alone (no mirror; see the module note)."""
    return _softmax(network_of(model).logits(as_batch(images)))


def feature_maps(model, image) -> list[LayerMaps]:
    """Every conv block's output maps for one 28×28 image (uint8 0–255 or float in [0, 1])."""
    network = network_of(model)
    return [
        LayerMaps(
            block.layer,
            block.title,
            values[0].astype(np.float32),
            block.description.format(
                filters=network.spec.first_filters,
                block2=network.spec.block2_filters,
                block3=network.spec.block3_filters,
            ),
            field,
        )
        for block, values, field in zip(BLOCKS, network.maps(as_image(image)), network.receptive_fields, strict=True)
    ]


def _evidence(network: Network, images: np.ndarray, classes: np.ndarray, method: str) -> np.ndarray:
    """Unnormalised, signed (N, 28, 28) evidence for `classes` in float32 images (N, 28, 28, 1)."""
    if method == "grad_cam":
        return network.grad_cam(images, classes)
    if method == "gradient_x_input":
        gradients = network.input_gradients(images, classes)
    else:
        # Integrated gradients (Sundararajan et al. 2017) from the black picture, which is also what the deletion
        # test hides pixels with: the mean gradient along the straight path from black to the image, times the
        # pixel. The attributions add up to logit(image) − logit(black): completeness, checked in test_explain.py.
        steps = INTEGRATED_GRADIENT_STEPS
        alphas = ((np.arange(steps, dtype=np.float32) + 0.5) / steps)[None, :, None, None, None]
        path = (images[:, None] * alphas).reshape(-1, IMAGE_SIZE, IMAGE_SIZE, 1)
        gradients = network.input_gradients(path, np.repeat(classes, steps))
        gradients = gradients.reshape(len(images), steps, *images.shape[1:]).mean(axis=1)
    return (gradients * images)[..., 0]


def saliency_maps(model, images, class_indices: Sequence[int] | None = None, method: str = DEFAULT_SALIENCY):
    """Saliency for many images: float32 (N, 28, 28) in [0, 1], 1 on each image's strongest evidence.

    class_indices: the class to explain per image; None explains each image's predicted class.
    Only evidence *for* the class is kept (evidence against it is cut to 0), so the brightest pixels are the
    ones whose loss would hurt the class most.
    """
    if method not in SALIENCY_METHODS:
        raise ExplainError(f"Unknown saliency method {method!r}. Valid methods: {', '.join(SALIENCY_METHODS)}.")
    network = network_of(model)
    batch = as_batch(images)
    if class_indices is None:
        classes = network.logits(batch).argmax(axis=1).astype(np.int32)
    else:
        if len(class_indices) != len(batch):
            raise ExplainError(f"{len(class_indices)} classes for {len(batch)} images; give one class per image.")
        classes = np.array([check_class(index) for index in class_indices], dtype=np.int32)
    evidence = np.maximum(_evidence(network, batch, classes, method), 0.0)
    peaks = evidence.reshape(len(evidence), -1).max(axis=1)[:, None, None]
    # An image with no evidence for the class at all (a blank picture) gets an all-zero map, not NaNs.
    return np.divide(evidence, peaks, out=np.zeros_like(evidence), where=peaks > 0).astype(np.float32)


def saliency(model, image, class_index: int | None = None, method: str = DEFAULT_SALIENCY) -> np.ndarray:
    """Where the network finds evidence for a class in one image: float32 (28, 28) in [0, 1].

    class_index: None explains the predicted class (of the picture alone; see the module note on mirrors).
    """
    classes = None if class_index is None else [check_class(class_index)]
    return saliency_maps(model, as_image(image)[..., 0], classes, method)[0]


def embedding(model, images) -> np.ndarray:
    """The penultimate layer's features (N, D) float32 (D = 256): what the classifier reads for each image."""
    return network_of(model).features(as_batch(images)).astype(np.float32)


# What the page asks for --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageExplanation:
    """Everything the page shows about one image, from one call."""

    network: NetworkInfo
    probabilities: np.ndarray  # (10,) float32, the picture alone.
    predicted: int  # The most probable class.
    saliency: np.ndarray  # (28, 28) in [0, 1], for the predicted class.
    other_class: int | None  # A second class to compare with ("why T-shirt and not Shirt?").
    other_saliency: np.ndarray | None  # (28, 28), for other_class.
    maps: tuple[LayerMaps, ...]
    seconds: float  # Wall time of the whole explanation.


def explain_image(model, image, other_class: int | None = None, method: str = DEFAULT_SALIENCY) -> ImageExplanation:
    """Probabilities, feature maps and saliency (predicted class, and `other_class` if given) for one image."""
    started = time.perf_counter()
    batch = as_image(image)[..., 0]
    answer = probabilities(model, batch)[0]
    predicted = int(answer.argmax())
    classes = [predicted] if other_class is None else [predicted, check_class(other_class)]
    maps = saliency_maps(model, np.repeat(batch, len(classes), axis=0), classes, method)
    return ImageExplanation(
        describe(model),
        answer,
        predicted,
        maps[0],
        None if other_class is None else classes[1],
        None if other_class is None else maps[1],
        tuple(feature_maps(model, batch[0])),
        time.perf_counter() - started,
    )


@dataclass(frozen=True)
class EmbeddingMap:
    """A 2-D map of what the network reads before deciding, for a sample of test images."""

    # One row per image: x, y, index, label, class_name as in fmnist_core.data.explore, plus predicted,
    # predicted_name and mistake (the network's answer for the picture alone).
    table: pd.DataFrame
    method: str  # "pca" or "tsne".
    explained_variance: tuple[float, float] | None  # PCA only: share of the features' variance on each axis.
    accuracy: float  # Share of the sample the network gets right, each picture alone (no mirror averaging).
    seconds: float  # Wall time: features, projection and table.
    population: int = 0  # How many images the sample was drawn from.

    @property
    def accuracy_sentence(self) -> str:
        """'92.80% right on these 2,000 of the 10,000 test images, each picture alone': a subset's accuracy says it
        is one, so it is not read as the model's test accuracy."""
        return (
            f"{format_accuracy(self.accuracy)} right on these {len(self.table):,} of the {self.population:,} test "
            "images, each picture alone (no mirror averaging)"
        )


def embedding_map(model, images, labels, count: int = MAP_IMAGES, method: str = "pca", seed: int = 0) -> EmbeddingMap:
    """Penultimate features of `count` of the images (as many per class, seeded), projected to 2-D, mistakes marked."""
    from fmnist_core.data.explore import map_table, project, stratified_sample

    started = time.perf_counter()
    indices = stratified_sample(np.asarray(labels), range(NUM_CLASSES), count, seed=seed)
    network = network_of(model)
    features = network.features(as_batch(images[indices]))
    predicted = network.classify(features).argmax(axis=1)
    points, explained = project(features, method, seed)
    # No picture in each row: the page shows the selected image itself, which keeps a 2,000-point map quick.
    table = map_table(points, images, labels, indices, with_images=False)
    table["predicted"] = predicted
    table["predicted_name"] = [CLASS_NAMES[index] for index in predicted]
    table["mistake"] = table["predicted"] != table["label"]
    accuracy = float(1.0 - table["mistake"].mean())
    return EmbeddingMap(table, method, explained, accuracy, time.perf_counter() - started, len(images))


# How many different first-layer filters? ---------------------------------------------------------------------

DUPLICATE_CORRELATION = 0.9  # Two filters whose block 1 maps correlate this much over the probe images: copies.
DUPLICATE_KERNEL_COSINE = 0.95  # Two 3×3 kernels this parallel (or anti-parallel): near-identical patterns.
DEAD_ACTIVITY = 0.01  # A filter whose block 1 map is non-zero at fewer than 1 % of positions: nearly dead.
PROBE_IMAGES = 500  # Test images (50 per class, seeded) whose block 1 maps the responses are measured on.
KERNEL_DIMENSIONS = 9  # A 3×3 kernel on a one-channel picture is a vector in 9 dimensions.


@dataclass(frozen=True)
class FilterReport:
    """How many of the first layer's filters are really different detectors."""

    title: str  # "Model 3".
    filters: int  # F: 64, 128 or 256.
    dead: int  # Block 1 map non-zero at fewer than DEAD_ACTIVITY of all positions of the probe images.
    near_duplicates: int  # Live filters whose block 1 map correlates ≥ DUPLICATE_CORRELATION with another's.
    distinct_groups: int  # Live filters grouped by that correlation (connected groups): the different detectors.
    kernel_near_duplicates: int  # Filters whose 3×3 kernel has |cosine| ≥ DUPLICATE_KERNEL_COSINE with another's.
    effective_filters: float  # Effective rank of the live maps' correlation matrix: independent responses.
    kernel_effective_rank: float  # Effective rank of the kernels, at most KERNEL_DIMENSIONS.
    probe_images: int  # Images the responses were measured on.
    duplicate_correlation: float = DUPLICATE_CORRELATION
    duplicate_kernel_cosine: float = DUPLICATE_KERNEL_COSINE
    dead_activity: float = DEAD_ACTIVITY

    def to_dict(self) -> dict:
        return asdict(self)


def effective_rank(matrix: np.ndarray) -> float:
    """exp(entropy of the normalised eigenvalues) of a symmetric positive semi-definite matrix (Roy & Vetterli 2007).

    It is k for k equal, independent directions and falls towards 1 as one direction dominates.
    """
    eigenvalues = np.clip(np.linalg.eigvalsh(np.asarray(matrix, np.float64)), 0.0, None)
    if eigenvalues.sum() <= 0:
        return 0.0
    shares = eigenvalues[eigenvalues > 0] / eigenvalues.sum()
    return float(np.exp(-(shares * np.log(shares)).sum()))


def _connected_groups(linked: np.ndarray) -> int:
    """Number of connected groups of a symmetric boolean adjacency matrix."""
    from scipy.sparse.csgraph import connected_components

    return int(connected_components(linked, directed=False)[0])


def _response_statistics(network: Network, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each filter's activity (share of positions > 0) and the (F, F) correlation of the block 1 maps."""
    filters = network.spec.first_filters
    count, total, products, active = 0, np.zeros(filters), np.zeros((filters, filters)), np.zeros(filters)
    # Accumulated batch by batch (Model 3's maps for 500 images are 98,000 × 256 values); each batch's products
    # in float32, which halves the cost, summed in float64.
    for start in range(0, len(images), 100):
        maps = network.first_block(images[start : start + 100]).reshape(-1, filters)
        count += len(maps)
        total += maps.sum(axis=0, dtype=np.float64)
        products += maps.T @ maps
        active += (maps > 0).sum(axis=0)
    mean = total / max(count, 1)
    covariance = products / max(count, 1) - np.outer(mean, mean)
    scale = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        correlation = covariance / np.outer(scale, scale)
    return active / max(count, 1), np.nan_to_num(correlation)


def probe_images(test_images: np.ndarray, test_labels: np.ndarray) -> np.ndarray:
    """The pictures the filters are compared on: PROBE_IMAGES test images, as many per class, seeded."""
    from fmnist_core.data.explore import stratified_sample

    return test_images[stratified_sample(test_labels, range(NUM_CLASSES), PROBE_IMAGES, seed=0)]


def filter_redundancy(model, images=None) -> FilterReport:
    """Dead, duplicated and effectively distinct first-layer filters.

    images: the probe pictures; None reads the test set and takes `probe_images` of it.
    """
    network = network_of(model)
    if images is None:
        from fmnist_core.data.loading import load_fashion_mnist

        (_, _), (test_images, test_labels) = load_fashion_mnist()
        images = probe_images(test_images, test_labels)
    batch = as_batch(images)
    activity, correlation = _response_statistics(network, batch)
    live = activity >= DEAD_ACTIVITY
    between_live = correlation[np.ix_(live, live)]
    linked = between_live >= DUPLICATE_CORRELATION
    np.fill_diagonal(linked, False)
    kernels = network.first_kernels.reshape(len(network.first_kernels), -1).astype(np.float64)
    norms = np.linalg.norm(kernels, axis=1, keepdims=True)
    unit = np.divide(kernels, norms, out=np.zeros_like(kernels), where=norms > 0)
    parallel = np.abs(unit @ unit.T) >= DUPLICATE_KERNEL_COSINE
    np.fill_diagonal(parallel, False)
    return FilterReport(
        title=network.spec.title,
        filters=network.spec.first_filters,
        dead=int((~live).sum()),
        near_duplicates=int(linked.any(axis=1).sum()),
        distinct_groups=_connected_groups(linked) if live.any() else 0,
        kernel_near_duplicates=int(parallel.any(axis=1).sum()),
        effective_filters=effective_rank(between_live),
        kernel_effective_rank=effective_rank(unit.T @ unit),
        probe_images=len(batch),
    )
