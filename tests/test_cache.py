"""The model cache: round trip, reuse by key, checksums, damaged entries, atomicity under kill and races."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fmnist_core.config import RECIPE_VERSION, TrainConfig
from fmnist_core.errors import CacheError
from fmnist_core.paths import cache_root
from fmnist_core.store.cache import TEMPORARY_PREFIX, ModelCache, cache_key
from fmnist_core.store.record import RECORD_FORMAT
from fmnist_core.training.pipeline import train_and_cache
from tests.records import make_record
from tests.test_record import OLD_LAYOUT

ROOT = Path(__file__).resolve().parent.parent


def only_entry(cache: ModelCache):
    entries = cache.list()
    assert len(entries) == 1, [e.entry_id for e in entries]
    return entries[0]


def test_round_trip_preserves_predictions_and_the_record(trained_cache, tiny_data, tiny_spec, tiny_config):
    cache = ModelCache()
    entry = only_entry(cache)
    assert entry.ok and entry.model_name == "model1"
    record = entry.record
    assert record.spec == tiny_spec and record.config == tiny_config and record.entry_id == entry.entry_id
    assert record.recipe_version == RECIPE_VERSION and record.format == RECORD_FORMAT
    assert record.epochs_run == len(record.epoch_seconds) == tiny_config.epochs
    assert record.parameters > 0 and record.forward_flops > 0 and record.images_per_second > 0
    assert set(record.speed_settings) >= {"precision", "batch_size", "device"}
    assert "tensorflow" in record.machine["versions"]
    stored = json.loads((entry.path / "meta.json").read_text(encoding="utf-8"))
    assert stored == json.loads(json.dumps(record.to_dict())), "meta.json is the record, nothing more or less"
    model = cache.load_model(entry.entry_id)
    (_, _), (x_test, y_test) = tiny_data
    probabilities = np.asarray(model(x_test[..., None].astype(np.float32) / 255.0, training=False))
    accuracy = float((probabilities.argmax(1) == y_test).mean())
    assert accuracy == pytest.approx(record.test_accuracy, abs=1e-6)


def test_an_entry_written_in_the_old_layout_keeps_loading(trained_cache, tiny_spec, tiny_config):
    """meta.json as the app wrote it before the typed record (tests/fixtures, format 1) still reads and loads,
    labelled as trained by the earlier recipe; a request today is answered by today's entry, not by it."""
    import shutil

    old = json.loads(OLD_LAYOUT.read_text(encoding="utf-8"))
    cache = ModelCache()
    current = only_entry(cache)
    # Recipe 2 added settings, so the same request keys differently now: the old entry keeps its own folder.
    assert old["entry_id"] != current.entry_id
    folder = cache.root / old["entry_id"]
    shutil.copytree(current.path, folder)
    # The fixture's checksum is of the model file trained when it was written; this one was trained again.
    old["model_sha256"] = current.record.model_sha256
    (folder / "meta.json").write_text(json.dumps(old), encoding="utf-8")
    found = cache.inspect(old["entry_id"])
    assert found.ok, found
    assert found.record.recipe_version == 1 and found.record.created == old["created"]
    assert found.record.evaluation.test_accuracy == old["evaluation"]["test_accuracy"]
    assert "recipe 1 (earlier)" in found.label and "earlier" not in current.label
    assert cache.load_model(found.entry_id) is not None
    assert cache.find(tiny_spec, tiny_config).entry_id == current.entry_id


def test_same_request_reuses_the_entry(trained_cache, tiny_data, tiny_spec, tiny_config):
    outcome = train_and_cache(tiny_spec, tiny_config, data=tiny_data)
    assert outcome.reused
    assert len(ModelCache().list()) == 1


@pytest.mark.slow  # Trains a model (besides the session's shared tiny one).
def test_retrain_replaces_the_entry_with_the_new_model_and_figures(trained_cache, tiny_data, tiny_spec, tiny_config):
    before = only_entry(ModelCache()).record
    outcome = train_and_cache(tiny_spec, tiny_config, data=tiny_data, retrain=True)
    assert not outcome.reused
    after = only_entry(ModelCache())
    assert after.ok and after.entry_id == outcome.entry.entry_id
    # The figures are the new run's, not the old entry's (which `--retrain` used to report as new).
    assert after.record.wall_seconds != before.wall_seconds
    assert after.record.epoch_seconds != before.epoch_seconds
    # Same seed and settings: the same test accuracy (the repeatability docs/results/training.md states).
    assert after.record.test_accuracy == before.test_accuracy


def test_key_changes_with_any_setting(tiny_spec, tiny_config):
    keys = {
        cache_key(tiny_spec, tiny_config),
        cache_key(tiny_spec, tiny_config.replace(seed=1)),
        cache_key(tiny_spec, tiny_config.replace(augment=True)),
        cache_key(tiny_spec.__class__(**{**tiny_spec.to_dict(), "first_filters": 9}), tiny_config),
    }
    assert len(keys) == 4
    assert cache_key(tiny_spec, tiny_config) == cache_key(tiny_spec, TrainConfig(**tiny_config.to_dict()))


