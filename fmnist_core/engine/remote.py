"""One app training on the Dask engine: submit the task, relay its progress, pass Stop on, save what comes back.

`DaskTrainer` is the `pipeline.TrainingRunner` every training the app starts goes through (the Train page, Home's
quick-train, Train again, Train my own copy). The job manager's thread that calls it only waits on the network:
the training itself runs in a worker process (fmnist_core/engine/task.py), so the web server never trains.
"""

from __future__ import annotations

import queue
import uuid

from fmnist_core.config import TrainConfig
from fmnist_core.engine.cluster import SharedEngine
from fmnist_core.engine.task import TrainedModel, progress_from_message, train_task
from fmnist_core.errors import ClusterError
from fmnist_core.models.registry import ModelSpec
from fmnist_core.training.loop import ProgressCallback, StopCheck
from fmnist_core.training.pipeline import Outcome, reuse_or_check

POLL_SECONDS = 0.2  # How often the waiting thread relays progress, checks Stop and looks for its worker.
WORKER_LOST = (
    "The Dask worker training this model stopped (killed, out of memory, or its machine went away); nothing was "
    "saved. Ask again to train it: the queue has moved on."
)


class WorkerLost(ClusterError):
    """The worker running a training went away; the request ends failed."""


class DaskTrainer:
    """Trains on `engine` and saves into the server's cache (see the module docstring).

    load_data: called on the worker for the arrays (default: the worker's own Fashion-MNIST files).
    threads: TensorFlow threads per worker process (default: all the cores it may use).
    """

    def __init__(self, engine: SharedEngine, load_data=None, threads: int | None = None):
        self.engine, self.load_data, self.threads = engine, load_data, threads

    def __call__(
        self, spec: ModelSpec, config: TrainConfig, *, progress, should_stop, cache, retrain, owner
    ) -> Outcome:
        """A `pipeline.TrainingRunner`: reuse the cached entry, or train on the engine and save into `cache`."""
        reused = reuse_or_check(spec, config, cache, retrain)
        if reused is not None:
            return reused
        try:
            trained = self.train(spec, config, progress, should_stop, owner)
        except WorkerLost:
            self.engine.after_a_lost_worker()
            raise
        entry = cache.save(trained, trained.record, replace=retrain)
        return Outcome(entry, reused=False, stopped_after_training=trained.stopped_after_training)

    def train(
        self, spec: ModelSpec, config: TrainConfig, progress: ProgressCallback, should_stop: StopCheck, owner
    ) -> TrainedModel:
        """Run `train_task` on the cluster until it ends; ClusterError when its worker goes away meanwhile."""
        from distributed import Event, KilledWorker, wait

        client = self.engine.client()
        token = uuid.uuid4().hex[:12]
        topic, stop_name = f"fmnist-train-{token}", f"fmnist-stop-{token}"
        events: queue.Queue = queue.Queue()
        # The handler runs on the client's event-loop thread; the queue hands events to this thread.
        client.subscribe_topic(topic, lambda event: events.put(event[1]))
        future = client.submit(
            train_task,
            spec,
            config,
            topic=topic,
            stop_name=stop_name,
            threads=self.threads,
            load_data=self.load_data,
            owner=owner,
            key=f"fmnist-train-{spec.name}-{token}",
            pure=False,
        )
        worker, stop_sent = None, False
        try:
            while True:
                try:
                    done = bool(wait([future], timeout=POLL_SECONDS).done)
                except TimeoutError:
                    done = False
                while not events.empty():
                    message = events.get()
                    worker = message.get("worker", worker)
                    progress(progress_from_message(message))
                if should_stop() and not stop_sent:
                    Event(stop_name, client=client).set()
                    stop_sent = True
                if done:
                    return future.result()
                # A worker that died (kill -9, out of memory, its PC switched off) takes its task with it; a
                # scheduler that allows retries would start it over unseen, so the request ends here, clearly.
                if worker is not None and worker not in connected_workers(client):
                    raise WorkerLost(WORKER_LOST)
        except KilledWorker:
            raise WorkerLost(WORKER_LOST) from None
        finally:
            if not future.done():
                future.cancel()
            client.unsubscribe_topic(topic)


def connected_workers(client) -> dict:
    """The scheduler's workers now (address: threads); ClusterError when the scheduler cannot be asked."""
    try:
        return dict(client.nthreads())
    except (OSError, TimeoutError) as error:
        raise ClusterError(f"Lost the connection to the Dask scheduler ({error}); nothing was saved.") from None
