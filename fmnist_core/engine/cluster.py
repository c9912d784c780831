"""The Dask client trainings run on: a LocalCluster started here, or an existing cluster at a scheduler's address.

Why Dask distributed (docs/decisions/why-dask.md): pure Python from PyPI, a cluster is two commands (`dask scheduler`,
`dask worker ADDRESS`), `LocalCluster` gives the same worker processes on one machine, and its futures, event
topics and `Event`s cover queueing work, progress and Stop without an RPC layer of our own.

The app's trainings leave the web server: one worker process does the training, at a lower CPU priority than
the server (`LowerPriority`), so pages answer first while a training runs. `SharedEngine` starts it at the first
training and keeps it for the server's life; its nanny restarts a worker that dies.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fmnist_core.errors import ClusterError, ConfigError

SCHEDULER_VARIABLE = "FMNIST_SCHEDULER"  # tcp://HOST:8786: train on that cluster instead of a local worker.
CONNECT_TIMEOUT_SECONDS = 10.0
# Without a dashboard the scheduler still serves /health on a port, 8787 unless told: a second cluster (or anything on
# 8787) then warned "Port 8787 is already in use". Any free port on this machine only, and still no dashboard.
QUIET_SCHEDULER = {"dashboard_address": "127.0.0.1:0"}
WORKER_NICENESS = 10  # The local worker's CPU priority (0 = the server's; 19 = lowest).


def unreachable(address: str, timeout: float, error: BaseException, fallback: str) -> ClusterError:
    """The one-line error for a scheduler that cannot be reached; `fallback` says how to do without it."""
    return ClusterError(
        f"Could not reach the Dask scheduler at {address} within {timeout:.0f} s ({error}). Check that "
        f"`dask scheduler` runs there, the address and port (default 8786) and any firewall, or {fallback}."
    )


def connect(address: str, timeout: float, fallback: str):
    """A `distributed.Client` of the scheduler at `address`; ClusterError (one line) when it cannot be reached."""
    from distributed import Client

    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as error:
        raise unreachable(address, timeout, error, fallback) from None


def lower_priority(niceness: int) -> None:
    """Lower the CPU priority of every thread of this process to `niceness` (never raise it).

    On Linux a priority belongs to a thread and new threads inherit their creator's, so every thread present
    (the event loop, the task threads) is lowered and TensorFlow's pools, started later by a task, inherit it.
    """
    threads = Path("/proc/self/task")
    ids = [int(path.name) for path in threads.iterdir()] if threads.is_dir() else [0]
    for thread_id in ids:
        try:
            if os.getpriority(os.PRIO_PROCESS, thread_id) < niceness:
                os.setpriority(os.PRIO_PROCESS, thread_id, niceness)
        except OSError:
            pass  # The thread ended meanwhile.


def _lower_priority_plugin(niceness: int):
    from distributed import WorkerPlugin

    class LowerPriority(WorkerPlugin):
        """Applied to every worker of the app's local cluster, the ones its nanny restarts included."""

        name = "fmnist-lower-priority"

        def setup(self, worker) -> None:
            lower_priority(niceness)

    return LowerPriority()


def start_local_cluster(workers: int, *, niceness: int | None = None, retry_killed: bool = True):
    """A LocalCluster of `workers` processes (one task thread each) and its client.

    niceness: the workers' CPU priority (None: as this process). retry_killed: run a task again on another worker
    when its worker dies (a sweep's runs); False: the task fails at once with KilledWorker (a visitor's training,
    which the queue then reports as failed instead of starting it over unseen).
    """
    import dask
    from distributed import Client, LocalCluster

    if workers < 1:
        raise ConfigError(f"A local cluster needs at least one worker (got {workers}).")
    settings = {} if retry_killed else {"distributed.scheduler.allowed-failures": 0}
    # No dashboard (nothing would look at it, and a second cluster would fight for its port); worker logs only
    # for errors, so a terminal shows the sweep's own progress.
    with dask.config.set(settings), _started_deaf_to_ctrl_c(), _spawned_without_the_main_script():
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            scheduler_kwargs=QUIET_SCHEDULER,
            silence_logs=logging.ERROR,
        )
    client = Client(cluster)
    if niceness is not None:
        client.register_plugin(_lower_priority_plugin(niceness))
    return cluster, client


@contextmanager
def open_engine(scheduler: str | None, workers: int, connect_timeout: float) -> Iterator:
    """A Dask client for a sweep: to the scheduler at `scheduler`, or to a new LocalCluster of `workers` processes."""
    if scheduler:
        fallback = f"leave out --scheduler (and unset {SCHEDULER_VARIABLE}) to run on this machine"
        with connect(scheduler, connect_timeout, fallback) as client:
            yield client
        return
    cluster, client = start_local_cluster(workers)
    with cluster, client:
        yield client


@contextmanager
def _spawned_without_the_main_script() -> Iterator[None]:
    """Processes started inside do not run this process's `__main__` script again.

    A spawned Python imports its parent's `__main__` from its file before anything else. In the Streamlit server that
    module is the page script Streamlit installed for its last run (streamlit_app.py): a worker started by the first
    training would run the router and die before it could take a task (seen in the test suite after an AppTest run:
    "'Page' object has no attribute '_url_path'"). A bare `__main__` stands in while the processes start.
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


@contextmanager
def _started_deaf_to_ctrl_c() -> Iterator[None]:
    """Processes started inside ignore SIGINT (a spawned Python keeps an ignored SIGINT ignored).

    A terminal's Ctrl-C reaches the whole process group. The sweep's own process handles it and closes the local
    cluster in order; a worker that got it too could close itself mid-way and log a traceback (seen 1 time in 5).
    A Ctrl-C pressed while the workers start is ignored. Only the main thread may change signal handlers; a sweep
    started from another thread has no terminal to press Ctrl-C in anyway.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class SharedEngine:
    """The app's Dask client, made at the first training and shared by every job of the server (thread-safe).

    scheduler: an existing cluster's address (FMNIST_SCHEDULER, or `scheduler` in .streamlit/classroom.toml);
    empty: a LocalCluster of one worker process at WORKER_NICENESS, started here on first use.
    """

    def __init__(self, scheduler: str = "", connect_timeout: float = CONNECT_TIMEOUT_SECONDS):
        self.scheduler, self.connect_timeout = scheduler, connect_timeout
        self._lock = threading.Lock()
        self._cluster = None
        self._client = None

    def client(self):
        """The client, connected or started now if needed; ClusterError when the scheduler cannot be reached."""
        with self._lock:
            if self._client is not None and self._client.status == "running":
                return self._client
            if self.scheduler:
                fallback = f"unset {SCHEDULER_VARIABLE} (and `scheduler` in .streamlit/classroom.toml) to train here"
                self._client = connect(self.scheduler, self.connect_timeout, fallback)
            else:
                self._cluster, self._client = start_local_cluster(1, niceness=WORKER_NICENESS, retry_killed=False)
            return self._client

    def after_a_lost_worker(self) -> None:
        """The next training starts a fresh local cluster rather than on the worker its nanny starts again.

        The nanny lives in this process and restarts a worker as multiprocessing starts any process, by re-running
        this process's `__main__` first: in the Streamlit server, the page script Streamlit installed for its last run,
        so that worker would die before taking a task and every later training would wait for ever. A fresh cluster
        starts with a bare `__main__` (`_spawned_without_the_main_script`). A remote cluster's workers are its own.
        """
        if not self.scheduler:
            self.close()

    def close(self) -> None:
        with self._lock:
            for part in (self._client, self._cluster):
                if part is not None:
                    part.close()
            self._client = self._cluster = None
