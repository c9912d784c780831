"""Sweeps: train every (model, seed) pair on Dask distributed and reduce the runs to statistics.

Each run is a task of the training engine (fmnist_core/engine: why Dask, docs/decisions/why-dask.md), the same
`train_task` the app's trainings run: the worker sends the model back and this process saves it as an ordinary cache
entry, so workers need not share its disk. Runs already cached are reused without touching the engine, and each
finished run is saved as it comes in, so an interrupted sweep resumes where it stopped. A worker that dies has its
run started again on another (Dask's retries). A worker trains one run at a time (one
task thread per worker process: Keras' random seed and TensorFlow's thread pools are per process), with its
TensorFlow threads capped so that parallel runs on one machine share its cores instead of fighting over them.
"""

from __future__ import annotations

import queue
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from fmnist_core.config import SEED_MAX, TrainConfig
from fmnist_core.engine.cluster import open_engine
from fmnist_core.engine.task import TrainedModel, progress_from_message, train_task
from fmnist_core.errors import ClusterError, ConfigError, FmnistError
from fmnist_core.machine import usable_cores
from fmnist_core.models.registry import ModelSpec
from fmnist_core.store.cache import ModelCache
from fmnist_core.sweep.result import RunResult, SweepResult, save_sweep, summarize_runs, sweep_id

# Trainings at once on one machine. Measured on the 2-core development machine (python benchmarks/sweep_workers.py,
# docs/results/sweeps.md).
DEFAULT_LOCAL_WORKERS = 1
POLL_SECONDS = 0.25  # How often the client drains progress events and checks the workers.
# More seeds than anyone could train per model (a thousand full-preset runs is weeks on a GPU); more is a typo.
MOST_SEEDS = 1000


@dataclass(frozen=True)
class SweepEvent:
    """What the caller hears while a sweep runs (on the calling thread)."""

    kind: str  # "reused", "progress", "finished", "failed" (one run) or "note" (the cluster).
    text: str  # Progress detail, failure reason or note, in words.
    model: str = ""  # Title of the run's model ("" for notes).
    seed: int = 0
    fraction: float = 0.0  # Share of the run's planned batches done.
    run: RunResult | None = None  # Set on "reused" and "finished".
    worker: str = ""  # Name of the Dask worker sending progress.


EventCallback = Callable[[SweepEvent], None]
DataLoader = Callable[[], tuple]


def sweep_seeds(first_seed: int, count: int) -> tuple[int, ...]:
    """`count` consecutive seeds from `first_seed` (the preset's own seed comes first, so its runs are reused).

    Checked before anything is built or printed: the count (a huge one once filled the memory with its range) and
    the last seed, which must be a seed too.
    """
    if not 1 <= count <= MOST_SEEDS:
        raise ConfigError(f"A sweep needs at least one seed and at most {MOST_SEEDS:,} per model (got {count:,}).")
    last = first_seed + count - 1
    if last > SEED_MAX:
        raise ConfigError(
            f"{count:,} seeds from {first_seed:,} would end at {last:,}, past the largest seed ({SEED_MAX:,}). "
            f"Start lower (--seed {SEED_MAX - count + 1} or less) or ask for fewer seeds."
        )
    return tuple(range(first_seed, first_seed + count))


def run_from_entry(entry, seed: int, reused: bool) -> RunResult:
    """The figures a sweep keeps of one trained cache entry."""
    record = entry.record
    return RunResult(
        model=entry.model_name,
        title=entry.title,
        seed=seed,
        entry_id=entry.entry_id,
        test_accuracy=record.test_accuracy,
        training_seconds=record.wall_seconds,
        images_per_second=record.images_per_second,
        reused=reused,
        host=record.machine.get("hostname", ""),
        threads=record.speed_settings.get("threads"),
    )


def progress_text(message: dict) -> str:
    """A sweep's line for one progress message of `engine.task.train_task`: 'epoch 1/2 · 1,234 img/s · …'."""
    event = progress_from_message(message)
    detail = f"epoch {event.epoch}/{event.epochs}"
    if event.kind != "start":
        detail += f" · {event.images_per_second:,.0f} img/s"
    if "val_accuracy" in event.metrics:
        detail += f" · validation {event.metrics['val_accuracy']:.2%}"
    return detail


