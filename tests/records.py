"""Model records and cache entries made without training, for tests of everything that only reads them.

The evaluation is real (scikit-learn over 200 synthetic predictions), so every figure is consistent, and each
record passes the same checks as one read from meta.json.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from fmnist_core.config import PRESETS, TrainConfig
from fmnist_core.evaluate.evaluation import summarize
from fmnist_core.models.registry import MODEL_SPECS, ModelSpec
from fmnist_core.store.cache import CacheEntry
from fmnist_core.store.record import ModelRecord

HISTORY = {
    "loss": (0.9, 0.5, 0.4),
    "accuracy": (0.7, 0.82, 0.86),
    "val_loss": (0.6, 0.45, 0.41),
    "val_accuracy": (0.78, 0.84, 0.855),
}


def make_record(
    spec: ModelSpec | str = "model1",
    config: TrainConfig | None = None,
    *,
    accuracy_seed: int = 0,
    test_accuracy: float | None = None,
    history: dict | None = None,
    created: str = "2026-11-25T10:00:00",
    single_view_accuracy: float | None = None,
) -> ModelRecord:
    """A record shaped like the pipeline's, evaluated on 200 synthetic predictions (mostly right, seeded)."""
    spec = MODEL_SPECS[spec] if isinstance(spec, str) else spec
    rng = np.random.default_rng(accuracy_seed)
    labels = rng.integers(0, 10, size=200)
    probabilities = rng.dirichlet(np.ones(10), size=200)
    probabilities[np.arange(200), labels] += rng.uniform(0, 1.5, size=200)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    evaluation = summarize(labels, probabilities, inference_seconds=0.5)
    if test_accuracy is not None:
        evaluation = dataclasses.replace(evaluation, test_accuracy=test_accuracy)
    history = {key: tuple(values) for key, values in (history or HISTORY).items()}
    epochs = len(history["loss"])
    return ModelRecord(
        spec=spec,
        config=config or PRESETS["quick"],
        evaluation=evaluation,
        history=history,
        epoch_seconds=tuple(9.5 for _ in range(epochs)),
        wall_seconds=9.5 * epochs,
        images_per_second=1900.0,
        train_images=18000,
        validation_images=6000,
        best_epoch=epochs,
        speed_settings={
            "precision": "mixed_bfloat16",
            "jit_compile": False,
            "threads": 2,
            "batch_size": 256,
            "device": "CPU",
        },
        parameters=1000 + spec.first_filters,
        forward_flops=5_000_000 * spec.first_filters,
        single_view_accuracy=single_view_accuracy,
        machine={"cpu_model": "Test CPU", "cpu_cores": 2},
        created=created,
    )


def make_entry(record: ModelRecord, number: int = 0, problem: str | None = None) -> CacheEntry:
    """A cache entry for `record` (not on disk); damaged, without its record, when `problem` is given."""
    entry_id = f"{record.spec.name}-{number:012x}"
    record = dataclasses.replace(record, entry_id=entry_id, model_sha256="0" * 64)
    path = Path("/nonexistent") / entry_id
    return CacheEntry(entry_id, path, None, problem) if problem else CacheEntry(entry_id, path, record, None)


class StandInModel:
    """Saves like a Keras model: enough for everything that reads only the record."""

    def save(self, path) -> None:
        Path(path).write_bytes(b"stand-in for model.keras")
