"""The test images a model gets wrong most confidently, and those it is least sure about (the smallest gap between
its top two classes): the Evaluate page's galleries and `evaluate --gallery`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fmnist_core.data.fashion_mnist import CLASS_NAMES
from fmnist_core.errors import ConfigError
from fmnist_core.evaluate.evaluation import predict_probabilities

GALLERIES = ("confident-wrong", "ambiguous")


@dataclass(frozen=True)
class GalleryImage:
    """One test image in a gallery, with what the model said about it."""

    index: int  # Its place in the test set (test:N).
    label: int  # Its true class.
    predicted: int  # The model's top class.
    confidence: float  # The probability of the top class.
    second: int  # The runner-up class.
    margin: float  # Top probability minus the runner-up's: small means the model could hardly choose.

    def to_dict(self, gallery: str) -> dict:
        """The JSON of `evaluate --gallery`: index, label, predicted, confidence (and second, margin if ambiguous)."""
        values = {"index": self.index, "label": self.label, "predicted": self.predicted, "confidence": self.confidence}
        return values | ({"second": self.second, "margin": self.margin} if gallery == "ambiguous" else {})

    @property
    def caption(self) -> str:
        return (
            f"test:{self.index} · true {CLASS_NAMES[self.label]} · {CLASS_NAMES[self.predicted]} {self.confidence:.0%}"
        )


def gallery(probabilities: np.ndarray, labels: np.ndarray, kind: str, top: int) -> tuple[GalleryImage, ...]:
    """The `top` images of a gallery from a model's (N, 10) test-set probabilities and the true labels.

    confident-wrong: the mistakes, highest confidence first. ambiguous: every image, smallest top-two margin first.
    Ties keep the test set's order.
    """
    if kind not in GALLERIES:
        raise ConfigError(f"Unknown gallery {kind!r}: choose one of {', '.join(GALLERIES)}.")
    if top < 1:
        raise ConfigError(f"A gallery shows at least one image (got {top}).")
    probabilities, labels = np.asarray(probabilities, np.float64), np.asarray(labels).astype(int)
    order = np.argsort(-probabilities, axis=1, kind="stable")
    rows = np.arange(len(labels))
    predicted, second = order[:, 0], order[:, 1]
    confidence, runner_up = probabilities[rows, predicted], probabilities[rows, second]
    margin = confidence - runner_up
    if kind == "confident-wrong":
        candidates = np.flatnonzero(predicted != labels)
        picked = candidates[np.argsort(-confidence[candidates], kind="stable")]
    else:
        picked = np.argsort(margin, kind="stable")
    return tuple(
        GalleryImage(
            int(index),
            int(labels[index]),
            int(predicted[index]),
            round(float(confidence[index]), 6),
            int(second[index]),
            round(float(margin[index]), 6),
        )
        for index in picked[:top]
    )


def model_gallery(model, images: np.ndarray, labels: np.ndarray, kind: str, top: int) -> tuple[GalleryImage, ...]:
    """`gallery` of a model's answers on these test images, predicted as the app predicts (mirror averaging too)."""
    return gallery(predict_probabilities(model, images), labels, kind, top)
