"""The train → evaluate → cache pipeline around a Stop: pressed during training nothing is saved; pressed once the
last batch is done (while the model is tested) the trained model is kept."""

from __future__ import annotations

import threading

import pytest

from fmnist_core.jobs.queue import DONE, JobManager
from fmnist_core.models.registry import build_from_spec
from fmnist_core.store.cache import ModelCache
from fmnist_core.training.loop import Progress, TrainingCancelled, TrainResult
from fmnist_core.training.pipeline import start_training_job, train_and_cache


def trained_without_fitting(spec, config, progress=None, should_stop=None, data=None) -> TrainResult:
    """Stands in for `train`: reports the last epoch as done and returns an untrained model, in a second."""
    if progress is not None:
        progress(Progress("epoch", config.epochs, config.epochs, 1, 1, 0.5, 128.0, {"loss": 2.3, "accuracy": 0.1}))
    speed = {"precision": config.precision, "jit_compile": False, "threads": 1, "batch_size": config.batch_size}
    return TrainResult(
        spec=spec,
        config=config,
        model=build_from_spec(spec, seed=0),
        history={"loss": [2.3] * config.epochs, "accuracy": [0.1] * config.epochs},
        epoch_seconds=[0.5] * config.epochs,
        images_per_second=128.0,
        train_images=64,
        validation_images=0,
        speed_settings={**speed, "device": "CPU"},
        best_epoch=config.epochs,
    )


def test_a_stop_during_the_final_test_keeps_the_trained_model(
    cache_dir, tiny_data, tiny_spec, tiny_config, monkeypatch
):
    monkeypatch.setattr("fmnist_core.training.pipeline.train", trained_without_fitting)
    manager, cache = JobManager(), ModelCache(cache_dir)

    def work(context):
        # The user presses Stop the moment the last epoch is reported, i.e. while the model is being tested.
        stop = lambda event: manager.cancel()  # noqa: E731
        return train_and_cache(
            tiny_spec, tiny_config, progress=stop, should_stop=context.should_stop, cache=cache, data=tiny_data
        )

    final = manager.wait(manager.start("train", "Training Model 1 (custom)", work).job_id, timeout=120)
    assert final.state == DONE, final.error
    outcome = final.result
    assert outcome.stopped_after_training and not outcome.reused and outcome.entry.ok
    assert cache.find(tiny_spec, tiny_config) == outcome.entry
    assert outcome.entry.record.evaluation.test_images == len(tiny_data[1][1])


@pytest.mark.slow
def test_stop_after_the_last_batch_keeps_a_really_trained_model_and_stop_before_it_saves_nothing(
    cache_dir, tiny_data, tiny_spec, tiny_config
):
    cache = ModelCache(cache_dir)
    last_epoch_done = []

    def progress(event: Progress) -> None:
        if event.kind == "epoch" and event.epoch == tiny_config.epochs:
            last_epoch_done.append(True)

    outcome = train_and_cache(
        tiny_spec,
        tiny_config,
        progress=progress,
        should_stop=lambda: bool(last_epoch_done),
        cache=cache,
        data=tiny_data,
    )
    assert outcome.stopped_after_training and outcome.entry.ok and cache.list() == [outcome.entry]

    other = tiny_config.replace(seed=7)
    with pytest.raises(TrainingCancelled, match="nothing was saved"):
        train_and_cache(tiny_spec, other, should_stop=lambda: True, cache=cache, data=tiny_data)
    assert cache.find(tiny_spec, other) is None and cache.list() == [outcome.entry]


def test_a_running_training_reports_its_time_left_from_its_own_pace(
    cache_dir, tiny_data, tiny_spec, tiny_config, monkeypatch
):
    """Before any training of the model was measured here, the queue and the live view still get a time left:
    the running job's own pace once PACE_BATCHES batches have run (20 s for 40 of 100 batches: 30 s to go)."""
    reported, release = threading.Event(), threading.Event()

    def paced(spec, config, progress=None, should_stop=None, data=None):
        progress(Progress("batch", 1, 1, 40, 100, 20.0, 200.0, {"loss": 2.0}))
        reported.set()
        release.wait(60)
        return trained_without_fitting(spec, config, progress, should_stop, data)

    monkeypatch.setattr("fmnist_core.training.pipeline.train", paced)
    monkeypatch.setattr("fmnist_core.training.pipeline.load_fashion_mnist", lambda *arguments, **keywords: tiny_data)
    manager = JobManager()
    status = start_training_job(manager, tiny_spec, tiny_config, ModelCache(cache_dir))
    try:
        assert status.estimate_seconds is None  # Nothing measured in this cache.
        assert reported.wait(60)
        running = manager.status(status.job_id)
        assert running.fraction == pytest.approx(0.4)
        assert running.remaining_seconds == pytest.approx(30.0)
    finally:
        release.set()
    assert manager.wait(status.job_id, timeout=120).state == DONE
