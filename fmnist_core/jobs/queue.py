"""Background jobs for the app: a bounded first-come queue, status snapshots, cancel, crash detection.

A Streamlit rerun stops the script thread, so long work (training, races) is followed by a thread owned by a
`JobManager` that outlives reruns and is shared by every session (the app keeps it in `st.cache_resource`). For a
training that thread only waits: the training runs as a Dask task in a worker process (fmnist_core/engine); a race
runs its lanes as processes. This module keeps what Dask has no notion of: one request per visitor, the place in
the queue and when it should start, owner rules. Pages only read immutable `JobStatus` snapshots and call `submit`
and `cancel`.

Requests wait in one first-come queue; `workers` of them run at once (one by default: on a 2-core machine a
second training halves the speed of each and gains nothing, see `benchmarks/training_workers.py`). Each request
carries its owner, the visitor that asked (fmnist_app/visitor.py), so a page can show them their place in the queue,
let them cancel their own request, and tell only them how it ended. A race is started with `start` instead: it
needs the machine to itself (its timings are the point), so it runs now, alone, or is refused.

Marker files record the queued and running jobs; if the server dies, the next manager finds the marker of
a process that no longer exists and reports each of those jobs as "did not finish".
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fmnist_core.errors import BusyError, FmnistError
from fmnist_core.files import atomic_file
from fmnist_core.machine import process_alive

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
INTERRUPTED = "interrupted"  # The server stopped while the job waited or ran.
DEFAULT_QUEUE_LIMIT = 30  # A class: every student may have one request waiting.
KEPT_FINISHED_JOBS = 200  # Finished snapshots kept for their owners to read; older ones are forgotten.
MARKER_PREFIX = "active-jobs-"


def seconds_to_go(elapsed_seconds: float, fraction: float) -> float:
    """Seconds still to go for work `fraction` (0..1] done in `elapsed_seconds`, at the same pace."""
    return elapsed_seconds * (1 - fraction) / fraction


@dataclass(frozen=True)
class JobStatus:
    """An immutable snapshot of one job, safe to read from any thread."""

    job_id: int
    kind: str  # "train", "race", ...
    title: str  # What a person sees: "Training Model 1 (quick)".
    owner: str | None = None  # Who asked: a browser session's visitor id; None for the CLI and tests.
    state: str = QUEUED  # queued, running, done, failed, cancelled or interrupted (the server stopped).
    submitted: float = field(default_factory=time.time)  # Epoch seconds.
    started: float | None = None  # When it left the queue; None while it waits.
    finished: float | None = None
    estimate_seconds: float | None = None  # Expected run time from this machine's measured speed; None if unknown.
    exclusive: bool = False  # Needs the machine to itself (a race): nothing else runs beside it.
    fraction: float = 0.0  # 0..1 of the planned work.
    message: str = ""  # One line for the UI: "Epoch 2/3, batch 40/71".
    details: dict = field(default_factory=dict)  # Job-specific live data (metrics so far, lanes...).
    result: Any = None  # What the job returned, once done.
    error: str | None = None  # User-facing error text when failed.
    stopping: bool = False  # Asked to stop: it ends at its next check (a training, after its current batch).

    @property
    def queued(self) -> bool:
        return self.state == QUEUED

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    @property
    def active(self) -> bool:
        """Waiting or running: the request is not over yet."""
        return self.state in (QUEUED, RUNNING)

    @property
    def elapsed(self) -> float:
        """Seconds it has run (0 while it waits)."""
        if self.started is None:
            return 0.0
        return (self.finished or time.time()) - self.started

    @property
    def remaining_seconds(self) -> float | None:
        """Seconds left: the job's own figure when it reports one (`details["seconds_left"]`, a training's pace:
        training.Progress.seconds_left), else from progress once there is enough of it, else from the estimate;
        None when unknown."""
        if self.queued:
            return self.estimate_seconds
        if not self.running:
            return None
        if self.details.get("seconds_left") is not None:
            return float(self.details["seconds_left"])
        if self.fraction >= 0.02:
            return seconds_to_go(self.elapsed, self.fraction)
        if self.estimate_seconds is not None and self.elapsed < self.estimate_seconds:
            return self.estimate_seconds - self.elapsed
        return None


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
    """Queues jobs, runs up to `workers` of them at once in daemon threads, keeps the latest status of each.

    workers: jobs that run at the same time. They share TensorFlow's process-wide thread pools (sized to the
    cores), so more workers never means more compute threads, only more work interleaved on the same cores.
    queue_limit: requests that may wait; one more is refused with BusyError.
    """

    def __init__(self, marker_dir: Path | None = None, *, workers: int = 1, queue_limit: int = DEFAULT_QUEUE_LIMIT):
        if workers < 1 or queue_limit < 0:
            raise ValueError(f"workers must be ≥ 1 and queue_limit ≥ 0 (got {workers}, {queue_limit})")
        self.workers, self.queue_limit = workers, queue_limit
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._statuses: dict[int, JobStatus] = {}
        self._functions: dict[int, Callable[[JobContext], Any]] = {}
        self._contexts: dict[int, JobContext] = {}
        self._waiting: deque[int] = deque()
        self._marker_dir = marker_dir
        self.interrupted: tuple[JobStatus, ...] = self._adopt_dead_markers()

    # Public API -------------------------------------------------------------------------------------

    def submit(
        self,
        kind: str,
        title: str,
        function: Callable[[JobContext], Any],
        *,
        owner: str | None = None,
        estimate_seconds: float | None = None,
        details: dict | None = None,
    ) -> JobStatus:
        """Queue `function(context)`; it starts as soon as a worker is free and the requests before it have started.

        details: what the request is about, known before it starts (a training's model and settings).

        Raises BusyError when `owner` already has a request waiting or running (one each keeps the queue fair),
        or when the queue is full.
        """
        with self._lock:
            mine = self._active_of(owner)
            if mine is not None:
                where = f"number {self._waiting.index(mine.job_id) + 1} in the queue" if mine.queued else "running now"
                raise BusyError(
                    f"You already asked for {mine.title}; it is {where}. Wait for it, or cancel it to ask for "
                    "something else."
                )
            starts_now = not self._waiting and self._has_free_worker()
            if len(self._waiting) >= self.queue_limit and not starts_now:
                raise BusyError(
                    f"The queue is full: {len(self._waiting)} requests are waiting, the most this server takes "
                    f"({self.queue_limit}). Please try again when the queue is shorter; it moves on as each "
                    "training ends."
                )
            status = self._enqueue(kind, title, function, owner, estimate_seconds, details, exclusive=False)
        return status

    def start(self, kind: str, title: str, function: Callable[[JobContext], Any]) -> JobStatus:
        """Run `function(context)` now with the machine to itself; BusyError if any job runs or waits."""
        with self._lock:
            blocking = self._running() or [self._statuses[job_id] for job_id in self._waiting]
            if blocking:
                first = blocking[0]
                waiting = f" and {len(self._waiting)} requests are waiting" if self._waiting else ""
                raise BusyError(
                    f"Busy: {first.title} is {'running' if first.running else 'waiting'} (asked "
                    f"{time.time() - first.submitted:.0f} s ago){waiting}. Wait for the machine to be free "
                    "or stop what runs first."
                )
            status = self._enqueue(kind, title, function, None, None, None, exclusive=True)
        return status

    def status(self, job_id: int) -> JobStatus | None:
        with self._lock:
            return self._statuses.get(job_id)

    def running(self) -> list[JobStatus]:
        """The jobs running now, oldest first."""
        with self._lock:
            return self._running()

    def queue(self) -> list[JobStatus]:
        """The requests waiting, in the order they will start."""
        with self._lock:
            return [self._statuses[job_id] for job_id in self._waiting]

    def current(self) -> JobStatus | None:
        """The newest running job, or else the last one that ran (so a page can show how it ended)."""
        with self._lock:
            running = self._running()
            if running:
                return running[-1]
            ran = [status for status in self._statuses.values() if status.started is not None]
            return max(ran, key=lambda status: status.job_id) if ran else None

    def latest(self, kind: str, owner: str | None = None) -> JobStatus | None:
        """The most recent job of a kind (asked for by `owner`, when given)."""
        with self._lock:
            matching = [
                status
                for status in self._statuses.values()
                if status.kind == kind and (owner is None or status.owner == owner)
            ]
        return max(matching, key=lambda status: status.job_id) if matching else None

    def busy(self) -> bool:
        """True while any job runs."""
        with self._lock:
            return bool(self._running())

    def position(self, job_id: int) -> int | None:
        """1 for the next request to start, 2 for the one after...; None when the job is not waiting."""
        with self._lock:
            return self._waiting.index(job_id) + 1 if job_id in self._waiting else None

    def seconds_until_start(self, job_id: int) -> float | None:
        """When a waiting job should start, from the running jobs' progress and the estimates of those ahead.

        0 for a job that already runs; None when the job is over or some job ahead has no estimate yet.
        """
        with self._lock:
            status = self._statuses.get(job_id)
            if status is None or not status.active:
                return None
            if status.running:
                return 0.0
            running = self._running()
            remaining = [job.remaining_seconds for job in running]
            if None in remaining:
                return None
            if any(job.exclusive for job in running):
                free = [max(remaining)] * self.workers
            else:
                free = sorted(remaining) + [0.0] * (self.workers - len(running))
            for waiting_id in self._waiting:
                waiting = self._statuses[waiting_id]
                start = max(free) if waiting.exclusive else min(free)
                if waiting_id == job_id:
                    return start
                if waiting.estimate_seconds is None:
                    return None
                if waiting.exclusive:
                    free = [start + waiting.estimate_seconds] * self.workers
                else:
                    free[free.index(start)] = start + waiting.estimate_seconds
        return None  # Not reached: a waiting job is in the queue.

    def cancel(self, job_id: int | None = None) -> bool:
        """Withdraw a waiting request, or ask a running job (default: the newest) to stop at its next check."""
        with self._lock:
            if job_id is None:
                running = self._running()
                job_id = running[-1].job_id if running else None
            status = self._statuses.get(job_id) if job_id is not None else None
            if status is None or not status.active:
                return False
            if status.queued:
                self._waiting.remove(job_id)
                del self._functions[job_id]
                self._statuses[job_id] = replace(
                    status, state=CANCELLED, finished=time.time(), message="Cancelled before it started."
                )
                self._write_marker()
                return True
            context = self._contexts[job_id]
        context.stop_event.set()
        with self._lock:
            if self._statuses[job_id].running:
                self._statuses[job_id] = replace(self._statuses[job_id], stopping=True, message="Stopping…")
        return True

    def wait(self, job_id: int, timeout: float | None = None) -> JobStatus | None:
        """Block until the job has ended (or the timeout passed): for the CLI and tests."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status(job_id)
            if status is None or not status.active:
                return status
            if deadline is not None and time.monotonic() > deadline:
                return status
            time.sleep(0.05)

    # Queue internals (called with the lock held) -----------------------------------------------------

    def _running(self) -> list[JobStatus]:
        return sorted((s for s in self._statuses.values() if s.running), key=lambda status: status.started)

    def _active_of(self, owner: str | None) -> JobStatus | None:
        if owner is None:
            return None
        return next((s for s in self._statuses.values() if s.owner == owner and s.active), None)

    def _enqueue(self, kind, title, function, owner, estimate_seconds, details, *, exclusive: bool) -> JobStatus:
        job_id = next(self._ids)
        status = JobStatus(
            job_id,
            kind,
            title,
            owner,
            estimate_seconds=estimate_seconds,
            exclusive=exclusive,
            message="Waiting…",
            details=dict(details or {}),
        )
        self._statuses[job_id], self._functions[job_id] = status, function
        self._waiting.append(job_id)
        self._dispatch()
        self._write_marker()
        return self._statuses[job_id]

    def _has_free_worker(self) -> bool:
        running = self._running()
        return len(running) < self.workers and not any(job.exclusive for job in running)

    def _dispatch(self) -> None:
        """Start waiting jobs in order while there is room: first come, first served, nobody overtakes."""
        while self._waiting:
            head = self._statuses[self._waiting[0]]
            if not self._has_free_worker() or (head.exclusive and self._running()):
                return
            job_id = self._waiting.popleft()
            context = JobContext(self, job_id)
            self._contexts[job_id] = context
            self._statuses[job_id] = replace(head, state=RUNNING, started=time.time(), message="Starting…")
            threading.Thread(
                target=self._run,
                args=(job_id, self._functions.pop(job_id), context),
                name=f"job-{job_id}-{head.kind}",
                daemon=True,
            ).start()

    def _forget_old(self) -> None:
        finished = sorted(job_id for job_id, status in self._statuses.items() if not status.active)
        for job_id in finished[: max(len(finished) - KEPT_FINISHED_JOBS, 0)]:
            del self._statuses[job_id]
            self._contexts.pop(job_id, None)

    # Marker files -----------------------------------------------------------------------------------

    def _marker(self, pid: int) -> Path:
        return self._marker_dir / f"{MARKER_PREFIX}{pid}.json"

    def _write_marker(self) -> None:
        """Record this server's waiting and running jobs (the lock is held, so writes happen in order)."""
        if self._marker_dir is None:
            return
        active = [status for status in self._statuses.values() if status.active]
        marker = self._marker(os.getpid())
        try:
            if not active:
                marker.unlink(missing_ok=True)
                return
            jobs = [
                {
                    "kind": s.kind,
                    "title": s.title,
                    "owner": s.owner,
                    "state": s.state,
                    "submitted": s.submitted,
                    "details": _json_details(s.details),
                }
                for s in active
            ]
            # Written beside and renamed over: a crash mid-write leaves the previous marker, never half of one.
            with atomic_file(marker) as stream:
                stream.write(json.dumps({"pid": os.getpid(), "jobs": jobs}).encode())
        except OSError:
            pass  # Crash detection is a convenience; never block a job on it.

    def _adopt_dead_markers(self) -> tuple[JobStatus, ...]:
        """Markers left by servers that are gone: their jobs never finished. Each becomes an interrupted status."""
        if self._marker_dir is None or not self._marker_dir.is_dir():
            return ()
        interrupted = []
        for path in sorted(self._marker_dir.glob(f"{MARKER_PREFIX}*.json")):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                pid, jobs = int(record["pid"]), list(record["jobs"])
            except (OSError, ValueError, TypeError, KeyError):
                pid, jobs = -1, [{"title": "unknown job"}]
            if pid != os.getpid() and process_alive(pid):
                continue  # Another live server owns it.
            path.unlink(missing_ok=True)
            for job in jobs:
                job = job if isinstance(job, dict) else {}
                owner, details = job.get("owner"), job.get("details")
                status = JobStatus(
                    next(self._ids),
                    str(job.get("kind", "unknown")),
                    str(job.get("title", "unknown job")),
                    owner if isinstance(owner, str) else None,
                    state=INTERRUPTED,
                    finished=time.time(),
                    message="Did not finish: the server stopped while it was "
                    + ("running." if job.get("state") == RUNNING else "waiting."),
                    # What was asked (a training's model and settings), so the asker is offered it again.
                    details=details if isinstance(details, dict) else {},
                )
                self._statuses[status.job_id] = status
                interrupted.append(status)
        return tuple(interrupted)

    # Running a job ----------------------------------------------------------------------------------

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
            self._forget_old()
            self._dispatch()
            self._write_marker()

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


def _json_details(details: dict) -> dict:
    """The details a marker can keep: those JSON can write (a request's model and settings, not a live race)."""
    kept = {}
    for key, value in details.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        kept[key] = value
    return kept
