"""Evaluate a model on the test set: loss, accuracy, scikit-learn confusion matrix and report, mistakes.

`Evaluation` is the typed result the cache stores with every model; `from_dict` checks a stored one field by
field (fmnist_core.json_checks), because meta.json is a file anyone can edit. Reading an evaluation (the
confusion cells, the worst pairs, the mistaken pictures) is fmnist_core.evaluate.confusion.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from fmnist_core import json_checks as check
from fmnist_core.data.fashion_mnist import CLASS_NAMES, IMAGE_SIZE, NUM_CLASSES
from fmnist_core.pixels import to_unit_range

MISTAKE_KEY = re.compile(r"^([0-9]),([0-9])$")  # "true,predicted" class indices.


@dataclass(frozen=True)
class ClassMetrics:
    """scikit-learn's figures for one class."""

    class_index: int  # 0..9, the Fashion-MNIST label.
    name: str  # CLASS_NAMES[class_index].
    precision: float  # Of the images the model called this class, the share that are.
    recall: float  # Of the images of this class, the share the model found.
    f1: float
    support: int  # Test images of this class.

    def to_dict(self) -> dict:
        # "class", not "class_index": the key meta.json has always used.
        return {
            "class": self.class_index,
            "name": self.name,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "support": self.support,
        }

    @classmethod
    def from_dict(cls, values, where: str) -> ClassMetrics:
        values = check.obj(values, where)
        return cls(
            class_index=check.integer(
                check.required(values, "class", where), f"{where}.class", minimum=0, maximum=NUM_CLASSES - 1
            ),
            name=check.text(check.required(values, "name", where), f"{where}.name"),
            **{
                key: check.number(check.required(values, key, where), f"{where}.{key}", minimum=0, maximum=1)
                for key in ("precision", "recall", "f1")
            },
            support=check.integer(check.required(values, "support", where), f"{where}.support", minimum=0),
        )


@dataclass(frozen=True)
class Evaluation:
    """Test-set results of one model; JSON-ready through `to_dict`, checked by `from_dict`."""

    test_loss: float  # Cross-entropy; may be NaN for a run that diverged, so it is not required to be finite.
    test_accuracy: float
    confusion_matrix: tuple[tuple[int, ...], ...]  # Rows = true class, columns = predicted (scikit-learn's order).
    per_class: tuple[ClassMetrics, ...]  # One row per class, in class order.
    macro_f1: float
    # "true,predicted" → ((test index, confidence in the wrong answer), ...), most confident first.
    mistakes: Mapping[str, tuple[tuple[int, float], ...]]
    inference_seconds: float  # Wall time to predict the whole test set.
    images_per_second: float  # Inference throughput over the test set.

    @property
    def test_images(self) -> int:
        """How many test images the evaluation covered (10,000 for the real test set)."""
        return int(np.sum(self.confusion_matrix))

    def mistakes_for(self, true_class: int, predicted_class: int) -> list[tuple[int, float]]:
        """Test images of `true_class` that the model called `predicted_class`, with its confidence."""
        return list(self.mistakes.get(f"{true_class},{predicted_class}", ()))

    def to_dict(self) -> dict:
        return {
            "test_loss": self.test_loss,
            "test_accuracy": self.test_accuracy,
            "confusion_matrix": [list(row) for row in self.confusion_matrix],
            "per_class": [row.to_dict() for row in self.per_class],
            "macro_f1": self.macro_f1,
            "mistakes": {key: [list(pair) for pair in pairs] for key, pairs in self.mistakes.items()},
            "inference_seconds": self.inference_seconds,
            "images_per_second": self.images_per_second,
        }

    @classmethod
    def from_dict(cls, values, where: str = "evaluation") -> Evaluation:
        """Check and build; json_checks.FieldError names the field at fault."""
        values = check.obj(values, where)

        def field(key: str):
            return check.required(values, key, where)

        matrix_path = f"{where}.confusion_matrix"
        rows = check.array(field("confusion_matrix"), matrix_path)
        if len(rows) != NUM_CLASSES:
            raise check.fail(matrix_path, f"{NUM_CLASSES} rows of {NUM_CLASSES} counts", rows)
        matrix = []
        for row_index, row in enumerate(rows):
            row_path = f"{matrix_path}[{row_index}]"
            if not isinstance(row, list) or len(row) != NUM_CLASSES:
                raise check.fail(row_path, f"a list of {NUM_CLASSES} counts", row)
            matrix.append(tuple(check.integer(count, f"{row_path}[{i}]", minimum=0) for i, count in enumerate(row)))
        per_class_path = f"{where}.per_class"
        per_class = check.array(field("per_class"), per_class_path)
        if len(per_class) != NUM_CLASSES:
            raise check.fail(per_class_path, f"a list of {NUM_CLASSES} class rows", per_class)
        mistakes = {}
        for key, pairs in check.obj(field("mistakes"), f"{where}.mistakes").items():
            path = f"{where}.mistakes.{key}"
            if not MISTAKE_KEY.match(key):
                raise check.FieldError(f"`{path}` is not a pair of class numbers such as `6,0`")
            mistakes[key] = tuple(
                _mistake(pair, f"{path}[{index}]") for index, pair in enumerate(check.array(pairs, path))
            )
        return cls(
            test_loss=check.number(field("test_loss"), f"{where}.test_loss", finite=False),
            test_accuracy=check.number(field("test_accuracy"), f"{where}.test_accuracy", minimum=0, maximum=1),
            confusion_matrix=tuple(matrix),
            per_class=tuple(ClassMetrics.from_dict(row, f"{per_class_path}[{i}]") for i, row in enumerate(per_class)),
            macro_f1=check.number(field("macro_f1"), f"{where}.macro_f1", minimum=0, maximum=1),
            mistakes=mistakes,
            inference_seconds=check.number(field("inference_seconds"), f"{where}.inference_seconds", minimum=0),
            images_per_second=check.number(field("images_per_second"), f"{where}.images_per_second", minimum=0),
        )


