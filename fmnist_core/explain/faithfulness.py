"""Is a saliency map faithful? The deletion test: hide the pixels it ranks highest and watch the confidence fall.

A map that shows where the network really finds its evidence must hurt the network's confidence in the class
more, when its top pixels are hidden, than hiding as many pixels at random does (Petsiuk et al. 2018, "RISE",
deletion metric; Samek et al. 2017). Hidden pixels are set to black, the Fashion-MNIST background, so a hidden
pixel looks like "nothing there". Two random baselines: any pixels (about half of every picture is already
black, so that is the easy bar), and pixels of the garment only (the hard bar).

`python benchmarks/saliency_faithfulness.py` runs this on a few hundred test images for every saliency method
and prints the table in docs/results/inside.md; `fmnist_core.explain.inside.DEFAULT_SALIENCY` is the winner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fmnist_core.data.fashion_mnist import IMAGE_SIZE
from fmnist_core.explain.inside import SALIENCY_METHODS, probabilities, saliency_maps
from fmnist_core.explain.network import unit_images

PIXELS = IMAGE_SIZE * IMAGE_SIZE
DELETION_FRACTIONS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5)  # Shares of the 784 pixels hidden.
HEADLINE_FRACTION = 0.1  # The per-image comparison against random uses the top 10 % (78 pixels).
RANDOM = "random pixels"
RANDOM_GARMENT = "random garment pixels"
BASELINES = (RANDOM, RANDOM_GARMENT)


@dataclass(frozen=True)
class DeletionResult:
    """How one pixel ranking fares in the deletion test, averaged over the images."""

    method: str  # A saliency method, or one of the two random baselines.
    fractions: tuple[float, ...]  # Shares of the pixels hidden.
    mean_confidence: tuple[float, ...]  # Mean probability of each image's class after hiding that share.
    area: float  # Mean confidence over the curve (trapezoids over fractions, divided by their span): lower is better.
    beats_random: float | None  # Share of images where hiding the top HEADLINE_FRACTION hurt more than at random.
    beats_random_garment: float | None  # The same against random garment pixels.
    background_share: float  # Share of its top HEADLINE_FRACTION pixels that were black already (hiding them is moot).
    images: int


def _orders(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pixel indices (N, 784), highest score first; equal scores (e.g. the zeros) in random order."""
    flat = scores.reshape(len(scores), -1)
    tie_break = rng.random(flat.shape)
    return np.stack([np.lexsort((tie_break[row], -flat[row])) for row in range(len(flat))])


def _confidence_after_hiding(model, images: np.ndarray, classes: np.ndarray, orders: np.ndarray, fractions):
    """(N, len(fractions)) probability of each image's class once its first `fraction` pixels in `orders` are black."""
    curves = np.zeros((len(images), len(fractions)), np.float32)
    flat = images.reshape(len(images), -1)
    for column, fraction in enumerate(fractions):
        hidden = flat.copy()
        np.put_along_axis(hidden, orders[:, : int(round(fraction * PIXELS))], 0.0, axis=1)
        answers = probabilities(model, hidden.reshape(images.shape))
        curves[:, column] = answers[np.arange(len(images)), classes]
    return curves


def _area(fractions: Sequence[float], values: np.ndarray) -> float:
    span = fractions[-1] - fractions[0]
    return float(np.trapezoid(values, fractions) / span) if span > 0 else float(values[0])


def deletion_test(
    model,
    images,
    methods: Sequence[str] = SALIENCY_METHODS,
    fractions: Sequence[float] = DELETION_FRACTIONS,
    random_repeats: int = 3,
    seed: int = 0,
) -> list[DeletionResult]:
    """The deletion test for each saliency method and the two random baselines, on each image's predicted class.

    The confidence is the explained network's (the picture alone; see fmnist_core.explain.inside). Random baselines are
    averaged over `random_repeats` draws per image.
    """
    batch = unit_images(images)
    fractions = tuple(float(fraction) for fraction in fractions)
    headline = fractions.index(HEADLINE_FRACTION) if HEADLINE_FRACTION in fractions else len(fractions) // 2
    classes = probabilities(model, batch).argmax(axis=1)
    rng = np.random.default_rng(seed)

    top = int(round(fractions[headline] * PIXELS))
    black = batch.reshape(len(batch), -1) == 0
    background: dict[str, list[float]] = {}

    def curves_for(name: str, scores: np.ndarray) -> np.ndarray:
        orders = _orders(scores, rng)
        background.setdefault(name, []).append(float(np.take_along_axis(black, orders[:, :top], axis=1).mean()))
        return _confidence_after_hiding(model, batch, classes, orders, fractions)

    garment = (batch > 0).astype(np.float32)
    baselines = {
        RANDOM: np.mean([curves_for(RANDOM, np.zeros_like(batch)) for _ in range(random_repeats)], axis=0),
        RANDOM_GARMENT: np.mean([curves_for(RANDOM_GARMENT, garment) for _ in range(random_repeats)], axis=0),
    }
    ranked = {method: curves_for(method, saliency_maps(model, batch, classes.tolist(), method)) for method in methods}
    results = []
    for method, curves in {**ranked, **baselines}.items():
        versus = {
            name: None if method in BASELINES else float((curves[:, headline] < base[:, headline]).mean())
            for name, base in baselines.items()
        }
        mean = curves.mean(axis=0)
        results.append(
            DeletionResult(
                method,
                fractions,
                tuple(float(value) for value in mean),
                _area(fractions, mean),
                versus[RANDOM],
                versus[RANDOM_GARMENT],
                float(np.mean(background[method])),
                len(batch),
            )
        )
    return results
