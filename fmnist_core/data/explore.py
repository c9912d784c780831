"""Dataset maths for the browser page: filtering and paging, class balance, mean images, pixel histogram,
and a 2-D map of a sample (PCA, or t-SNE) whose points carry their image for tooltips.

Everything takes uint8 arrays shaped like Fashion-MNIST ((N, 28, 28) images, (N,) labels) and returns
arrays, small dataclasses or tidy pandas tables ready for Altair. No TensorFlow, no Streamlit.
"""

from __future__ import annotations

import base64
import io
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image

from fmnist_core.data.fashion_mnist import CLASS_NAMES, NUM_CLASSES
from fmnist_core.errors import ConfigError
from fmnist_core.pixels import enlarge

EMBEDDING_METHODS = ("pca", "tsne")
# t-SNE cost on this 2-core CPU, single-threaded (see `embed`): ~1.6 s per 1000 Fashion-MNIST images, measured
# with other work running; rounded up.
TSNE_SECONDS_PER_POINT = 0.002
TSNE_SETUP_SECONDS = 0.5
TSNE_ITERATIONS = 500  # Enough for the clusters to settle; scikit-learn's default of 1000 doubles the wait.
TSNE_PCA_COMPONENTS = 50  # The usual first step: t-SNE on 50 PCA components, not 784 raw pixels.


def _check_classes(classes: Sequence[int]) -> list[int]:
    chosen = sorted({int(c) for c in classes})
    if not chosen:
        raise ConfigError("Pick at least one class.")
    if chosen[0] < 0 or chosen[-1] >= NUM_CLASSES:
        raise ConfigError(f"Class numbers run from 0 to {NUM_CLASSES - 1} (got {chosen}).")
    return chosen


