"""The background job manager: the queue (order, cancel, bound, owners, workers), estimates, failures, markers.

No test sleeps and then asserts: jobs signal through events, and `wait_for` polls a condition with a timeout.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fmnist_core.errors import BusyError, ConfigError
from fmnist_core.jobs.queue import CANCELLED, DONE, FAILED, INTERRUPTED, QUEUED, RUNNING, JobManager

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 10


def wait_for(condition, timeout: float = TIMEOUT, what: str = "condition"):
    """Poll `condition()` until it is truthy and return its value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    pytest.fail(f"{what} not met within {timeout} s")


class Gate:
    """A job function that records that it started, then waits until released (or asked to stop)."""

    def __init__(self, name: str, log: list[str]):
        self.name, self.log = name, log
        self.started, self.release = threading.Event(), threading.Event()
        self.context = None

    def __call__(self, context):
        self.context = context
        self.log.append(self.name)
        self.started.set()
        while not self.release.wait(0.01):
            if context.should_stop():
                raise ConfigError("stopped")
        return self.name


def gates(*names: str) -> tuple[list[str], dict[str, Gate]]:
    log: list[str] = []
    return log, {name: Gate(name, log) for name in names}


def test_runs_a_job_and_keeps_its_result():
    manager = JobManager()

    def work(context):
        context.report(0.5, "half way", step=1)
        return 42

    status = manager.submit("demo", "Demo", work)
    final = manager.wait(status.job_id, timeout=TIMEOUT)
    assert final.state == DONE and final.result == 42 and final.fraction == 1.0
    assert final.details["step"] == 1


def test_what_a_request_is_about_is_known_while_it_waits_and_kept_when_cancelled():
    manager = JobManager()
    _, gate = gates("a", "b")
    manager.submit("train", "Job a", gate["a"], owner="a")
    asked = {"model": "model2", "config": {"epochs": 3}}
    waiting = manager.submit("train", "Job b", gate["b"], owner="b", details=asked)
    assert waiting.queued and waiting.details == asked
    assert manager.cancel(waiting.job_id)
    assert manager.status(waiting.job_id).details == asked, "a page names the settings of a cancelled request"
    gate["a"].release.set()


def test_requests_wait_in_order_and_start_one_after_another():
    manager = JobManager()
    log, gate = gates("a", "b", "c")
    first, second, third = (manager.submit("train", f"Job {n}", gate[n], owner=n) for n in "abc")
    assert gate["a"].started.wait(TIMEOUT)
    assert [manager.status(job.job_id).state for job in (first, second, third)] == [RUNNING, QUEUED, QUEUED]
    assert [manager.position(job.job_id) for job in (first, second, third)] == [None, 1, 2]
    assert [job.title for job in manager.queue()] == ["Job b", "Job c"]

    gate["a"].release.set()
    assert gate["b"].started.wait(TIMEOUT)
    assert manager.status(first.job_id).state == DONE
    assert manager.position(third.job_id) == 1
    gate["b"].release.set()
    gate["c"].release.set()
    assert manager.wait(third.job_id, timeout=TIMEOUT).state == DONE
    assert log == ["a", "b", "c"], "first come, first served"


def test_cancel_withdraws_a_waiting_request_without_running_it():
    manager = JobManager()
    log, gate = gates("a", "b", "c")
    first, second, third = (manager.submit("train", f"Job {n}", gate[n], owner=n) for n in "abc")
    assert gate["a"].started.wait(TIMEOUT)

    assert manager.cancel(second.job_id)
    cancelled = manager.status(second.job_id)
    assert cancelled.state == CANCELLED and cancelled.started is None and not cancelled.active
    assert manager.position(third.job_id) == 1, "the one behind moves up"
    assert not manager.cancel(second.job_id), "cancelling twice does nothing"

    gate["a"].release.set()
    gate["c"].release.set()
    assert manager.wait(third.job_id, timeout=TIMEOUT).state == DONE
    assert log == ["a", "c"], "the withdrawn request never ran"


def test_cancel_stops_a_running_job_and_the_next_one_starts():
    manager = JobManager()
    _, gate = gates("a", "b")
    first = manager.submit("train", "A", gate["a"])
    second = manager.submit("train", "B", gate["b"])
    assert gate["a"].started.wait(TIMEOUT)
    assert manager.cancel()  # Default: the running job.
    final = manager.wait(first.job_id, timeout=TIMEOUT)
    assert final.state == CANCELLED and final.error is None
    assert gate["b"].started.wait(TIMEOUT)
    gate["b"].release.set()
    assert manager.wait(second.job_id, timeout=TIMEOUT).state == DONE


