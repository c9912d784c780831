"""The training engine: every app training is a Dask task whose model comes back to the server's cache.

Fast tests cover the pieces (live curves, the progress format, saving returned bytes, settings); the slow ones run
real trainings on a LocalCluster and on separately started `dask scheduler` / `dask worker` processes: two workers
with their own cache and home folders training at once, Stop, a worker killed with kill -9, an unreachable scheduler.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from fmnist_core.config import TrainConfig
from fmnist_core.engine.cluster import SharedEngine
from fmnist_core.engine.remote import WORKER_LOST, DaskTrainer
from fmnist_core.engine.task import TrainedModel, progress_from_message, progress_message
from fmnist_core.errors import ConfigError
from fmnist_core.jobs.classroom import load_settings
from fmnist_core.jobs.queue import CANCELLED, DONE, FAILED, RUNNING, JobManager
from fmnist_core.store.cache import MODEL_FILE, ModelCache
from fmnist_core.training.live_curves import LiveCurves
from fmnist_core.training.loop import Progress
from fmnist_core.training.pipeline import start_training_job
from tests.engine_support import load_long_data
from tests.records import make_record
from tests.sweep_support import TINY_CONFIG, TINY_SPECS, load_tiny_data

TIMEOUT = 600  # A loaded 2-core machine took 156 s to start a worker and import TensorFlow.
LONG_CONFIG = TrainConfig(
    epochs=20, batch_size=32, learning_rate=3e-3, train_limit=None, validation_split=0.1, precision="float32"
)


def free_port() -> int:
    from tests.test_sweep import free_port as port

    return port()


# Pieces ----------------------------------------------------------------------------------------------------------


def test_progress_travels_as_a_plain_dict_and_back():
    event = Progress("batch", 2, 3, 40, 100, 12.5, 900.0, {"loss": 0.5, "accuracy": 0.8})
    message = progress_message(event)
    assert all(isinstance(value, int | float | str | dict) for value in message.values())
    assert progress_from_message({**message, "worker": "tcp://x", "worker_name": "w1"}) == event


def test_live_curves_smooth_the_batches_between_reports_and_keep_the_slice_checks():
    curves = LiveCurves()
    # Running means of the epoch, as Keras reports them: batches 1-10 at loss 2.0, then batches 11-20 at loss 1.0.
    assert curves.add(Progress("batch", 1, 1, 10, 100, 1.0, 100.0, {"loss": 2.0, "accuracy": 0.2}))
    assert curves.add(Progress("batch", 1, 1, 20, 100, 2.0, 100.0, {"loss": 1.5, "accuracy": 0.3}))
    first, second = curves.points
    assert first == {"fraction": 0.1, "loss": 2.0, "accuracy": 0.2}
    # The second block's own mean is 1.0 (20·1.5 − 10·2.0 over 10 batches): the smoothed value moves towards it.
    assert 1.0 < second["loss"] < 2.0 and second["accuracy"] > 0.2
    assert curves.add(Progress("check", 1, 1, 20, 100, 2.0, 100.0, {"slice_accuracy": 0.5}))
    assert curves.checks == [{"fraction": 0.2, "slice_accuracy": 0.5}]
    # A report that moved the run on by less than 1 % adds no point; a new epoch starts its running mean afresh.
    assert not curves.add(Progress("batch", 1, 1, 20, 100, 2.0, 100.0, {"loss": 1.5, "accuracy": 0.3}))
    assert not curves.add(Progress("start", 1, 1, 0, 100, 0.0, 0.0))


def test_a_returned_model_is_saved_from_its_bytes_without_keras(cache_dir):
    record = make_record("model1")
    payload = b"PK\x03\x04 stand-in for a .keras archive"
    entry = ModelCache(cache_dir).save(TrainedModel(payload, record), record)
    assert entry.ok and (entry.path / MODEL_FILE).read_bytes() == payload


def test_the_scheduler_setting_comes_from_the_file_or_the_environment(tmp_path):
    settings = tmp_path / "classroom.toml"
    settings.write_text('scheduler = "tcp://10.0.0.5:8786"\n')
    assert load_settings(settings, {}).scheduler == "tcp://10.0.0.5:8786"
    assert load_settings(settings, {"FMNIST_SCHEDULER": "tcp://[::1]:9000"}).scheduler == "tcp://[::1]:9000"
    assert load_settings(tmp_path / "absent.toml", {}).scheduler == ""
    with pytest.raises(ConfigError, match="scheduler must be empty or an address like"):
        load_settings(settings, {"FMNIST_SCHEDULER": "10.0.0.5 and more"})


def test_an_unreachable_scheduler_fails_the_request_with_one_clear_line(cache_dir):
    address = f"tcp://127.0.0.1:{free_port()}"
    manager = JobManager()
    runner = DaskTrainer(SharedEngine(address, connect_timeout=2), load_data=load_tiny_data)
    status = start_training_job(manager, TINY_SPECS[0], TINY_CONFIG, ModelCache(cache_dir), runner=runner)
    ended = manager.wait(status.job_id, timeout=60)
    assert ended.state == FAILED
    assert ended.error.startswith(f"Could not reach the Dask scheduler at {address} within 2 s")
    assert "\n" not in ended.error and "Traceback" not in ended.error
    assert ModelCache(cache_dir).list() == []


# Real trainings on a local cluster ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_engine():
    """The app's engine: one worker process at low priority, started at the first training, shared by the tests."""
    engine = SharedEngine()
    yield engine
    engine.close()