def class_indices(labels: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """Indices of the images whose label is one of `classes`, in dataset order."""
    return np.flatnonzero(np.isin(labels, _check_classes(classes)))


@dataclass(frozen=True)
class ImagePage:
    """One page of a browsable list of images."""

    indices: np.ndarray  # Dataset indices shown on this page.
    page: int  # 1-based page number, clamped into range.
    pages: int  # Total pages (at least 1, even for an empty list).
    total: int  # Images in the whole list.


def page_of(indices: np.ndarray, page: int, per_page: int) -> ImagePage:
    """The `page`-th slice of `indices` (1-based); out-of-range page numbers are clamped, not errors."""
    if per_page < 1:
        raise ConfigError(f"Images per page must be ≥ 1 (got {per_page}).")
    pages = max(1, math.ceil(len(indices) / per_page))
    page = min(max(int(page), 1), pages)
    start = (page - 1) * per_page
    return ImagePage(indices[start : start + per_page], page, pages, len(indices))


def to_display(images: np.ndarray, scale: int = 3) -> np.ndarray:
    """Round images (0–255, any dtype: mean images are floats) to uint8 and enlarge by `scale` with square pixels."""
    return enlarge(np.clip(np.rint(images), 0, 255).astype(np.uint8), scale)


def class_balance(labels: np.ndarray) -> pd.DataFrame:
    """Images per class: columns class_index, class_name, count, share (of all images)."""
    counts = np.bincount(labels, minlength=NUM_CLASSES)[:NUM_CLASSES]
    return pd.DataFrame(
        {
            "class_index": np.arange(NUM_CLASSES),
            "class_name": CLASS_NAMES,
            "count": counts,
            "share": counts / max(int(counts.sum()), 1),
        }
    )


def balance_sentence(table: pd.DataFrame, classes: Sequence[int]) -> str:
    """What the class-balance chart shows, read from its table (`class_balance`) and the classes picked."""
    low, high = int(table["count"].min()), int(table["count"].max())
    if low == high:
        said = (
            f"Every class has the same number of pictures ({low:,}): a balanced dataset, so accuracy is a fair "
            f"score, and always guessing one class would score only {1 / len(table):.0%}."
        )
    else:
        said = f"Classes have {low:,} to {high:,} pictures each."
    left_out = len(table) - len(set(classes))
    if left_out:
        grey = f"The {left_out} grey bars are classes" if left_out > 1 else "The grey bar is the class"
        said += f" {grey} not picked above."
    return said


def histogram_sentence(table: pd.DataFrame) -> str:
    """What the brightness histogram shows, read from its table (`pixel_histogram`): its peak and its middle."""
    peak = table.loc[table["share"].idxmax()]
    middle = table.loc[(table["share"].cumsum() >= 0.5).idxmax()]
    return (
        f"The network sees these values scaled to 0–1. The most common brightness here is {int(peak['start'])}–"
        f"{int(peak['end']) - 1} ({peak['share']:.0%} of the pixels shown); half of them are darker than "
        f"{int(middle['end'])}."
    )


def mean_images(images: np.ndarray, labels: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """The average image of each class in `classes`, float32 (len(classes), 28, 28) on the 0–255 scale.

    A class with no images gets an all-zero (black) mean rather than NaNs.
    """
    chosen = _check_classes(classes)
    means = np.zeros((len(chosen), *images.shape[1:]), dtype=np.float32)
    for row, label in enumerate(chosen):
        members = images[labels == label]
        if len(members):
            means[row] = members.mean(axis=0, dtype=np.float64)
    return means


def pixel_histogram(images: np.ndarray, bins: int = 32, skip_background: bool = False) -> pd.DataFrame:
    """How often each brightness of uint8 images occurs: columns start, end (0–256 bin edges), count, share.

    skip_background: leave out pure-black pixels (value 0), about half of every Fashion-MNIST image,
    so the garment pixels' spread is visible.
    """
    if not 1 <= bins <= 256:
        raise ConfigError(f"Histogram bins must be between 1 and 256 (got {bins}).")
    counts, edges = np.histogram(images, bins=bins, range=(0, 256))
    if skip_background:
        # Black pixels all fall in the first bin; subtracting them avoids copying 47 million others.
        counts[0] -= images.size - np.count_nonzero(images)
    return pd.DataFrame(
        {
            "start": edges[:-1],
            "end": edges[1:],
            "count": counts,
            "share": counts / max(int(counts.sum()), 1),
        }
    )


def stratified_sample(labels: np.ndarray, classes: Sequence[int], count: int, seed: int = 0) -> np.ndarray:
    """About `count` indices spread evenly over `classes` (fewer if a class runs out), sorted, seeded."""
    chosen = _check_classes(classes)
    if count < 1:
        raise ConfigError(f"Sample size must be ≥ 1 (got {count}).")
    rng = np.random.default_rng(seed)
    per_class = math.ceil(count / len(chosen))
    picked = np.concatenate(
        [
            rng.choice(members, size=min(per_class, len(members)), replace=False)
            for members in (np.flatnonzero(labels == label) for label in chosen)
        ]
    )
    # Rounding up per class can overshoot `count`; drop the extra at random so no class is favoured.
    return np.sort(rng.permutation(picked)[:count])


def image_data_url(image: np.ndarray, scale: int = 3) -> str:
    """A 'data:image/png;base64,…' URL of one image, for Vega-Lite image tooltips."""
    buffer = io.BytesIO()
    Image.fromarray(to_display(image, scale), mode="L").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def tsne_seconds_estimate(count: int) -> float:
    """Rough seconds t-SNE takes for `count` images on this machine when nothing else is running."""
    return TSNE_SETUP_SECONDS + TSNE_SECONDS_PER_POINT * count


@dataclass(frozen=True)
class Embedding:
    """A 2-D map of a sample of images."""

    method: str  # "pca" or "tsne".
    # One row per image: x, y, index (into the split), label, class_name, and image (a PNG data URL)
    # when asked for; Vega-Lite shows a tooltip field named "image" as a picture.
    table: pd.DataFrame
    explained_variance: tuple[float, float] | None  # PCA only: share of the pixel variance on each axis.
    seconds: float  # Wall time of the computation.


def project(points: np.ndarray, method: str = "pca", seed: int = 0) -> tuple[np.ndarray, tuple[float, float] | None]:
    """(N, D) points → (N, 2) with PCA or t-SNE (seeded), and PCA's share of the variance on each axis."""
    if method not in EMBEDDING_METHODS:
        raise ConfigError(f"Unknown map method {method!r}. Valid methods: {', '.join(EMBEDDING_METHODS)}.")
    if len(points) < 3:
        raise ConfigError(f"A map needs at least 3 images (got {len(points)}); pick more classes or a bigger sample.")
    from sklearn.decomposition import PCA
    from threadpoolctl import threadpool_limits

    # One thread: when a training job keeps both cores busy, multi-threaded t-SNE spins in its OpenMP
    # barriers and runs ~10× slower (measured 18 s vs 1.6 s for 1000 images); PCA is milliseconds either way.
    with threadpool_limits(limits=1):
        if method == "pca":
            pca = PCA(n_components=2, random_state=seed)
            flat = pca.fit_transform(points)
            return flat, (float(pca.explained_variance_ratio_[0]), float(pca.explained_variance_ratio_[1]))
        from sklearn.manifold import TSNE

        components = min(TSNE_PCA_COMPONENTS, *points.shape)
        reduced = PCA(n_components=components, random_state=seed).fit_transform(points)
        # Perplexity must stay below the number of points; 30 is the usual choice for larger samples.
        perplexity = float(min(30.0, (len(points) - 1) / 3))
        flat = TSNE(
            n_components=2, init="pca", perplexity=perplexity, max_iter=TSNE_ITERATIONS, random_state=seed
        ).fit_transform(reduced)
        return flat, None


def map_table(points: np.ndarray, images: np.ndarray, labels: np.ndarray, indices: np.ndarray, with_images: bool):
    """One row per mapped image: x, y, index (into the split), label, class_name, and image (a PNG data URL)."""
    sample_labels = labels[indices].astype(int)
    table = pd.DataFrame(
        {
            "x": points[:, 0],
            "y": points[:, 1],
            "index": indices.astype(int),
            "label": sample_labels,
            "class_name": [CLASS_NAMES[label] for label in sample_labels],
        }
    )
    if with_images:
        table["image"] = [image_data_url(images[index]) for index in indices]
    return table


def embed(
    images: np.ndarray,
    labels: np.ndarray,
    indices: np.ndarray,
    method: str = "pca",
    seed: int = 0,
    with_images: bool = True,
) -> Embedding:
    """Project `images[indices]` to 2-D with PCA or t-SNE (seeded), one table row per image."""
    started = time.perf_counter()
    pixels = images[indices].reshape(len(indices), -1).astype(np.float32) / 255.0
    points, explained = project(pixels, method, seed)
    table = map_table(points, images, labels, indices, with_images)
    return Embedding(method, table, explained, time.perf_counter() - started)


def points_in_box(table: pd.DataFrame, x_range: Sequence[float], y_range: Sequence[float]) -> pd.DataFrame:
    """The rows of an embedding table inside a rectangle (a brush selection on the map), bounds included."""
    (x_low, x_high), (y_low, y_high) = sorted(x_range), sorted(y_range)
    inside = table["x"].between(x_low, x_high) & table["y"].between(y_low, y_high)
    return table[inside]