def test_one_request_per_owner():
    manager = JobManager()
    _, gate = gates("a", "b")
    first = manager.submit("train", "Training Model 1 (quick)", gate["a"], owner="alice")
    assert gate["a"].started.wait(TIMEOUT)
    with pytest.raises(BusyError, match=r"You already asked for Training Model 1 \(quick\); it is running now"):
        manager.submit("train", "Training Model 2 (quick)", gate["b"], owner="alice")
    second = manager.submit("train", "Training Model 2 (quick)", gate["b"], owner="bob")
    with pytest.raises(BusyError, match="number 1 in the queue"):
        manager.submit("train", "Training Model 3 (quick)", gate["b"], owner="bob")
    gate["a"].release.set()
    gate["b"].release.set()
    manager.wait(second.job_id, timeout=TIMEOUT)
    assert manager.status(first.job_id).state == DONE
    # Once the request is over, the owner may ask again.
    assert manager.wait(manager.submit("train", "Again", lambda context: 1, owner="alice").job_id, TIMEOUT).result == 1


def test_the_queue_is_bounded_and_says_so():
    manager = JobManager(queue_limit=2)
    log, gate = gates("running", "w1", "w2", "refused")
    for name in ("running", "w1", "w2"):
        manager.submit("train", name, gate[name], owner=name)
    assert gate["running"].started.wait(TIMEOUT)
    assert len(manager.queue()) == 2, "the running job does not count against the limit"
    with pytest.raises(BusyError, match=r"The queue is full: 2 requests are waiting.*\(2\).*try again"):
        manager.submit("train", "refused", gate["refused"], owner="refused")
    assert len(manager.queue()) == 2
    manager.cancel(manager.queue()[0].job_id)
    accepted = manager.submit("train", "refused", gate["refused"], owner="refused")
    assert manager.position(accepted.job_id) == 2
    for name in gate:
        gate[name].release.set()
    manager.wait(accepted.job_id, timeout=TIMEOUT)
    assert "refused" in log and "w1" not in log


def test_two_workers_run_two_jobs_at_once_and_the_third_waits():
    manager = JobManager(workers=2)
    _, gate = gates("a", "b", "c")
    jobs = [manager.submit("train", name, gate[name], owner=name) for name in "abc"]
    assert gate["a"].started.wait(TIMEOUT) and gate["b"].started.wait(TIMEOUT)
    assert [job.title for job in manager.running()] == ["a", "b"]
    assert manager.position(jobs[2].job_id) == 1 and not gate["c"].started.is_set()
    gate["b"].release.set()
    assert gate["c"].started.wait(TIMEOUT)
    gate["a"].release.set()
    gate["c"].release.set()
    assert all(manager.wait(job.job_id, timeout=TIMEOUT).state == DONE for job in jobs)


def test_start_is_refused_while_anything_runs_or_waits_and_then_runs_alone():
    manager = JobManager(workers=2)
    _, gate = gates("train", "race", "later")
    training = manager.submit("train", "Training Model 1", gate["train"], owner="alice")
    assert gate["train"].started.wait(TIMEOUT)
    with pytest.raises(BusyError, match="Training Model 1 is running"):
        manager.start("race", "Race", gate["race"])
    gate["train"].release.set()
    manager.wait(training.job_id, timeout=TIMEOUT)

    race = manager.start("race", "Race", gate["race"])
    assert gate["race"].started.wait(TIMEOUT)
    later = manager.submit("train", "Later", gate["later"], owner="bob")
    assert manager.status(later.job_id).queued, "nothing runs beside a race, even with a free worker"
    gate["race"].release.set()
    assert gate["later"].started.wait(TIMEOUT)
    gate["later"].release.set()
    assert manager.wait(later.job_id, timeout=TIMEOUT).state == DONE
    assert manager.status(race.job_id).state == DONE


def test_failures_are_reported_not_raised():
    manager = JobManager()
    user_error = manager.wait(manager.submit("a", "A", lambda c: (_ for _ in ()).throw(ConfigError("bad"))).job_id)
    assert user_error.state == FAILED and user_error.error == "bad"
    bug = manager.wait(manager.submit("b", "B", lambda c: 1 / 0).job_id)
    assert bug.state == FAILED and "ZeroDivisionError" in bug.error


