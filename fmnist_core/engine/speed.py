"""Expected time on a fresh machine: a few batches of the chosen model, measured on the training worker.

"Expected time: not known yet" was the first thing a teacher saw on a new clone. The Train page asks `SpeedProbe`
for the speed of the model, precision and batch size it shows; the first time, a `measure_task` runs on the worker
(a couple of seconds) and its figure is kept in the cache's measured-speeds.json for this machine, so every later
visitor and the queue's start times use it until a real training of that model gives a better one.
"""

from __future__ import annotations

import threading
from pathlib import Path

from fmnist_core.config import TrainConfig
from fmnist_core.engine.cluster import SharedEngine
from fmnist_core.engine.task import measure_task
from fmnist_core.models.registry import ModelSpec
from fmnist_core.training.time_estimate import measured_images_per_second, record_measured_speed

PROBE_TIMEOUT_SECONDS = 600.0  # A probe queued behind a running training waits for it.


class SpeedProbe:
    """Runs at most one probe per (cache, model, precision, batch size) at a time, in a thread that only waits."""

    def __init__(self, engine: SharedEngine):
        self.engine = engine
        self._lock = threading.Lock()
        self._running: set[tuple] = set()
        self._failed: set[tuple] = set()

    @staticmethod
    def _key(spec: ModelSpec, config: TrainConfig, cache_root: Path) -> tuple:
        return (str(cache_root), spec.name, config.precision, config.batch_size)

    def start(self, spec: ModelSpec, config: TrainConfig, cache_root: Path) -> str:
        """ "measured" when the figure is there, else "measuring" (started now or before) or "failed"."""
        if measured_images_per_second(cache_root, spec.name, config) is not None:
            return "measured"
        key = self._key(spec, config, cache_root)
        with self._lock:
            if key in self._failed:
                return "failed"
            if key in self._running:
                return "measuring"
            self._running.add(key)
        threading.Thread(target=self._measure, args=(key, spec, config, cache_root), daemon=True).start()
        return "measuring"

    def _measure(self, key: tuple, spec: ModelSpec, config: TrainConfig, cache_root: Path) -> None:
        try:
            client = self.engine.client()
            future = client.submit(measure_task, spec, config, pure=False, priority=10)
            speed, machine_cpu, cores = future.result(timeout=PROBE_TIMEOUT_SECONDS)
            record_measured_speed(cache_root, spec.name, config, machine_cpu, cores, speed)
        except Exception:  # No engine, a worker that died, a full disk: the page keeps saying "not known yet".
            with self._lock:
                self._failed.add(key)
        finally:
            with self._lock:
                self._running.discard(key)
