"""Evaluate a model on the test set: loss, accuracy, scikit-learn confusion matrix and report, mistakes."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from fmnist_core.fashion_mnist import CLASS_NAMES, NUM_CLASSES


@dataclass
class Evaluation:
    """Test-set results of one model; JSON-ready through `to_dict`."""

    test_loss: float
    test_accuracy: float
    confusion_matrix: list[list[int]]  # Rows = true class, columns = predicted class (scikit-learn's order).
    per_class: list[dict]  # One dict per class: name, precision, recall, f1, support.
    macro_f1: float
    # "true,predicted" → [[test index, confidence in the (wrong) prediction], ...], most confident first.
    mistakes: dict[str, list[list[float]]]
    inference_seconds: float  # Wall time to predict the whole test set.
    images_per_second: float  # Inference throughput over the test set.

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Evaluation:
        return cls(**values)

    def mistakes_for(self, true_class: int, predicted_class: int) -> list[tuple[int, float]]:
        """Test images of `true_class` that the model called `predicted_class`, with its confidence."""
        return [(int(i), float(c)) for i, c in self.mistakes.get(f"{true_class},{predicted_class}", [])]


def predict_probabilities(model, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Class probabilities (N, 10) for uint8 (N, 28, 28) or float (N, 28, 28) images in [0, 1]."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255.0
    batch = images.astype(np.float32, copy=False)[..., None]
    outputs = []
    # Calling the model directly on batches avoids `predict`'s per-call dataset setup (~10× slower for
    # a single image) while staying inside Keras' inference mode.
    for start in range(0, len(batch), batch_size):
        outputs.append(np.asarray(model(batch[start : start + batch_size], training=False), dtype=np.float32))
    return np.concatenate(outputs) if outputs else np.zeros((0, NUM_CLASSES), np.float32)


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
    per_class = [
        {
            "class": index,
            "name": name,
            "precision": report[name]["precision"],
            "recall": report[name]["recall"],
            "f1": report[name]["f1-score"],
            "support": int(report[name]["support"]),
        }
        for index, name in enumerate(CLASS_NAMES)
    ]
    mistakes: dict[str, list[list[float]]] = {}
    confidence = probabilities.max(axis=1)
    for index in np.flatnonzero(predicted != labels):
        mistakes.setdefault(f"{labels[index]},{predicted[index]}", []).append(
            [int(index), round(float(confidence[index]), 4)]
        )
    for pairs in mistakes.values():
        pairs.sort(key=lambda pair: -pair[1])
    return Evaluation(
        test_loss=float(-np.log(picked).mean()) if len(labels) else float("nan"),
        test_accuracy=float((predicted == labels).mean()) if len(labels) else float("nan"),
        confusion_matrix=matrix.astype(int).tolist(),
        per_class=per_class,
        macro_f1=float(report["macro avg"]["f1-score"]),
        mistakes=mistakes,
        inference_seconds=float(inference_seconds),
        images_per_second=float(len(labels) / inference_seconds) if inference_seconds > 0 else 0.0,
    )


def evaluate(model, images: np.ndarray, labels: np.ndarray, batch_size: int = 1024) -> Evaluation:
    """Predict the test images and summarise; the first batch is run once untimed to exclude tracing."""
    predict_probabilities(model, images[:batch_size], batch_size)
    started = time.perf_counter()
    probabilities = predict_probabilities(model, images, batch_size)
    return summarize(labels, probabilities, time.perf_counter() - started)


def single_image_latency(model, image: np.ndarray, repeats: int = 50) -> float:
    """Median seconds to predict one (28, 28) image with a warm model (the Predict page's code path).

    `predict_on_batch` runs Keras' compiled predict step: about 10× faster per image than an eager call.
    """
    batch = np.asarray(image, dtype=np.float32).reshape(1, 28, 28, 1)
    model.predict_on_batch(batch)
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.predict_on_batch(batch)
        timings.append(time.perf_counter() - started)
    return float(np.median(timings))
