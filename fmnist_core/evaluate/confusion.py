"""Reading one model's evaluation: the confusion matrix as cells, its most confused pairs, the mistaken pictures
and the per-class table. Pure functions of a stored `Evaluation`, shared by the Evaluate page and the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from fmnist_core.data.fashion_mnist import CLASS_NAMES
from fmnist_core.evaluate.evaluation import Evaluation


def confusion_cells(matrix: Sequence[Sequence[int]]) -> pd.DataFrame:
    """One row per (true, predicted) cell: indices, class names, count and share of the true class's row."""
    counts = np.asarray(matrix, dtype=int)
    row_totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, row_totals, out=np.zeros(counts.shape), where=row_totals > 0)
    rows = [
        {
            "true_index": true,
            "true_class": CLASS_NAMES[true],
            "predicted_index": predicted,
            "predicted_class": CLASS_NAMES[predicted],
            "count": int(counts[true, predicted]),
            "row_share": float(shares[true, predicted]),
        }
        for true in range(counts.shape[0])
        for predicted in range(counts.shape[1])
    ]
    return pd.DataFrame(rows)


def per_class_table(evaluation: Evaluation) -> pd.DataFrame:
    """Precision, recall, F1 and support per class (scikit-learn's figures, as stored at evaluation)."""
    table = pd.DataFrame([asdict(row) for row in evaluation.per_class])
    return table[["name", "precision", "recall", "f1", "support"]].rename(columns={"name": "class"})


@dataclass(frozen=True)
class ConfusedPair:
    """Test images of one class that the model called another."""

    true_class: int
    predicted_class: int
    count: int
    share: float  # Of all test images of the true class.

    def describe(self) -> str:
        return (
            f"{CLASS_NAMES[self.true_class]} taken for {CLASS_NAMES[self.predicted_class]}: "
            f"{self.count:,} images ({self.share:.1%} of {CLASS_NAMES[self.true_class]})"
        )


def most_confused(matrix: Sequence[Sequence[int]], top: int = 5) -> list[ConfusedPair]:
    """The off-diagonal cells with the most images, largest first (ties by class order)."""
    cells = confusion_cells(matrix)
    mistakes = cells[(cells.true_index != cells.predicted_index) & (cells["count"] > 0)]
    mistakes = mistakes.sort_values("count", ascending=False, kind="stable").head(top)
    return [
        ConfusedPair(int(row.true_index), int(row.predicted_index), int(row.count), float(row.row_share))
        for row in mistakes.itertuples()
    ]


@dataclass(frozen=True)
class MistakenImage:
    """One test image the model got wrong, ready for a gallery."""

    index: int  # Position in the test set.
    confidence: float  # The model's probability for its (wrong) answer.
    caption: str  # "confidence 87% as Shirt".


def mistaken_images(
    evaluation: Evaluation, true_class: int, predicted_class: int, test_images: int
) -> list[MistakenImage]:
    """Test images of `true_class` called `predicted_class`, most confident first.

    test_images: size of the test set on hand; indices beyond it (an entry evaluated on other data) are dropped.
    """
    return [
        MistakenImage(index, confidence, f"confidence {confidence:.0%} as {CLASS_NAMES[predicted_class]}")
        for index, confidence in evaluation.mistakes_for(true_class, predicted_class)
        if index < test_images
    ]
