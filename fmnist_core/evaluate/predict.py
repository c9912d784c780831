"""Prediction for the Predict page: every model's top guesses for one image, and whether the models agree.

No Streamlit here: the page draws widgets, makes one call into this module and renders what comes back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from fmnist_core.data.fashion_mnist import CLASS_NAMES, IMAGE_SIZE, NUM_CLASSES
from fmnist_core.evaluate.evaluation import predict_one
from fmnist_core.evaluate.sketch import PreparedSketch
from fmnist_core.pixels import enlarge, to_uint8

TOP_K = 3  # Three guesses show the typical near-miss (Shirt vs T-shirt/top) without cluttering the answer.
DISPLAY_SIZE = 280  # 28 × 10: each model pixel becomes a 10 × 10 square, big enough to see on a projector.
BOX_COLOUR = (255, 140, 0)  # Orange stands out on black drawings, white paper and most photos alike.


@dataclass(frozen=True)
class ClassScore:
    """One class and the probability a model gave it."""

    class_index: int  # 0..9, the Fashion-MNIST label.
    name: str  # CLASS_NAMES[class_index].
    probability: float  # In [0, 1].


@dataclass(frozen=True)
class ModelPrediction:
    """One model's answer for one image."""

    title: str  # The model as people know it, e.g. "Model 1".
    top: tuple[ClassScore, ...]  # The TOP_K most probable classes, most probable first.
    seconds: float  # Wall time of the warm model call that produced these probabilities.
    true_class: int | None = None  # The label of a test image; None for uploads and drawings.

    @property
    def guess(self) -> ClassScore:
        return self.top[0]

    @property
    def correct(self) -> bool | None:
        """Whether the guess is the true label; None when the true label is unknown."""
        return None if self.true_class is None else self.guess.class_index == self.true_class


@dataclass(frozen=True)
class Consensus:
    """The models grouped by the class they picked; one group means they agree."""

    groups: tuple[tuple[str, tuple[str, ...]], ...]  # (class name, titles of models that picked it), most votes first.

    @property
    def unanimous(self) -> bool:
        return len(self.groups) == 1

    @property
    def disagree(self) -> bool:
        return len(self.groups) > 1


@dataclass(frozen=True)
class Classification:
    """What every model said about one image."""

    predictions: tuple[ModelPrediction, ...]  # In the order the models were given.
    consensus: Consensus


def top_k(probabilities, k: int = TOP_K) -> tuple[ClassScore, ...]:
    """The k most probable classes, most probable first; equal probabilities keep class order."""
    values = np.asarray(probabilities, dtype=np.float64)
    if values.shape != (NUM_CLASSES,):
        raise ValueError(f"Expected {NUM_CLASSES} class probabilities, got an array of shape {values.shape}.")
    if not 1 <= k <= NUM_CLASSES:
        raise ValueError(f"k must be between 1 and {NUM_CLASSES}, got {k}.")
    # A stable sort of the negated values lists ties deterministically, so the chart never flickers.
    order = np.argsort(-values, kind="stable")[:k]
    return tuple(ClassScore(int(index), CLASS_NAMES[index], float(values[index])) for index in order)


def find_consensus(predictions: Sequence[ModelPrediction]) -> Consensus:
    """Group the models by their top guess, the biggest group first (ties: the group seen first)."""
    groups: dict[str, list[str]] = {}
    for prediction in predictions:
        groups.setdefault(prediction.guess.name, []).append(prediction.title)
    ranked = sorted(groups.items(), key=lambda group: -len(group[1]))
    return Consensus(tuple((name, tuple(titles)) for name, titles in ranked))


def classify(image: np.ndarray, models: Mapping[str, object], true_class: int | None = None) -> Classification:
    """Ask every model (title → Keras model) about one prepared image and time each warm call."""
    predictions = []
    for title, model in models.items():
        # The first call on a freshly loaded model traces its predict function; that one-off cost is not latency.
        predict_one(model, image)
        probabilities, seconds = predict_one(model, image)
        predictions.append(ModelPrediction(title, top_k(probabilities), seconds, true_class))
    return Classification(tuple(predictions), find_consensus(predictions))


def pick_test_image(labels: np.ndarray, class_index: int | None, rng: np.random.Generator) -> int:
    """A random test-set index, of the given class when one is given."""
    labels = np.asarray(labels)
    candidates = np.arange(len(labels)) if class_index is None else np.flatnonzero(labels == class_index)
    if len(candidates) == 0:
        raise ValueError(f"No test image has class {class_index}.")
    return int(rng.choice(candidates))


def pixelated(image: np.ndarray, size: int = DISPLAY_SIZE) -> np.ndarray:
    """A uint8 (size, size) enlargement of a 28 × 28 image (uint8, or float in [0, 1]) with sharp square pixels."""
    return enlarge(to_uint8(image), size // IMAGE_SIZE)


def outline_crop(sketch: PreparedSketch) -> Image.Image:
    """The picture as given, with the box around the object that the preparation kept drawn on it."""
    picture = sketch.original.copy()
    left, top, right, bottom = sketch.bounding_box
    # The line scales with the picture so that it stays visible after the page shrinks the picture.
    width = max(2, round(max(picture.size) / 140))
    ImageDraw.Draw(picture).rectangle((left, top, right - 1, bottom - 1), outline=BOX_COLOUR, width=width)
    return picture
