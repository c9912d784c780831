"""How long a training request will take on this machine, from what this machine has measured.

The queue shows each visitor when their training should start; that needs a duration for every request ahead.
The speed comes from the cache's own records (each entry keeps its images per second and the machine it ran
on), failing that from a training of the same model running right now, and failing that from a few batches of the
model measured on the training worker (`measure_images_per_second`, kept per machine, model, precision and batch size
in the cache's measured-speeds.json), so a fresh clone shows a time before its first training. A guess with nothing
measured behind it is never made: the estimate is then None.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from fmnist_core.config import TrainConfig
from fmnist_core.data.fashion_mnist import TRAIN_SET_IMAGES
from fmnist_core.files import atomic_file
from fmnist_core.machine import cpu_model, usable_cores
from fmnist_core.store.cache import CacheEntry


def images_per_epoch(config: TrainConfig) -> int:
    """Training images one epoch goes through: what the validation split leaves, capped by the limit."""
    available = TRAIN_SET_IMAGES - int(round(TRAIN_SET_IMAGES * config.validation_split))
    return min(config.train_limit or available, available)


def measured_seconds_per_image(entry: CacheEntry) -> float | None:
    """Wall seconds per trained image (validation included) of an entry trained on this machine; else None."""
    record = entry.record
    if record is None:
        return None
    machine = record.machine
    same_machine = machine.get("cpu_model") == cpu_model() and machine.get("cpu_cores") == usable_cores()
    if not (same_machine and record.wall_seconds > 0):
        return None
    return record.wall_seconds / (record.epochs_run * record.train_images)


SPEEDS_FILE = "measured-speeds.json"  # In the cache root: {speed_key: images per second}.
MEASURED_BATCHES = 8  # Timed batches of a speed measurement (after two untimed ones that trace the step).


@dataclass(frozen=True)
class Estimate:
    """How long a training should take here, and what that comes from."""

    seconds: float
    source: str  # "trained" (this machine's earlier trainings), "running" (one running now) or "measured" (a probe).


def speed_key(model_name: str, config: TrainConfig, machine_cpu: str, cores: int) -> str:
    return f"{machine_cpu}|{cores}|{model_name}|{config.precision}|{config.batch_size}"


def measured_images_per_second(cache_root: Path, model_name: str, config: TrainConfig) -> float | None:
    """This machine's probe of (model, precision, batch size), from the cache's speeds file; None if not measured."""
    try:
        speeds = json.loads((cache_root / SPEEDS_FILE).read_text(encoding="utf-8"))
        speed = speeds.get(speed_key(model_name, config, cpu_model(), usable_cores()))
    except (OSError, ValueError, AttributeError):
        return None
    return float(speed) if isinstance(speed, int | float) and speed > 0 else None


def record_measured_speed(
    cache_root: Path, model_name: str, config: TrainConfig, machine_cpu: str, cores: int, images_per_second: float
) -> None:
    """Keep a probe's result (replacing the file atomically: readers never see half of it)."""
    path = cache_root / SPEEDS_FILE
    try:
        speeds = json.loads(path.read_text(encoding="utf-8"))
        speeds = speeds if isinstance(speeds, dict) else {}
    except (OSError, ValueError):
        speeds = {}
    speeds[speed_key(model_name, config, machine_cpu, cores)] = images_per_second
    with atomic_file(path) as stream:
        stream.write(json.dumps(speeds, indent=1).encode())


def measure_images_per_second(spec, config: TrainConfig, batches: int = MEASURED_BATCHES) -> float:
    """Training images per second of `spec` with `config`'s precision and batch size, over a few batches of noise.

    Two untimed batches first (the step's tracing); the figure then matches the first epoch's pace within the
    noise of a couple of seconds' measurement. Runs where trainings run: on the training worker.
    """
    import numpy as np

    from fmnist_core.models.registry import build_from_spec
    from fmnist_core.training.loop import compile_model, make_dataset

    warmup = 2
    images = np.random.default_rng(0).integers(0, 256, size=((warmup + batches) * config.batch_size, 28, 28))
    labels = np.arange(len(images)) % 10
    model = build_from_spec(spec, seed=config.seed, precision=config.precision)
    compile_model(model, config, warmup + batches)
    dataset = make_dataset(images.astype(np.uint8), labels, config.batch_size)
    iterator = iter(dataset)
    for _ in range(warmup):
        model.train_on_batch(*next(iterator))
    started = time.perf_counter()
    for _ in range(batches):
        model.train_on_batch(*next(iterator))
    return batches * config.batch_size / (time.perf_counter() - started)


def training_estimate(
    model_name: str,
    config: TrainConfig,
    entries: list[CacheEntry],
    live_images_per_second: float | None = None,
    measured_images_per_second: float | None = None,
) -> Estimate | None:
    """`estimate_training_seconds` with its source; `measured_images_per_second`: a probe's, used last."""
    seconds = estimate_training_seconds(model_name, config, entries, live_images_per_second)
    if seconds is not None:
        return Estimate(seconds, "trained" if _measured_rates(model_name, config, entries) else "running")
    if measured_images_per_second:
        return Estimate(images_per_epoch(config) * config.epochs / measured_images_per_second, "measured")
    return None


def _measured_rates(model_name: str, config: TrainConfig, entries: list[CacheEntry]) -> list[tuple[int, float]]:
    return [
        (entry.record.config.batch_size, rate)
        for entry in entries
        if entry.model_name == model_name
        and entry.record is not None
        and entry.record.config.precision == config.precision
        and (rate := measured_seconds_per_image(entry)) is not None
    ]


def estimate_training_seconds(
    model_name: str, config: TrainConfig, entries: list[CacheEntry], live_images_per_second: float | None = None
) -> float | None:
    """Seconds of training for (model, config) here: all planned epochs, so early stopping can only shorten it.

    entries: the cache's entries; those of the same model, precision and machine give the speed (median), and of
    those, the ones trained with the same batch size when there are any (small batches run fewer images a second).
    live_images_per_second: a running training of the same model, used when the cache has no measurement.
    """
    measured = _measured_rates(model_name, config, entries)
    same_batch = [rate for batch_size, rate in measured if batch_size == config.batch_size]
    rates = same_batch or [rate for _, rate in measured]
    if rates:
        seconds_per_image = statistics.median(rates)
    elif live_images_per_second:
        seconds_per_image = 1.0 / live_images_per_second
    else:
        return None
    return seconds_per_image * images_per_epoch(config) * config.epochs