def run_sweep(
    specs: Sequence[ModelSpec],
    config: TrainConfig,
    seeds: Sequence[int],
    *,
    preset: str = "custom",
    scheduler: str | None = None,
    workers: int = DEFAULT_LOCAL_WORKERS,
    threads_per_run: int | None = None,
    cache: ModelCache | None = None,
    load_data: DataLoader | None = None,
    on_event: EventCallback | None = None,
    connect_timeout: float = 10.0,
    worker_wait_seconds: float = 120.0,
    out: Path | None = None,
) -> SweepResult:
    """Train (or reuse) every (model, seed) run, then save and return the statistics.

    threads_per_run: TensorFlow threads per training; default: this machine's cores shared among the local
    workers, or all the cores a worker process may use on a cluster.
    load_data: called on the worker for each run trained; default: Fashion-MNIST from the worker's own disk.
    worker_wait_seconds: how long the sweep waits while no worker is connected before it gives up.
    out: a file to write the sweep's JSON to, besides `<cache root>/sweeps/<sweep id>.json`.
    Raises ClusterError when the scheduler cannot be reached, workers are gone, or runs failed; the runs that
    finished are in the cache either way, so running the same sweep again resumes.
    """
    if not specs:
        raise ConfigError("A sweep needs at least one model.")
    cache = cache or ModelCache()
    on_event = on_event or (lambda event: None)
    if threads_per_run is None and not scheduler:
        threads_per_run = max(1, usable_cores() // workers)
    planned = [(spec, config.replace(seed=seed)) for seed in seeds for spec in specs]
    finished: dict[tuple[str, int], RunResult] = {}
    engine = {"kind": "scheduler" if scheduler else "local", "address": scheduler, "threads_per_run": threads_per_run}
    missing = [(spec, run_config) for spec, run_config in planned if cache.find(spec, run_config) is None]
    to_train, client = [], None
    with ExitStack() as held:
        if missing:  # The engine first: an unreachable scheduler is refused before anything is written.
            client = held.enter_context(open_engine(scheduler, workers, connect_timeout))
            engine["workers"] = len(client.nthreads())
            to_train = _claim_runs(missing, cache, held, on_event)
        for spec, run_config in planned:
            entry = None if (spec, run_config) in to_train else cache.find(spec, run_config)
            if entry is not None:
                run = run_from_entry(entry, run_config.seed, reused=True)
                finished[(spec.name, run_config.seed)] = run
                on_event(SweepEvent("reused", "already in the cache", run.title, run.seed, 1.0, run))
        if to_train:
            trained = _train_on(client, to_train, cache, threads_per_run, load_data, on_event, worker_wait_seconds)
            finished.update(trained)
    failures = [(spec, run_config) for spec, run_config in to_train if (spec.name, run_config.seed) not in finished]
    if failures:
        names = ", ".join(f"{spec.title} seed {run_config.seed}" for spec, run_config in failures)
        raise ClusterError(
            f"{len(failures)} of {len(planned)} runs did not finish ({names}); the {len(finished)} that finished are "
            "kept in the model cache. Run the same command again to train only the missing ones."
        )
    runs = tuple(finished[(spec.name, run_config.seed)] for spec, run_config in planned)
    models, comparisons = summarize_runs(specs, runs)
    result = SweepResult(
        sweep_id(preset, specs, config, seeds),
        preset,
        config.to_dict(),
        tuple(seeds),
        runs,
        models,
        comparisons,
        engine,
        time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    save_sweep(result, cache.root, also_to=out)
    return result


def _claim_runs(planned, cache: ModelCache, held: ExitStack, on_event: EventCallback) -> list:
    """The runs this sweep must train, each one's training lock held in `held` (issue 44: two sweeps on one cache
    never train the same run twice). A run another process holds is waited for, then found in the cache. Locks are
    taken in entry-id order, so two sweeps that share runs cannot each hold one the other waits for."""
    claimed = []
    for spec, run_config in sorted(planned, key=lambda run: cache.entry_id(*run)):
        told = []

        def while_waiting(spec=spec, run_config=run_config, told=told) -> None:
            if not told:
                told.append(True)
                text = "another process is training this run: waiting to reuse it"
                on_event(SweepEvent("progress", text, spec.title, run_config.seed, 0.0))

        held.enter_context(cache.training_lock(spec, run_config, while_waiting))
        if cache.find(spec, run_config) is None:
            claimed.append((spec, run_config))
    return [run for run in planned if run in claimed]


def _train_on(client, to_train, cache, threads, load_data, on_event, worker_wait_seconds) -> dict:
    """Submit the runs to the cluster, relay progress, and collect what finished (failures become events)."""
    from distributed import wait

    topic = f"fmnist-sweep-{uuid.uuid4().hex[:8]}"
    events: queue.Queue = queue.Queue()
    # The handler runs on the client's event-loop thread; the queue hands events to the caller's thread.
    client.subscribe_topic(topic, lambda event: events.put(event[1]))
    pending = {}
    for index, (spec, run_config) in enumerate(to_train):
        future = client.submit(
            train_task,
            spec,
            run_config,
            topic=topic,
            threads=threads,
            load_data=load_data,
            live_check_images=0,
            tags={"model": spec.title, "seed": run_config.seed},
            key=f"{topic}-{spec.name}-seed{run_config.seed}",
            priority=len(to_train) - index,  # Seed by seed, so an interrupted sweep leaves whole seeds.
            pure=False,
        )
        pending[future] = (spec, run_config)
    finished: dict[tuple[str, int], RunResult] = {}
    watcher = _WorkerWatcher(client, worker_wait_seconds, on_event)
    try:
        while pending:
            try:
                done = wait(list(pending), timeout=POLL_SECONDS, return_when="FIRST_COMPLETED").done
            except TimeoutError:  # Nothing finished within the poll interval.
                done = ()
            while not events.empty():
                message = events.get()
                on_event(
                    SweepEvent(
                        "progress",
                        progress_text(message),
                        message["model"],
                        message["seed"],
                        progress_from_message(message).fraction,
                        worker=message["worker_name"],
                    )
                )
            for future in done:
                spec, run_config = pending[future]
                if _collect(future, spec, run_config, finished, on_event, worker_wait_seconds, cache):
                    del pending[future]
            if pending:
                watcher.check(finished_count=len(finished), pending_count=len(pending))
    except BaseException:
        client.cancel(list(pending))
        raise
    finally:
        client.unsubscribe_topic(topic)
    return finished


def _collect(
    future,
    spec: ModelSpec,
    run_config: TrainConfig,
    finished: dict,
    on_event: EventCallback,
    wait_seconds: float,
    cache: ModelCache,
) -> bool:
    """Take a finished run's result (or its failure) into `finished` and the events; False when the result could not
    be had within `wait_seconds`: it went with its worker after the run finished (the sweep's own events can kill
    workers, a machine can go away), so the scheduler runs it again and the run stays pending, where the worker
    watcher stops the sweep if no worker comes back. Without the limit the sweep waited for that result forever."""
    from distributed import KilledWorker

    try:
        trained: TrainedModel = future.result(timeout=wait_seconds)
        run = run_from_entry(cache.save(trained, trained.record), run_config.seed, reused=False)
    except TimeoutError:
        return False
    except KilledWorker:
        reason = "the workers that ran it died each time (out of memory, killed, or their machine went away)"
    except FmnistError as error:
        reason = str(error)
    except Exception as error:  # Whatever the worker raised, the sweep reports it and carries on with the rest.
        reason = f"{type(error).__name__}: {error}"
    else:
        finished[(spec.name, run_config.seed)] = run
        on_event(SweepEvent("finished", "trained", run.title, run.seed, 1.0, run))
        return True
    on_event(SweepEvent("failed", reason, spec.title, run_config.seed))
    return True


class _WorkerWatcher:
    """Says when workers come and go, refuses workers that would run two trainings at once, and gives up when
    no worker has been connected for `patience` seconds."""

    def __init__(self, client, patience: float, on_event: EventCallback):
        self.client, self.patience, self.on_event = client, patience, on_event
        self.known = dict(client.nthreads())
        self.alone_since: float | None = None
        self._refuse_busy_workers(self.known)

    def check(self, finished_count: int, pending_count: int) -> None:
        try:
            current = dict(self.client.nthreads())
        except (OSError, TimeoutError) as error:
            raise ClusterError(
                f"Lost the connection to the Dask scheduler ({error}); {finished_count} runs finished and are kept "
                "in the model cache. Run the same command again to resume."
            ) from None
        self._refuse_busy_workers(current)
        left, joined = set(self.known) - set(current), set(current) - set(self.known)
        if left:
            self.on_event(
                SweepEvent("note", f"{len(left)} worker(s) left ({len(current)} connected); Dask re-runs their runs.")
            )
        if joined:
            self.on_event(SweepEvent("note", f"{len(joined)} worker(s) joined ({len(current)} connected)."))
        self.known = current
        if current:
            self.alone_since = None
            return
        now = time.monotonic()
        self.alone_since = self.alone_since or now
        if now - self.alone_since >= self.patience:
            raise ClusterError(
                f"No Dask worker has been connected for {self.patience:.0f} s, with {pending_count} runs still to do; "
                f"the {finished_count} runs that finished are kept in the model cache. Start workers "
                "(`dask worker SCHEDULER_ADDRESS --nthreads 1`) and run the same command again to resume."
            )

    @staticmethod
    def _refuse_busy_workers(nthreads: dict) -> None:
        crowded = sorted(address for address, threads in nthreads.items() if threads > 1)
        if crowded:
            raise ClusterError(
                f"Worker(s) {', '.join(crowded)} run several tasks at once; a training needs a process of its own "
                "(Keras' random seed and TensorFlow's thread pools are per process). Start workers with "
                "`dask worker SCHEDULER_ADDRESS --nthreads 1` (use --nworkers for several per machine)."
            )