def test_progress_estimates_remaining_time():
    manager = JobManager()
    release = threading.Event()
    status = manager.submit("t", "T", lambda c: (c.report(0.5), release.wait(TIMEOUT)))
    try:
        snapshot = wait_for(
            lambda: (s := manager.status(status.job_id)).fraction == 0.5 and s.elapsed > 0 and s, what="progress"
        )
        assert snapshot.remaining_seconds is not None and snapshot.remaining_seconds > 0
    finally:
        release.set()


def test_seconds_until_start_adds_up_what_runs_and_waits_ahead():
    manager = JobManager()
    _, gate = gates("a", "b", "c", "d")
    running = manager.submit("train", "A", gate["a"], owner="a", estimate_seconds=100)
    second = manager.submit("train", "B", gate["b"], owner="b", estimate_seconds=50)
    third = manager.submit("train", "C", gate["c"], owner="c", estimate_seconds=20)
    assert gate["a"].started.wait(TIMEOUT)
    try:
        assert manager.seconds_until_start(running.job_id) == 0.0
        assert 90 < manager.seconds_until_start(second.job_id) <= 100, "what the running job has left"
        assert 140 < manager.seconds_until_start(third.job_id) <= 150
        unknown = manager.submit("train", "D", gate["d"], owner="d")  # No estimate: nobody can say for after it.
        assert manager.seconds_until_start(unknown.job_id) is not None
        fourth = manager.submit("train", "E", lambda context: None, owner="e")
        assert manager.seconds_until_start(fourth.job_id) is None
        # Progress replaces the estimate: half done after `elapsed` seconds means as much again to go.
        gate["a"].context.report(0.5)
        elapsed = manager.status(running.job_id).elapsed
        assert manager.seconds_until_start(second.job_id) == pytest.approx(elapsed, abs=0.5)
    finally:
        for name in gate:
            gate[name].release.set()


def test_seconds_until_start_with_two_workers_uses_the_first_free_one():
    manager = JobManager(workers=2)
    _, gate = gates("a", "b", "c", "d")
    manager.submit("train", "A", gate["a"], owner="a", estimate_seconds=100)
    manager.submit("train", "B", gate["b"], owner="b", estimate_seconds=30)
    third = manager.submit("train", "C", gate["c"], owner="c", estimate_seconds=50)
    fourth = manager.submit("train", "D", gate["d"], owner="d", estimate_seconds=50)
    assert gate["a"].started.wait(TIMEOUT) and gate["b"].started.wait(TIMEOUT)
    try:
        assert 20 < manager.seconds_until_start(third.job_id) <= 30, "B's worker frees first"
        assert 70 < manager.seconds_until_start(fourth.job_id) <= 80, "then C's (30 + 50) before A's (100)"
    finally:
        for name in gate:
            gate[name].release.set()


def dead_pid() -> int:
    """Above Linux's largest process id: a server that no longer runs (no process started: a fast test)."""
    return 2**22 + 12345


def test_marker_of_a_dead_server_reports_each_job_as_did_not_finish(tmp_path):
    marker = tmp_path / "active-jobs-1.json"
    jobs = [
        {"kind": "train", "title": "Training Model 3 (full)", "owner": "a" * 32, "state": "running", "submitted": 1},
        {"kind": "train", "title": "Training Model 1 (quick)", "owner": "b" * 32, "state": "queued", "submitted": 2},
    ]
    marker.write_text(json.dumps({"pid": dead_pid(), "jobs": jobs}))
    manager = JobManager(marker_dir=tmp_path)
    assert [(s.title, s.owner, s.state) for s in manager.interrupted] == [
        ("Training Model 3 (full)", "a" * 32, INTERRUPTED),
        ("Training Model 1 (quick)", "b" * 32, INTERRUPTED),
    ]
    assert "while it was running" in manager.interrupted[0].message
    assert "while it was waiting" in manager.interrupted[1].message
    assert manager.latest("train", owner="b" * 32).state == INTERRUPTED, "the owner finds it after the restart"
    assert not marker.exists()
    assert JobManager(marker_dir=tmp_path).interrupted == ()


def test_a_damaged_marker_still_reports_a_run_that_did_not_finish(tmp_path):
    (tmp_path / "active-jobs-7.json").write_text("{not json")
    assert [status.title for status in JobManager(marker_dir=tmp_path).interrupted] == ["unknown job"]


