"""Train → evaluate → cache, or reuse the cached result: the one call the CLI and the app make."""

from __future__ import annotations

from dataclasses import dataclass

from fmnist_core.cache import CacheEntry, ModelCache
from fmnist_core.config import PRESETS, TrainConfig
from fmnist_core.evaluation import evaluate
from fmnist_core.jobs import JobContext, JobManager, JobStatus
from fmnist_core.machine import machine_info
from fmnist_core.models import ModelSpec, forward_flops, get_spec
from fmnist_core.training import Progress, ProgressCallback, StopCheck, TrainingCancelled, train
from fmnist_core.training_time import estimate_training_seconds


@dataclass(frozen=True)
class Outcome:
    """The cache entry holding the trained model, and whether it was reused rather than trained."""

    entry: CacheEntry
    reused: bool


def train_and_cache(
    name: str | ModelSpec,
    config: TrainConfig,
    *,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    cache: ModelCache | None = None,
    data=None,
    retrain: bool = False,
    owner: str | None = None,
) -> Outcome:
    """Return the cached model for (name, config), training and evaluating it first if needed.

    retrain: train again even when a valid entry exists; the new model and its figures replace that entry
    only once saved, so until then (and for good, if the run is stopped or fails) the old entry stays usable.
    owner: the app visitor who asked (recorded so classroom mode lets only them replace it); None for the CLI.
    """
    spec = name if isinstance(name, ModelSpec) else get_spec(name)
    cache = cache or ModelCache()
    if not retrain:
        existing = cache.find(spec, config)
        if existing is not None:
            return Outcome(existing, reused=True)
    if data is None:
        from fmnist_core.data import load_fashion_mnist

        data = load_fashion_mnist()
    result = train(spec, config, progress=progress, should_stop=should_stop, data=data)
    (_, _), (x_test, y_test) = data
    model, single_view_accuracy = result.model, None
    if config.augment:
        from fmnist_core.mirror import mirror_averaged

        # It learnt mirrored pictures too, so asking it about both orientations helps (without that training it
        # costs 5.8–9.5 points: fmnist_core/mirror.py). The single-view score is kept so the gain stays visible.
        single_view_accuracy = evaluate(result.model, x_test, y_test).test_accuracy
        model = mirror_averaged(result.model)
    evaluation = evaluate(model, x_test, y_test)
    # A Stop pressed after the last batch (during evaluation) still means "nothing is saved".
    if should_stop is not None and should_stop():
        raise TrainingCancelled("Training was stopped; nothing was saved.")
    meta = {
        "history": result.history,
        "epoch_seconds": result.epoch_seconds,
        "wall_seconds": result.wall_seconds,
        "images_per_second": result.images_per_second,
        "train_images": result.train_images,
        "validation_images": result.validation_images,
        "best_epoch": result.best_epoch,
        "speed_settings": result.speed_settings,
        "parameters": int(result.model.count_params()),
        "forward_flops": forward_flops(result.model),
        "evaluation": evaluation.to_dict(),
        "single_view_accuracy": single_view_accuracy,
        "machine": machine_info(),
        "owner": owner,
    }
    return Outcome(cache.save(model, meta, spec, config, replace=retrain), reused=False)


def start_training_job(
    manager: JobManager,
    name: str | ModelSpec,
    config: TrainConfig,
    cache: ModelCache | None = None,
    *,
    owner: str | None = None,
    retrain: bool = False,
) -> JobStatus:
    """Queue `train_and_cache` as a background job whose details feed the live training view.

    owner: the visitor asking (one request each; they see their place in the queue and may cancel it).
    retrain: train although the entry exists, through the same atomic replace as the CLI's --retrain: the old
    entry stays usable until the new model is saved, and a stopped, refused or failed run leaves it untouched.
    details: model, epoch, epochs, batch, batches, images_per_second, metrics (latest batch), history (one dict
    per finished epoch: loss, accuracy, val_loss, val_accuracy, seconds).
    Raises BusyError when the owner already has a request waiting or running, or when the queue is full.
    """
    spec = name if isinstance(name, ModelSpec) else get_spec(name)
    cache = cache or ModelCache()
    live_speed = next(
        (
            job.details.get("images_per_second")
            for job in manager.running()
            if job.kind == "train" and job.details.get("model") == spec.name
        ),
        None,
    )
    estimate = estimate_training_seconds(spec.name, config, cache.list(), live_speed)

    def work(context: JobContext) -> Outcome:
        history: list[dict] = []

        def progress(event: Progress) -> None:
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
                model=spec.name,
                epoch=event.epoch,
                epochs=event.epochs,
                batch=event.batch,
                batches=event.batches,
                images_per_second=event.images_per_second,
                metrics=event.metrics,
                history=list(history),
            )

        context.report(0.0, "Loading data…")
        return train_and_cache(
            spec, config, progress=progress, should_stop=context.should_stop, cache=cache, retrain=retrain, owner=owner
        )

    preset = next((label for label, preset in PRESETS.items() if preset == config), "custom")
    verb = "Retraining" if retrain else "Training"
    return manager.submit("train", f"{verb} {spec.title} ({preset})", work, owner=owner, estimate_seconds=estimate)
