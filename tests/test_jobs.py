"""The background job manager: one job at a time, snapshots, cancel, failures, crash markers."""

from __future__ import annotations

import json
import threading
import time

import pytest

from fmnist_core.errors import BusyError, ConfigError
from fmnist_core.jobs import CANCELLED, DONE, FAILED, JobManager


def test_runs_a_job_and_keeps_its_result():
    manager = JobManager()

    def work(context):
        context.report(0.5, "half way", step=1)
        return 42

    status = manager.start("demo", "Demo", work)
    final = manager.wait(status.job_id, timeout=10)
    assert final.state == DONE and final.result == 42 and final.fraction == 1.0
    assert final.details["step"] == 1


def test_second_job_is_refused_while_one_runs():
    manager = JobManager()
    release = threading.Event()
    status = manager.start("train", "Training Model 1", lambda context: release.wait(10))
    with pytest.raises(BusyError, match="Training Model 1 is running"):
        manager.start("race", "Race", lambda context: None)
    release.set()
    manager.wait(status.job_id, timeout=10)
    manager.wait(manager.start("race", "Race", lambda context: None).job_id, timeout=10)


def test_cancel_stops_a_cooperative_job():
    manager = JobManager()

    def work(context):
        while not context.should_stop():
            time.sleep(0.01)
        raise ConfigError("stopped")  # Any FmnistError raised after a stop request counts as a cancel.

    status = manager.start("train", "T", work)
    assert manager.cancel()
    final = manager.wait(status.job_id, timeout=10)
    assert final.state == CANCELLED and final.error is None
    assert not manager.cancel()


def test_failures_are_reported_not_raised():
    manager = JobManager()
    user_error = manager.wait(manager.start("a", "A", lambda c: (_ for _ in ()).throw(ConfigError("bad"))).job_id)
    assert user_error.state == FAILED and user_error.error == "bad"
    bug = manager.wait(manager.start("b", "B", lambda c: 1 / 0).job_id)
    assert bug.state == FAILED and "ZeroDivisionError" in bug.error


def test_progress_estimates_remaining_time():
    manager = JobManager()
    release = threading.Event()
    reported = threading.Event()
    status = manager.start("t", "T", lambda c: (c.report(0.5), reported.set(), release.wait(10)))
    assert reported.wait(10), "the job never reported"
    snapshot = manager.status(status.job_id)
    assert snapshot.fraction == 0.5
    assert snapshot.remaining_seconds is not None and snapshot.remaining_seconds > 0
    release.set()


def test_marker_of_a_dead_process_reports_interrupted_run(tmp_path):
    (tmp_path / "running-job.json").write_text(json.dumps({"pid": 2**22 + 12345, "title": "Training Model 3"}))
    manager = JobManager(marker_dir=tmp_path)
    assert manager.interrupted["title"] == "Training Model 3"
    assert not (tmp_path / "running-job.json").exists()
    assert JobManager(marker_dir=tmp_path).interrupted is None


def test_marker_exists_only_while_a_job_runs(tmp_path):
    manager = JobManager(marker_dir=tmp_path)
    release = threading.Event()
    status = manager.start("t", "T", lambda c: release.wait(10))
    assert (tmp_path / "running-job.json").is_file()
    release.set()
    manager.wait(status.job_id, timeout=10)
    assert not (tmp_path / "running-job.json").exists()