def test_flipped_byte_is_detected_listed_damaged_and_never_loaded(trained_cache, tiny_spec, tiny_config):
    cache = ModelCache()
    entry = only_entry(cache)
    model_file = entry.path / "model.keras"
    payload = bytearray(model_file.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    model_file.write_bytes(bytes(payload))
    damaged = only_entry(cache)
    assert not damaged.ok and "checksum" in damaged.problem
    with pytest.raises(CacheError, match="damaged"):
        cache.load_model(entry.entry_id)
    assert cache.find(tiny_spec, tiny_config) is None
    assert cache.lookup(tiny_spec, tiny_config) == damaged
    cache.delete(entry.entry_id)
    assert cache.list() == []


@pytest.mark.parametrize("damage", ["no meta", "bad json", "foreign meta", "no model"])
def test_other_damage_is_listed_not_crashing(trained_cache, damage):
    cache = ModelCache()
    entry = only_entry(cache)
    if damage == "no meta":
        (entry.path / "meta.json").unlink()
    elif damage == "bad json":
        (entry.path / "meta.json").write_text("{not json")
    elif damage == "foreign meta":
        (entry.path / "meta.json").write_text(json.dumps({"format": 99}))
    else:
        (entry.path / "model.keras").unlink()
    listed = only_entry(cache)
    assert not listed.ok and listed.problem
    assert "damaged" in listed.label
    with pytest.raises(CacheError):
        cache.load_model(entry.entry_id)


def test_entry_ids_cannot_escape_the_cache(cache_dir):
    cache = ModelCache()
    for bad in ("../etc", "model1-../../x", "/tmp/x", ""):
        with pytest.raises(CacheError, match="not a cache entry id"):
            cache.load_model(bad)


def test_cache_path_that_is_a_file_is_a_clear_error(tmp_path, monkeypatch):
    target = tmp_path / "file"
    target.write_text("x")
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(target))
    with pytest.raises(CacheError, match="is a file, not a folder"):
        cache_root()


def test_failed_save_leaves_nothing(cache_dir, tiny_spec, tiny_config):
    from fmnist_core.models.registry import build_from_spec

    model = build_from_spec(tiny_spec)

    def broken_save(path, *args, **kwargs):
        Path(path).write_bytes(b"partial")
        raise KeyboardInterrupt

    model.save = broken_save
    with pytest.raises(KeyboardInterrupt):
        ModelCache().save(model, make_record(tiny_spec, tiny_config))
    assert [p.name for p in cache_dir.iterdir() if p.name != ".locks"] == []


def run_worker(cache_dir: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.cache_worker", str(cache_dir), *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_kill_9_during_save_leaves_no_partial_entry(cache_dir, tmp_path):
    ready = tmp_path / "ready"
    worker = run_worker(cache_dir, "--slow", "60", "--ready", str(ready))
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert worker.poll() is None, worker.stderr.read()
            assert time.monotonic() < deadline, "worker never started saving"
            time.sleep(0.1)
    finally:
        worker.kill()  # SIGKILL where the test wants it (mid-save), or at once if it failed.
        worker.wait(timeout=30)
    leftovers = [p.name for p in cache_dir.iterdir() if p.name.startswith(".tmp-")]
    assert leftovers, "the killed save should have left its temporary folder"
    cache = ModelCache()
    assert cache.list() == []  # No entry, and listing cleans the dead process's leftovers.
    assert not [p for p in cache_dir.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.slow
def test_two_processes_saving_the_same_key_leave_one_valid_entry(cache_dir):
    workers = [run_worker(cache_dir), run_worker(cache_dir)]
    try:
        outputs = [worker.communicate(timeout=300) for worker in workers]
    finally:
        for worker in workers:  # A timed-out worker must not outlive the test.
            worker.kill()
            worker.wait()
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    ids = {out.split()[0] for out, _ in outputs}
    assert len(ids) == 1
    entries = ModelCache().list()
    assert len(entries) == 1 and entries[0].ok
    assert not [p for p in cache_dir.iterdir() if p.name.startswith(".tmp-")]


def test_a_replacing_save_that_fails_keeps_the_old_entry(trained_cache, tiny_spec, tiny_config):
    """An explicit retrain replaces its entry only once the new one is complete: a failed save loses nothing."""
    cache = ModelCache(trained_cache)
    entry = cache.find(tiny_spec, tiny_config)

    class DiskFull:
        variables = ()  # Its size, for the message saying what to free.

        def save(self, path):
            raise OSError(28, "No space left on device")

    with pytest.raises(CacheError, match="is full"):
        cache.save(DiskFull(), entry.record, replace=True)
    after = cache.inspect(entry.entry_id)
    assert after.ok and after.record == entry.record
    assert [path.name for path in cache.root.iterdir() if path.name.startswith(TEMPORARY_PREFIX)] == []
