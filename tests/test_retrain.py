"""Retraining never loses the model it replaces: the old entry stays usable until the new one is saved.

One rule for the CLI's --retrain and the app's "Train again": `train_and_cache(..., retrain=True)`, which saves
through `cache.save(replace=True)`. A run that is stopped during training, refused or fails (its save included)
leaves the old entry as it was. (A Stop after the last batch keeps the new model: `train_and_cache`'s docstring.)
"""

from __future__ import annotations

import threading

import pytest

from fmnist_core.errors import BusyError, CacheError
from fmnist_core.jobs.queue import CANCELLED, DONE, FAILED, JobManager
from fmnist_core.store.cache import ModelCache
from fmnist_core.training import pipeline
from fmnist_core.training.pipeline import start_training_job

VISITOR = "0123456789abcdef0123456789abcdef"
TIMEOUT = 120


@pytest.fixture
def cached(trained_cache, tiny_spec, tiny_config):
    """(cache, the trained entry) in a private copy of the session's tiny trained cache."""
    cache = ModelCache(trained_cache)
    return cache, cache.find(tiny_spec, tiny_config)


def unchanged(cache: ModelCache, before) -> bool:
    """The entry is still there, valid, with the same model file and the same record."""
    after = cache.inspect(before.entry_id)
    return after.ok and after.record == before.record


@pytest.fixture
def tiny_data_loaded(tiny_data, monkeypatch):
    """Jobs load the dataset themselves; give them the tiny synthetic one."""
    monkeypatch.setattr("fmnist_core.training.pipeline.load_fashion_mnist", lambda *arguments, **keywords: tiny_data)


def test_a_retrain_job_stopped_by_its_owner_keeps_the_old_entry(
    cached, tiny_spec, tiny_config, tiny_data_loaded, monkeypatch
):
    cache, entry = cached
    first_batch, released = threading.Event(), threading.Event()
    real_train = pipeline.train

    def train_held_after_the_first_batch(*arguments, progress, **keywords):
        # Stop lands mid-training, never after the last batch (where the model would be tested and kept).
        def held(event):
            progress(event)
            if event.kind == "batch" and not first_batch.is_set():
                first_batch.set()
                assert released.wait(TIMEOUT), "the test never released the training"

        return real_train(*arguments, progress=held, **keywords)

    monkeypatch.setattr(pipeline, "train", train_held_after_the_first_batch)
    manager = JobManager()
    status = start_training_job(manager, tiny_spec, tiny_config, cache, owner=VISITOR, retrain=True)
    assert status.title == "Retraining Model 1 (custom)" and status.owner == VISITOR
    try:
        assert first_batch.wait(TIMEOUT), "the first batch never ended"
        assert unchanged(cache, entry), "usable while the new run trains"
        assert manager.cancel(status.job_id)
    finally:
        released.set()
    assert manager.wait(status.job_id, timeout=TIMEOUT).state == CANCELLED
    assert unchanged(cache, entry)
    assert cache.load_model(entry.entry_id) is not None


def test_a_refused_retrain_keeps_the_old_entry(cached, tiny_spec, tiny_config, tiny_data_loaded):
    cache, entry = cached
    manager = JobManager(queue_limit=0)
    release = threading.Event()
    manager.submit("train", "Training Model 2 (full)", lambda context: release.wait(TIMEOUT), owner="f" * 32)
    try:
        with pytest.raises(BusyError, match="The queue is full"):
            start_training_job(manager, tiny_spec, tiny_config, cache, owner=VISITOR, retrain=True)
    finally:
        release.set()
    assert unchanged(cache, entry)


def test_a_retrain_job_that_fails_keeps_the_old_entry(cached, tiny_spec, tiny_config, tiny_data_loaded, monkeypatch):
    cache, entry = cached

    def broken_training(*arguments, **keywords):
        raise MemoryError("out of memory in the middle of an epoch")

    monkeypatch.setattr("fmnist_core.training.pipeline.train", broken_training)
    manager = JobManager()
    status = start_training_job(manager, tiny_spec, tiny_config, cache, owner=VISITOR, retrain=True)
    final = manager.wait(status.job_id, timeout=TIMEOUT)
    assert final.state == FAILED and "MemoryError" in final.error
    assert unchanged(cache, entry)


def test_a_replacing_save_that_fails_keeps_the_old_entry(cached):
    cache, entry = cached

    class DiskFull:
        variables = ()  # Its size, for the message saying what to free.

        def save(self, path):
            raise OSError(28, "No space left on device")

    with pytest.raises(CacheError, match="is full"):
        cache.save(DiskFull(), entry.record, replace=True)
    assert unchanged(cache, entry)
    assert [path.name for path in cache.root.iterdir() if path.name.startswith(".tmp-")] == [], "nothing left over"


@pytest.mark.slow
def test_a_retrain_job_replaces_the_entry_when_it_finishes_and_records_who_asked(
    cached, tiny_spec, tiny_config, tiny_data_loaded
):
    cache, entry = cached
    manager = JobManager()
    status = start_training_job(manager, tiny_spec, tiny_config, cache, owner=VISITOR, retrain=True)
    final = manager.wait(status.job_id, timeout=TIMEOUT)
    assert final.state == DONE and not final.result.reused and final.result.entry.entry_id == entry.entry_id
    assert cache.find(tiny_spec, tiny_config).owner == VISITOR and entry.owner is None
    assert [found.entry_id for found in cache.list()] == [entry.entry_id], "replaced, not duplicated"