def wait_until(condition, timeout: float = TIMEOUT, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(step)


def ask(manager, cache, engine, load_data, spec=TINY_SPECS[0], config=TINY_CONFIG, owner=None):
    """Queue a training on `engine` as the app does (its workers load their data with `load_data`)."""
    runner = DaskTrainer(engine, load_data=load_data)
    return start_training_job(manager, spec, config, cache, owner=owner, runner=runner)


@pytest.mark.slow
def test_an_app_training_runs_on_the_worker_and_its_model_reaches_the_servers_cache(local_engine, cache_dir):
    manager, cache = JobManager(), ModelCache(cache_dir)
    status = ask(manager, cache, local_engine, load_tiny_data, owner="a" * 32)
    ended = manager.wait(status.job_id, timeout=TIMEOUT)
    assert ended.state == DONE, ended.error
    [entry] = cache.list()
    assert entry.ok and entry.entry_id == ended.result.entry.entry_id and entry.owner == "a" * 32
    # Trained in the worker process, at a lower priority than this one: the server process never trained.
    worker_pids = local_engine.client().run(os.getpid)
    assert entry.record.machine and os.getpid() not in worker_pids.values()
    assert all(
        os.getpriority(os.PRIO_PROCESS, pid) > os.getpriority(os.PRIO_PROCESS, 0) for pid in worker_pids.values()
    )
    # The curves grew during the run: smoothed training figures and the validation slice's checks.
    assert len(ended.details["live_curve"]) >= 2 and ended.details["slice_checks"]
    assert ended.details["slice_checks"][-1]["fraction"] == pytest.approx(1.0)
    # Asked again, the cached model is reused without touching the engine.
    again = manager.wait(ask(manager, cache, local_engine, load_tiny_data).job_id, 60)
    assert again.state == DONE and again.result.reused


@pytest.mark.slow
def test_stop_reaches_the_worker_in_seconds_and_nothing_is_saved(local_engine, cache_dir):
    manager, cache = JobManager(), ModelCache(cache_dir)
    status = ask(manager, cache, local_engine, load_long_data, config=LONG_CONFIG)
    wait_until(lambda: manager.status(status.job_id).details.get("batch"))
    asked = time.monotonic()
    manager.cancel(status.job_id)
    ended = manager.wait(status.job_id, timeout=60)
    stopped_after = time.monotonic() - asked
    assert ended.state == CANCELLED and ended.fraction < 0.5
    # The design's figure is under 2 s (a 0.2 s poll, a 0.25 s check, one batch); the margin is for a loaded machine
    # (3.0 s from Stop to "cancelled" measured at a load average of ~19 on 2 cores).
    assert stopped_after < 10, f"Stop took {stopped_after:.1f} s"
    assert cache.list() == []


@pytest.fixture
def page_script_main(tmp_path, monkeypatch):
    """`__main__` as the Streamlit server has it: the page script of the last run, which must never run in a worker."""
    import sys
    import types

    script = tmp_path / "page_script.py"
    script.write_text("raise SystemExit('a page script ran in a worker')\n")
    page_main = types.ModuleType("__main__")
    page_main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", page_main)
    return page_main


@pytest.mark.slow
def test_a_worker_killed_mid_training_fails_that_request_and_the_queue_goes_on(
    local_engine, cache_dir, page_script_main
):
    manager, cache = JobManager(), ModelCache(cache_dir)
    doomed = ask(manager, cache, local_engine, load_long_data, config=LONG_CONFIG, owner="a" * 32)
    waiting = ask(manager, cache, local_engine, load_tiny_data, spec=TINY_SPECS[1], owner="b" * 32)
    wait_until(lambda: manager.status(doomed.job_id).details.get("batch"))
    [pid] = local_engine.client().run(os.getpid).values()
    os.kill(pid, signal.SIGKILL)
    ended = manager.wait(doomed.job_id, timeout=TIMEOUT)
    assert ended.state == FAILED and ended.error == WORKER_LOST
    # The next request runs on a fresh local cluster (never on a nanny restart: see after_a_lost_worker), and is saved.
    assert manager.wait(waiting.job_id, timeout=TIMEOUT).state == DONE
    assert [entry.model_name for entry in cache.list()] == ["model2"]
    assert pid not in local_engine.client().run(os.getpid).values()


# Two worker processes with their own disks -------------------------------------------------------------------------


@pytest.mark.slow
def test_two_workers_with_their_own_folders_train_two_requests_at_once_into_the_servers_cache(tmp_path, cache_dir):
    from tests.test_sweep import loopback_cluster

    worker_folders = {name: tmp_path / name for name in ("w1", "w2")}
    environments = {
        name: {"HOME": str(folder / "home"), "FMNIST_CACHE_DIR": str(folder / "cache")}
        for name, folder in worker_folders.items()
    }
    with loopback_cluster(tmp_path, workers=2, environments=environments) as cluster:
        manager = JobManager(workers=2)
        cache = ModelCache(cache_dir)
        runner = DaskTrainer(SharedEngine(cluster.address), load_data=load_tiny_data)
        statuses = [
            start_training_job(manager, spec, TINY_CONFIG, cache, owner=owner * 32, runner=runner)
            for spec, owner in zip(TINY_SPECS, "ab", strict=True)
        ]
        assert all(manager.status(status.job_id).state == RUNNING for status in statuses), "both start at once"
        ended = [manager.wait(status.job_id, timeout=TIMEOUT) for status in statuses]
        runner.engine.close()
    assert [status.state for status in ended] == [DONE, DONE], [status.error for status in ended]
    assert sorted(entry.model_name for entry in cache.list() if entry.ok) == ["model1", "model2"]
    for folder in worker_folders.values():
        cached = folder / "cache"
        assert not cached.exists() or not any(path.name.startswith("model") for path in cached.iterdir())


def test_a_probed_speed_is_kept_per_machine_and_used_last(tmp_path):
    from fmnist_core.machine import cpu_model, usable_cores
    from fmnist_core.training.time_estimate import (
        images_per_epoch,
        measured_images_per_second,
        record_measured_speed,
        training_estimate,
    )

    config = TINY_CONFIG
    assert measured_images_per_second(tmp_path, "model1", config) is None
    record_measured_speed(tmp_path, "model1", config, "another CPU", usable_cores(), 999.0)
    assert measured_images_per_second(tmp_path, "model1", config) is None, "another machine's figure is not ours"
    record_measured_speed(tmp_path, "model1", config, cpu_model(), usable_cores(), 500.0)
    assert measured_images_per_second(tmp_path, "model1", config) == 500.0
    assert measured_images_per_second(tmp_path, "model1", config.replace(batch_size=128)) is None
    estimate = training_estimate("model1", config, [], None, 500.0)
    assert estimate.source == "measured"
    assert estimate.seconds == pytest.approx(images_per_epoch(config) * config.epochs / 500.0)
    assert training_estimate("model1", config, [], None, None) is None


@pytest.mark.slow
def test_a_fresh_machine_measures_a_few_batches_on_the_worker_for_its_expected_time(local_engine, cache_dir):
    from fmnist_core.engine.speed import SpeedProbe
    from fmnist_core.training.pipeline import expected_training

    cache, probe = ModelCache(cache_dir), SpeedProbe(local_engine)
    assert expected_training(JobManager(), "model1", TINY_CONFIG, cache) is None
    assert probe.start(TINY_SPECS[0], TINY_CONFIG, cache.root) == "measuring"
    wait_until(lambda: probe.start(TINY_SPECS[0], TINY_CONFIG, cache.root) != "measuring")
    estimate = expected_training(JobManager(), "model1", TINY_CONFIG, cache)
    assert estimate is not None and estimate.source == "measured" and estimate.seconds > 0


@pytest.mark.slow
def test_workers_start_even_when_main_is_a_page_script_streamlit_installed(tmp_path, monkeypatch):
    """In the server, `__main__` is the script of Streamlit's last run: a spawned worker must not run it again."""
    import sys
    import types

    script = tmp_path / "page_script.py"
    marker = tmp_path / "ran"
    script.write_text(f"open({str(marker)!r}, 'w').close()\nraise SystemExit('a page script ran in a worker')\n")
    page_main = types.ModuleType("__main__")
    page_main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", page_main)
    engine = SharedEngine()
    try:
        client = engine.client()
        assert client.submit(sum, [1, 2, 3]).result(timeout=TIMEOUT) == 6
    finally:
        engine.close()
    assert sys.modules["__main__"] is page_main
    assert not marker.exists()
