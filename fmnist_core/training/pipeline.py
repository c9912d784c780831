"""Train → evaluate → cache, or reuse the cached result: the one call the CLI and the app make."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from fmnist_core.config import RECIPE_VERSION, TrainConfig, for_this_machine, preset_name
from fmnist_core.data.loading import load_fashion_mnist
from fmnist_core.evaluate.evaluation import evaluate
from fmnist_core.jobs.queue import JobContext, JobManager, JobStatus
from fmnist_core.machine import machine_info
from fmnist_core.models.registry import ModelSpec, forward_flops, get_spec, inference_copy
from fmnist_core.paths import writable_cache_folder
from fmnist_core.store.cache import CacheEntry, ModelCache
from fmnist_core.store.record import ModelRecord
from fmnist_core.training.live_curves import LiveCurves
from fmnist_core.training.loop import Progress, ProgressCallback, StopCheck, TrainingCancelled, train
from fmnist_core.training.time_estimate import Estimate, measured_images_per_second, training_estimate


@dataclass(frozen=True)
class Outcome:
    """The cache entry holding the trained model, and whether it was reused rather than trained."""

    entry: CacheEntry
    reused: bool
    # Stop was pressed after the last training batch, while the model was being tested: it was kept anyway.
    stopped_after_training: bool = False


def preset_here(name: str | ModelSpec, preset: TrainConfig, cache: ModelCache) -> TrainConfig:
    """The settings to train for `preset` when nobody chose the precision: the preset itself where its model is
    cached already (a shipped bfloat16 model beats training it again), else the precision this machine trains fast
    in (`config.for_this_machine`). `ModelCache.lookup_either_precision` finds what this trained."""
    spec = get_spec(name) if isinstance(name, str) else name
    return preset if cache.find(spec, preset) is not None else for_this_machine(preset)


def train_record(
    spec: ModelSpec,
    config: TrainConfig,
    *,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    data=None,
    command: str | None = None,
    owner: str | None = None,
    live_check_images: int = 0,
) -> tuple[object, ModelRecord]:
    """Train and test `spec` with `config`: (the model to save, its record without entry id and checksum).

    The half of `train_and_cache` that needs no cache: a Dask worker runs it and sends the saved model back
    (fmnist_core/engine/task.py). live_check_images: see `loop.train`.
    """
    if data is None:
        data = load_fashion_mnist()
    checks = {"live_check_images": live_check_images} if live_check_images else {}
    result = train(spec, config, progress=progress, should_stop=should_stop, data=data, **checks)
    (_, _), (x_test, y_test) = data
    # What is tested is what is saved: weights and architecture, no optimizer state (the app never resumes).
    network = inference_copy(result.model)
    model, single_view_accuracy = network, None
    if config.augment:
        from fmnist_core.models.mirror import mirror_averaged  # Imports TensorFlow: only once a model is trained.

        # It learnt mirrored pictures too, so asking it about both orientations helps (without that training it
        # costs 5.8–9.5 points: fmnist_core/models/mirror.py). The single-view score is kept so the gain stays visible.
        single_view_accuracy = evaluate(network, x_test, y_test).test_accuracy
        model = mirror_averaged(network)
    record = ModelRecord(
        spec=spec,
        config=config,
        evaluation=evaluate(model, x_test, y_test),
        history={key: tuple(series) for key, series in result.history.items()},
        epoch_seconds=tuple(result.epoch_seconds),
        wall_seconds=result.wall_seconds,
        images_per_second=result.images_per_second,
        train_images=result.train_images,
        validation_images=result.validation_images,
        best_epoch=result.best_epoch,
        speed_settings=dict(result.speed_settings),
        parameters=int(network.count_params()),
        forward_flops=forward_flops(network),
        single_view_accuracy=single_view_accuracy,
        machine=machine_info(),
        created=time.strftime("%Y-%m-%dT%H:%M:%S"),
        recipe_version=RECIPE_VERSION,
        command=command,
        owner=owner,
    )
    return model, record


def reuse_or_check(spec: ModelSpec, config: TrainConfig, cache: ModelCache, retrain: bool) -> Outcome | None:
    """The cached entry to reuse (unless `retrain`); else None once the cache has been checked to take the result:
    before minutes of training, not after, a cache folder that cannot take it fails now (CacheError, exit 4)."""
    if not retrain:
        existing = cache.find(spec, config)
        if existing is not None:
            return Outcome(existing, reused=True)
    writable_cache_folder(root=cache.root)
    return None


def train_and_cache(
    name: str | ModelSpec,
    config: TrainConfig,
    *,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    cache: ModelCache | None = None,
    data=None,
    retrain: bool = False,
    command: str | None = None,
    owner: str | None = None,
) -> Outcome:
    """Return the cached model for (name, config), training and evaluating it first if needed.

    retrain: train again even when a valid entry exists; the new model and its figures replace that entry
    only once saved, so until then (and for good, if the run is stopped or fails) the old entry stays usable.
    A shipped entry is never replaced: the new model goes to the user's cache and answers in its place.
    command: the CLI command that asked, kept in the record (None from the app).
    owner: the app visitor who asked, kept in the record (classroom mode lets only them replace it); None for the CLI.
    should_stop: checked between training batches (TrainingCancelled: nothing is saved). Once the last batch is
    done the model is tested and saved even if Stop is pressed meanwhile: testing takes seconds after minutes
    of training, and every record holds its evaluation, so finishing it is the way to keep the weights.
    """
    spec = name if isinstance(name, ModelSpec) else get_spec(name)
    cache = cache or ModelCache()
    reused = reuse_or_check(spec, config, cache, retrain)
    if reused is not None:
        return reused

    def while_waiting() -> None:
        if should_stop is not None and should_stop():
            raise TrainingCancelled("Training was stopped while another process trained the same run.")

    # One training per run at a time: a run another process is training is waited for and reused (issue 44).
    with cache.training_lock(spec, config, while_waiting):
        existing = None if retrain else cache.find(spec, config)
        if existing is not None:
            return Outcome(existing, reused=True)
        model, record = train_record(
            spec, config, progress=progress, should_stop=should_stop, data=data, command=command, owner=owner
        )
        entry = cache.save(model, record, replace=retrain)
    return Outcome(entry, reused=False, stopped_after_training=should_stop is not None and should_stop())


def expected_training(manager: JobManager, name: str, config: TrainConfig, cache: ModelCache) -> Estimate | None:
    """How long training `name` with `config` should take here: from the cache's trainings of that model on this
    machine, else from a training of it running now, else from a probe of a few batches on the training worker
    (fmnist_core/engine/speed.py); None when this machine has measured none of these."""
    live_speed = next(
        (
            job.details.get("images_per_second")
            for job in manager.running()
            if job.kind == "train" and job.details.get("model") == name
        ),
        None,
    )
    probed = measured_images_per_second(cache.root, name, config)
    return training_estimate(name, config, cache.list(), live_speed, probed)


# What runs one training for a job, called as train_and_cache is (spec, config, *, progress, should_stop, cache,
# retrain, owner) -> Outcome: `train_and_cache` in this process (the CLI, tests), or the Dask engine's `DaskTrainer`
# (every training the app starts: fmnist_core/engine/remote.py). Both report `Progress` events.
TrainingRunner = Callable[..., Outcome]


def start_training_job(
    manager: JobManager,
    name: str | ModelSpec,
    config: TrainConfig,
    cache: ModelCache | None = None,
    *,
    owner: str | None = None,
    retrain: bool = False,
    runner: TrainingRunner | None = None,
) -> JobStatus:
    """Queue a training as a background job whose details feed the live training view.

    owner: the visitor asking (one request each; they see their place in the queue and may cancel it).
    retrain: train although the entry exists, through the same atomic replace as the CLI's --retrain: the old
    entry stays usable until the new model is saved, and a stopped, refused or failed run leaves it untouched
    (a shipped entry stays as it is: the new model goes to the user's cache).
    runner: what trains: `train_and_cache` in this process by default (the CLI, tests); the app passes the Dask
    engine's `DaskTrainer`, so its server never trains.
    details: model and config (the request, as `to_dict`), then epoch, epochs, batch, batches, images_per_second,
    seconds_left (training still to go at its own pace, once it has one),
    metrics (latest batch), history (one dict per finished epoch: loss, accuracy, val_loss, val_accuracy, seconds),
    live_curve and slice_checks (live_curves.LiveCurves: the curves that grow from the first batches).
    Raises BusyError when the owner already has a request waiting or running, or when the queue is full.
    """
    spec = name if isinstance(name, ModelSpec) else get_spec(name)
    cache = cache or ModelCache()
    estimate = expected_training(manager, spec.name, config, cache)

    def work(context: JobContext) -> Outcome:
        history: list[dict] = []
        curves = LiveCurves()

        def progress(event: Progress) -> None:
            if curves.add(event):
                context.report(live_curve=list(curves.points), slice_checks=list(curves.checks))
            if event.kind == "check":
                return
            if event.kind == "epoch":
                history.append({"epoch": event.epoch, **event.metrics})
            message = (
                f"Epoch {event.epoch}/{event.epochs} · batch {event.batch}/{event.batches}"
                if event.kind != "start"
                else "Preparing data and model…"
            )
            context.report(
                event.fraction,
                message,
                epoch=event.epoch,
                epochs=event.epochs,
                batch=event.batch,
                batches=event.batches,
                images_per_second=event.images_per_second,
                seconds_left=event.seconds_left,
                metrics=event.metrics,
                history=list(history),
            )

        context.report(0.0, "Loading data…")
        return (runner or train_and_cache)(
            spec, config, progress=progress, should_stop=context.should_stop, cache=cache, retrain=retrain, owner=owner
        )

    preset = preset_name(config) or "custom"
    verb = "Retraining" if retrain else "Training"
    # What was asked, kept with the job from the start (a request cancelled while it waits included): a page shows
    # the outcome only beside the settings it ran with.
    return manager.submit(
        "train",
        f"{verb} {spec.title} ({preset})",
        work,
        owner=owner,
        estimate_seconds=estimate.seconds if estimate is not None else None,
        details={"model": spec.name, "config": config.to_dict()},
    )