def test_marker_of_a_live_server_is_left_alone(tmp_path):
    alive = os.getppid()  # Another process that runs all through the test (this one's parent).
    marker = tmp_path / f"active-jobs-{alive}.json"
    marker.write_text(json.dumps({"pid": alive, "jobs": [{"kind": "train", "title": "T"}]}))
    assert JobManager(marker_dir=tmp_path).interrupted == ()
    assert marker.exists()


def test_marker_exists_only_while_jobs_are_active(tmp_path):
    manager = JobManager(marker_dir=tmp_path)
    _, gate = gates("a", "b")
    manager.submit("t", "A", gate["a"], owner="alice")
    waiting = manager.submit("t", "B", gate["b"], owner="bob")
    assert gate["a"].started.wait(TIMEOUT)
    recorded = json.loads((tmp_path / f"active-jobs-{os.getpid()}.json").read_text())
    assert [(job["title"], job["state"], job["owner"]) for job in recorded["jobs"]] == [
        ("A", "running", "alice"),
        ("B", "queued", "bob"),
    ]
    gate["a"].release.set()
    gate["b"].release.set()
    manager.wait(waiting.job_id, timeout=TIMEOUT)
    assert list(tmp_path.iterdir()) == []


SERVER_THAT_DIES = """
import sys, threading
from pathlib import Path
from fmnist_core.jobs.queue import JobManager
manager = JobManager(marker_dir=Path(sys.argv[1]))
manager.submit("train", "Training Model 2 (full)", lambda context: threading.Event().wait(), owner="a" * 32)
manager.submit("train", "Training Model 1 (quick)", lambda context: None, owner="b" * 32)
print("ready", flush=True)
threading.Event().wait()
"""


@pytest.mark.slow
def test_a_killed_server_leaves_its_running_and_waiting_jobs_as_did_not_finish(tmp_path):
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER_THAT_DIES, str(tmp_path)], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout.readline().strip() == "ready"
    finally:
        os.kill(server.pid, signal.SIGKILL)  # No clean-up runs, as when the machine loses power.
        server.wait(timeout=TIMEOUT)
    restarted = JobManager(marker_dir=tmp_path)
    assert [(status.title, status.state) for status in restarted.interrupted] == [
        ("Training Model 2 (full)", INTERRUPTED),
        ("Training Model 1 (quick)", INTERRUPTED),
    ]
    assert restarted.latest("train", owner="a" * 32).message.endswith("while it was running.")
    assert restarted.queue() == [] and not restarted.busy()


def test_a_jobs_own_time_left_comes_first_and_feeds_the_queue():
    """A job that reports `seconds_left` (a training's pace) is believed before its progress fraction is large
    enough for the generic estimate; the request behind it then gets a start time."""
    manager = JobManager()
    _, gate = gates("a", "b")
    running = manager.submit("train", "A", gate["a"], owner="a")  # Nothing measured: no estimate.
    waiting = manager.submit("train", "B", gate["b"], owner="b", estimate_seconds=50)
    try:
        assert gate["a"].started.wait(TIMEOUT)
        assert manager.status(running.job_id).remaining_seconds is None
        assert manager.seconds_until_start(waiting.job_id) is None
        gate["a"].context.report(0.01, "Epoch 1/15 · batch 32/211", seconds_left=1234.0)
        assert manager.status(running.job_id).remaining_seconds == 1234.0
        assert manager.seconds_until_start(waiting.job_id) == 1234.0
    finally:
        for name in "ab":
            gate[name].release.set()


def test_a_running_job_reads_as_stopping_at_once_until_it_reaches_its_next_check():
    manager = JobManager()
    started, release = threading.Event(), threading.Event()

    def work(context):  # A training mid-batch: it reports, and looks at the stop flag only after the batch.
        context.report(0.5, "Epoch 1/2 · batch 10/20")
        started.set()
        release.wait(TIMEOUT)
        if context.should_stop():
            raise ConfigError("stopped")

    job = manager.submit("train", "Training", work)
    assert started.wait(TIMEOUT) and not manager.status(job.job_id).stopping
    assert manager.cancel(job.job_id)
    now = manager.status(job.job_id)
    assert now.running and now.stopping and now.message == "Stopping…"  # Before the job has noticed anything.
    release.set()
    assert manager.wait(job.job_id, timeout=TIMEOUT).state == CANCELLED
