"""The task a Dask worker runs to train: one model, progress on an event topic, Stop through a Dask Event.

Sweeps and the app's trainings submit this same function. It trains with `pipeline.train_record`, saves the model
to a temporary file of the worker and sends its bytes back with the record (`TrainedModel`): the worker may be
another machine with a cache of its own, so the server writes the result into its own cache (`ModelCache.save`,
with its atomic replace). Progress goes out as `progress_message(event)` dicts, one format for both callers.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fmnist_core.config import TrainConfig
from fmnist_core.models.registry import ModelSpec
from fmnist_core.store.cache import MODEL_FILE
from fmnist_core.store.record import ModelRecord
from fmnist_core.training.loop import Progress

PROGRESS_INTERVAL_SECONDS = 0.5  # A worker reports batch progress at most this often (other events always).
STOP_CHECK_SECONDS = 0.25  # How often the training loop asks the scheduler whether Stop was pressed.
LIVE_CHECK_IMAGES = 1000  # The fixed validation slice whose accuracy the live curves show every ~10 % of a run.
PROGRESS_FIELDS = tuple(field.name for field in dataclasses.fields(Progress))


@dataclass(frozen=True)
class TrainedModel:
    """What a training task returns: the saved `.keras` file's bytes and the model's record.

    It stands in for the Keras model in `ModelCache.save` (which calls `model.save(path)`), so the server writes
    the bytes into its cache without loading TensorFlow or the model.
    """

    model_bytes: bytes
    record: ModelRecord  # Without entry id and checksum: the cache that saves it stamps both.
    stopped_after_training: bool = False  # Stop came after the last batch, while the model was tested: kept.

    def save(self, path: Path | str) -> None:
        Path(path).write_bytes(self.model_bytes)


def progress_message(event: Progress) -> dict:
    """A Progress event as the plain dict a worker sends on its topic."""
    return {name: getattr(event, name) for name in PROGRESS_FIELDS}


def progress_from_message(message: dict) -> Progress:
    """The Progress event a `progress_message` dict stands for (extra keys, such as Dask's stamps, ignored)."""
    return Progress(**{name: message[name] for name in PROGRESS_FIELDS})


def train_task(
    spec: ModelSpec,
    config: TrainConfig,
    *,
    topic: str,
    stop_name: str | None = None,
    threads: int | None = None,
    load_data: Callable[[], tuple] | None = None,
    owner: str | None = None,
    live_check_images: int = LIVE_CHECK_IMAGES,
    tags: dict | None = None,
) -> TrainedModel:
    """Train `spec` with `config` on this Dask worker and return the model (see the module docstring).

    topic: the event topic progress goes to, as `progress_message` dicts plus "worker_name".
    stop_name: the name of the `distributed.Event` that asks this training to stop (TrainingCancelled).
    threads: TensorFlow's threads in this worker process (set before its first op; later tasks keep it).
    load_data: called here for the arrays; default: Fashion-MNIST from this worker's own disk.
    tags: added to every progress message (a sweep's model title and seed, to tell its runs apart).
    """
    from distributed import Event, get_worker

    from fmnist_core.machine import import_tensorflow
    from fmnist_core.training.pipeline import train_record

    worker = get_worker()
    import_tensorflow(threads)
    import keras

    # Cleared before a run (the last one's graph and objects) rather than after it: a stopped or failed run's answer
    # goes back without waiting for that clean-up and its garbage collection.
    keras.backend.clear_session()

    stop = Event(stop_name) if stop_name else None
    asked = {"at": 0.0, "stop": False}

    def should_stop() -> bool:
        # A round trip to the scheduler, so at most every STOP_CHECK_SECONDS: Stop still lands within a second.
        now = time.monotonic()
        if stop is not None and not asked["stop"] and now - asked["at"] >= STOP_CHECK_SECONDS:
            asked["at"], asked["stop"] = now, stop.is_set()
        return asked["stop"]

    last_sent = [0.0]

    def progress(event: Progress) -> None:
        now = time.monotonic()
        if event.kind == "batch" and now - last_sent[0] < PROGRESS_INTERVAL_SECONDS:
            return
        last_sent[0] = now
        # Not "worker": Dask stamps that key with the worker's address.
        worker.log_event(topic, {**(tags or {}), **progress_message(event), "worker_name": str(worker.name)})

    model, record = train_record(
        spec,
        config,
        progress=progress,
        should_stop=should_stop,
        data=load_data() if load_data is not None else None,
        owner=owner,
        live_check_images=live_check_images,
    )
    with tempfile.TemporaryDirectory(prefix="fmnist-trained-") as folder:
        path = Path(folder) / MODEL_FILE
        model.save(path)
        payload = path.read_bytes()
    return TrainedModel(payload, record, stopped_after_training=stop is not None and stop.is_set())


def measure_task(spec: ModelSpec, config: TrainConfig) -> tuple[float, str, int]:
    """(images per second, CPU model, cores) of a few batches of `spec` on this worker (time_estimate's probe)."""
    from fmnist_core.machine import cpu_model, import_tensorflow, usable_cores
    from fmnist_core.training.time_estimate import measure_images_per_second

    import_tensorflow()
    import keras

    keras.backend.clear_session()  # As in train_task: the last task's leftovers go before this one starts.
    return measure_images_per_second(spec, config), cpu_model(), usable_cores()
