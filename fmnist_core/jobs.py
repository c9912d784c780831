"""Background jobs for the app: one heavy job at a time, status snapshots, cancel, crash detection.

A Streamlit rerun stops the script thread, so long work (training, races) runs in a worker thread owned
by a `JobManager` that outlives reruns and is shared by every session (the app keeps it in
`st.cache_resource`). Pages only read immutable `JobStatus` snapshots and call `cancel`.

A marker file records the running job; if the server dies mid-job, the next manager finds the marker of
a process that no longer exists and reports that the last run did not finish.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fmnist_core.errors import BusyError, FmnistError
from fmnist_core.machine import process_alive

RUNNING, DONE, FAILED, CANCELLED = "running", "done", "failed", "cancelled"


@dataclass(frozen=True)
class JobStatus:
    """An immutable snapshot of one job, safe to read from any thread."""

    job_id: int
    kind: str  # "train", "race", ...
    title: str  # What a person sees: "Training Model 1 (quick)".
    state: str = RUNNING  # running, done, failed or cancelled.
    started: float = field(default_factory=time.time)  # Epoch seconds.
    finished: float | None = None
    fraction: float = 0.0  # 0..1 of the planned work.
    message: str = ""  # One line for the UI: "Epoch 2/3, batch 40/71".
    details: dict = field(default_factory=dict)  # Job-specific live data (metrics so far, lanes...).
    result: Any = None  # What the job returned, once done.
    error: str | None = None  # User-facing error text when failed.

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    @property
    def elapsed(self) -> float:
        return (self.finished or time.time()) - self.started

    @property
    def remaining_seconds(self) -> float | None:
        """Estimate from progress so far; None until there is enough progress to say."""
        if not self.running or self.fraction < 0.02:
            return None
        return self.elapsed * (1 - self.fraction) / self.fraction


class JobContext:
    """Handed to a job's function: report progress and check for a stop request."""

    def __init__(self, manager: JobManager, job_id: int):
        self._manager, self._job_id = manager, job_id
        self.stop_event = threading.Event()

    def should_stop(self) -> bool:
        return self.stop_event.is_set()

    def report(self, fraction: float | None = None, message: str | None = None, **details) -> None:
        """Publish progress; `details` are merged into the snapshot's details."""
        self._manager._update(self._job_id, fraction, message, details)


class JobManager:
    """Runs at most one job at a time in a daemon thread and keeps the latest status of each job."""

    def __init__(self, marker_dir: Path | None = None):
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._statuses: dict[int, JobStatus] = {}
        self._contexts: dict[int, JobContext] = {}
        self._current: int | None = None
        self._marker = (marker_dir / "running-job.json") if marker_dir else None
        self.interrupted = self._read_interrupted_marker()

    # Marker file ------------------------------------------------------------------------------------

    def _read_interrupted_marker(self) -> dict | None:
        """A marker left by a process that is gone means its job never finished."""
        if self._marker is None or not self._marker.is_file():
            return None
        try:
            record = json.loads(self._marker.read_text(encoding="utf-8"))
            pid = int(record.get("pid", -1))
        except (OSError, ValueError, TypeError):
            record, pid = {"title": "unknown job"}, -1
        if pid != os.getpid() and process_alive(pid):
            return None  # Another live server owns it.
        self._marker.unlink(missing_ok=True)
        return record

    def _write_marker(self, status: JobStatus) -> None:
        if self._marker is None:
            return
        try:
            self._marker.parent.mkdir(parents=True, exist_ok=True)
            self._marker.write_text(
                json.dumps({"pid": os.getpid(), "kind": status.kind, "title": status.title, "started": status.started}),
                encoding="utf-8",
            )
        except OSError:
            pass  # Crash detection is a convenience; never block a job on it.

    def _clear_marker(self) -> None:
        if self._marker is not None:
            self._marker.unlink(missing_ok=True)

    # Public API -------------------------------------------------------------------------------------

    def start(self, kind: str, title: str, function: Callable[[JobContext], Any]) -> JobStatus:
        """Run `function(context)` in the background; BusyError if another job is running."""
        with self._lock:
            if self._current is not None and self._statuses[self._current].running:
                running = self._statuses[self._current]
                raise BusyError(
                    f"Busy: {running.title} is running (started {running.elapsed:.0f} s ago). "
                    "Wait for it to finish or stop it first."
                )
            job_id = next(self._ids)
            status = JobStatus(job_id, kind, title, message="Starting…")
            context = JobContext(self, job_id)
            self._statuses[job_id], self._contexts[job_id], self._current = status, context, job_id
        self._write_marker(status)
        threading.Thread(
            target=self._run, args=(job_id, function, context), name=f"job-{job_id}-{kind}", daemon=True
        ).start()
        return status

    def status(self, job_id: int) -> JobStatus | None:
        with self._lock:
            return self._statuses.get(job_id)

    def current(self) -> JobStatus | None:
        """The running job, or the last one that ran (so a page can show how it ended)."""
        with self._lock:
            return self._statuses.get(self._current) if self._current is not None else None

    def latest(self, kind: str) -> JobStatus | None:
        """The most recent job of a kind."""
        with self._lock:
            matching = [s for s in self._statuses.values() if s.kind == kind]
        return max(matching, key=lambda s: s.job_id) if matching else None

    def busy(self) -> bool:
        current = self.current()
        return current is not None and current.running

    def cancel(self, job_id: int | None = None) -> bool:
        """Ask a job (default: the current one) to stop; it stops at its next check."""
        with self._lock:
            job_id = job_id if job_id is not None else self._current
            context = self._contexts.get(job_id) if job_id is not None else None
            running = job_id is not None and self._statuses[job_id].running
        if context is None or not running:
            return False
        context.stop_event.set()
        self._update(job_id, None, "Stopping…", {})
        return True

    def wait(self, job_id: int, timeout: float | None = None) -> JobStatus:
        """Block until the job ends (for the CLI and tests)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status(job_id)
            if status is None or not status.running:
                return status
            if deadline is not None and time.monotonic() > deadline:
                return status
            time.sleep(0.05)

    # Internals --------------------------------------------------------------------------------------

    def _update(self, job_id: int, fraction: float | None, message: str | None, details: dict) -> None:
        with self._lock:
            status = self._statuses[job_id]
            if not status.running:
                return
            self._statuses[job_id] = replace(
                status,
                fraction=status.fraction if fraction is None else min(max(fraction, 0.0), 1.0),
                message=status.message if message is None else message,
                details={**status.details, **details},
            )

    def _finish(self, job_id: int, **changes) -> None:
        with self._lock:
            self._statuses[job_id] = replace(self._statuses[job_id], finished=time.time(), **changes)
        self._clear_marker()

    def _run(self, job_id: int, function: Callable[[JobContext], Any], context: JobContext) -> None:
        try:
            result = function(context)
        except FmnistError as error:
            cancelled = context.should_stop()
            self._finish(
                job_id,
                state=CANCELLED if cancelled else FAILED,
                error=None if cancelled else str(error),
                message="Stopped; nothing was saved." if cancelled else str(error),
            )
        except Exception as error:  # A bug must still end the job visibly, not kill the thread silently.
            detail = "".join(traceback.format_exception_only(type(error), error)).strip()
            self._finish(job_id, state=FAILED, error=f"Unexpected error: {detail}", message="Failed.")
        else:
            # A job that returns has done its work, even when Stop came too late to interrupt it (a training
            # stopped during its final test keeps the model): its result is reported, not thrown away.
            self._finish(job_id, state=DONE, result=result, fraction=1.0, message="Finished.")
