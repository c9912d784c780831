"""How long a training request will take on this machine, from what this machine has measured.

The queue shows each visitor when their training should start; that needs a duration for every request ahead.
The speed comes from the cache's own records (each entry keeps its images per second and the machine it ran
on) or, failing that, from a training of the same model running right now. A guess with nothing measured
behind it is never made: the estimate is then None and the page says it is not known yet.
"""

from __future__ import annotations

import statistics

from fmnist_core.config import TrainConfig
from fmnist_core.data.fashion_mnist import TRAIN_SET_IMAGES
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


def estimate_training_seconds(
    model_name: str, config: TrainConfig, entries: list[CacheEntry], live_images_per_second: float | None = None
) -> float | None:
    """Seconds of training for (model, config) here: all planned epochs, so early stopping can only shorten it.

    entries: the cache's entries; those of the same model, precision and machine give the speed (median), and of
    those, the ones trained with the same batch size when there are any (small batches run fewer images a second).
    live_images_per_second: a running training of the same model, used when the cache has no measurement.
    """
    measured = [
        (entry.record.config.batch_size, rate)
        for entry in entries
        if entry.model_name == model_name
        and entry.record is not None
        and entry.record.config.precision == config.precision
        and (rate := measured_seconds_per_image(entry)) is not None
    ]
    same_batch = [rate for batch_size, rate in measured if batch_size == config.batch_size]
    rates = same_batch or [rate for _, rate in measured]
    if rates:
        seconds_per_image = statistics.median(rates)
    elif live_images_per_second:
        seconds_per_image = 1.0 / live_images_per_second
    else:
        return None
    return seconds_per_image * images_per_epoch(config) * config.epochs