def _mistake(pair, path: str) -> tuple[int, float]:
    if not isinstance(pair, list) or len(pair) != 2:
        raise check.fail(path, "a pair [test image index, confidence]", pair)
    return check.integer(pair[0], f"{path}[0]", minimum=0), check.number(pair[1], f"{path}[1]", minimum=0, maximum=1)


# Predicting ------------------------------------------------------------------------------------------------


def predict_probabilities(model, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Class probabilities (N, 10) for uint8 (N, 28, 28) or float (N, 28, 28) images in [0, 1]."""
    batch = to_unit_range(images)[..., None]
    outputs = []
    # Calling the model directly on batches avoids `predict`'s per-call dataset setup (~10× slower for
    # a single image) while staying inside Keras' inference mode.
    for start in range(0, len(batch), batch_size):
        outputs.append(np.asarray(model(batch[start : start + batch_size], training=False), dtype=np.float32))
    return np.concatenate(outputs) if outputs else np.zeros((0, NUM_CLASSES), np.float32)


def predict_one(model, image: np.ndarray) -> tuple[np.ndarray, float]:
    """Class probabilities (10,) for one (28, 28) image, and the seconds the model call took.

    image: float in [0, 1] (a prepared sketch) or uint8 in 0..255 (a dataset image).
    """
    batch = to_unit_range(image).reshape(1, IMAGE_SIZE, IMAGE_SIZE, 1)
    started = time.perf_counter()
    # predict_on_batch runs Keras' compiled predict function: about 1 ms per image on the 2-core CPU we
    # measured, where an eager model call takes about 10 ms, nearly all of it per-layer Python overhead.
    probabilities = np.asarray(model.predict_on_batch(batch), dtype=np.float32)[0]
    return probabilities, time.perf_counter() - started


def single_image_latency(model, image: np.ndarray, repeats: int = 50) -> float:
    """Median seconds of `predict_one` (the Predict page's call) on a warm model; the first call is not counted."""
    predict_one(model, image)
    return float(np.median([predict_one(model, image)[1] for _ in range(repeats)]))


# Scoring ---------------------------------------------------------------------------------------------------


def summarize(labels: np.ndarray, probabilities: np.ndarray, inference_seconds: float = 0.0) -> Evaluation:
    """Turn true labels and predicted probabilities into an Evaluation (pure NumPy + scikit-learn)."""
    from sklearn.metrics import classification_report, confusion_matrix

    labels = np.asarray(labels).astype(int)
    predicted = probabilities.argmax(axis=1)
    picked = np.clip(probabilities[np.arange(len(labels)), labels], 1e-7, 1.0)
    matrix = confusion_matrix(labels, predicted, labels=list(range(NUM_CLASSES)))
    report = classification_report(
        labels,
        predicted,
        labels=list(range(NUM_CLASSES)),
        target_names=list(CLASS_NAMES),
        output_dict=True,
        zero_division=0,
    )
    per_class = tuple(
        ClassMetrics(
            index,
            name,
            float(report[name]["precision"]),
            float(report[name]["recall"]),
            float(report[name]["f1-score"]),
            int(report[name]["support"]),
        )
        for index, name in enumerate(CLASS_NAMES)
    )
    mistakes: dict[str, list[tuple[int, float]]] = {}
    confidence = probabilities.max(axis=1)
    for index in np.flatnonzero(predicted != labels):
        mistakes.setdefault(f"{labels[index]},{predicted[index]}", []).append(
            (int(index), round(float(confidence[index]), 4))
        )
    return Evaluation(
        test_loss=float(-np.log(picked).mean()) if len(labels) else float("nan"),
        test_accuracy=float((predicted == labels).mean()) if len(labels) else float("nan"),
        confusion_matrix=tuple(tuple(int(count) for count in row) for row in matrix),
        per_class=per_class,
        macro_f1=float(report["macro avg"]["f1-score"]),
        mistakes={key: tuple(sorted(pairs, key=lambda pair: -pair[1])) for key, pairs in mistakes.items()},
        inference_seconds=float(inference_seconds),
        images_per_second=float(len(labels) / inference_seconds) if inference_seconds > 0 else 0.0,
    )


def evaluate(model, images: np.ndarray, labels: np.ndarray, batch_size: int = 1024) -> Evaluation:
    """Predict the test images and summarise; the first batch is run once untimed to exclude tracing."""
    predict_probabilities(model, images[:batch_size], batch_size)
    started = time.perf_counter()
    probabilities = predict_probabilities(model, images, batch_size)
    return summarize(labels, probabilities, time.perf_counter() - started)
