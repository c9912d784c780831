"""The parent's handle on race lane processes: launch one, follow its JSON lines, stop it, and ask a backend
which GPUs it sees (`race-probe`), each in a fresh process with the environment that picks its backend and device.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

from fmnist_core.paths import PROJECT_ROOT
from fmnist_core.race.backends import BACKENDS
from fmnist_core.race.lane import RACE_PARENT_VARIABLE, Event, LaneError, RaceCancelled, Workload

STOP_GRACE_SECONDS = 5.0  # A lane asked to stop gets this long to exit before it is killed.
PROBE_TIMEOUT_SECONDS = 300.0  # Importing a backend and finding its GPUs; minutes only on a cold disk.


def _gpu_visible(device: str) -> str:
    """CUDA_VISIBLE_DEVICES for a lane on `device` ("GPU:<n>": the n-th GPU this process may use)."""
    index = int(device.split(":")[1])
    inherited = [part for part in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if part.strip()]
    return inherited[index] if index < len(inherited) else str(index)


def _lane_environment(backend: str, device: str | None, threads: int | None) -> dict[str, str]:
    """The child's environment: its backend, its one GPU or none, its thread limits (device None: a probe)."""
    env = dict(
        os.environ,
        KERAS_BACKEND=backend,
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONUNBUFFERED="1",
        CUDA_DEVICE_ORDER="PCI_BUS_ID",  # GPU numbers as nvidia-smi shows them, for the probe and the lanes alike.
        XLA_PYTHON_CLIENT_PREALLOCATE="false",  # JAX takes GPU memory as needed, like the TensorFlow lane.
    )
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(PROJECT_ROOT), os.environ.get("PYTHONPATH"))))
    if threads is not None:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
            env[name] = str(threads)
    if device == "CPU":
        env["CUDA_VISIBLE_DEVICES"] = ""  # CUDA never initialises, so the CPU lane pays no GPU start-up.
        env["JAX_PLATFORMS"] = "cpu"
    elif device is not None:
        env["CUDA_VISIBLE_DEVICES"] = _gpu_visible(device)  # The lane's GPU is the only one it sees.
        env["JAX_PLATFORMS"] = "cuda"  # No silent fallback to the CPU: the lane fails and says why.
    return env


def _end_process(process: subprocess.Popen) -> None:
    """Terminate, then kill if it has not exited within the grace period; always reaps it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _error_tail(stderr, lines: int = 6) -> str:
    stderr.seek(0)
    text = stderr.read().decode("utf-8", errors="replace").strip().splitlines()
    return "\n".join(text[-lines:]) or "no error output"


def _run_child(
    arguments: list[str],
    env: dict[str, str],
    on_message: Callable[[dict], None],
    on_idle: Callable[[], None],
    should_stop: Callable[[], bool] | None,
    timeout: float | None = None,
) -> None:
    """Run `python -m fmnist_core ARGUMENTS`, handing each protocol line to `on_message` as it arrives.

    on_idle runs about ten times a second between lines. Raises RaceCancelled (after ending the process) when
    `should_stop()` turns true, LaneError with the child's own message, its error output, or a time-out.
    """
    failure = None
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "fmnist_core", *arguments],
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            env={**env, RACE_PARENT_VARIABLE: str(os.getpid())},  # The child ends when this process does.
            text=True,
            encoding="utf-8",
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            for line in process.stdout:
                lines.put(line)
            lines.put(None)

        reader = threading.Thread(target=read, name="race-lane-reader", daemon=True)
        reader.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                if should_stop is not None and should_stop():
                    raise RaceCancelled("The race was stopped; nothing was saved.")
                if deadline is not None and time.monotonic() > deadline:
                    raise LaneError(f"`{' '.join(arguments[:3])}` gave no answer within {timeout:.0f} s.")
                try:
                    line = lines.get(timeout=0.1)
                except queue.Empty:
                    on_idle()
                    continue
                if line is None:
                    break
                message = json.loads(line)
                if message["type"] == "error":
                    failure = message["message"]
                else:
                    on_message(message)
            process.wait()
        finally:
            _end_process(process)
            reader.join(timeout=STOP_GRACE_SECONDS)
            process.stdout.close()
        if failure is not None:
            raise LaneError(failure)
        if process.returncode != 0:
            raise LaneError(f"The lane process exited with code {process.returncode}: {_error_tail(stderr)}")


def run_lane_process(
    workload: Workload,
    backend: str,
    device: str,
    threads: int,
    started_at: float,
    on_update: Callable[[tuple[Event, ...]], None],
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """Run one repeat of a lane in a fresh process and return its result record (a dict).

    on_update(events) gets every event so far whenever one arrives, and about ten times a second
    meanwhile, so live timers keep ticking while the backend starts. Raises RaceCancelled (after ending
    the process) when `should_stop()` turns true, and LaneError when the lane fails.
    """
    events: list[Event] = []
    results: list[dict] = []

    def on_message(message: dict) -> None:
        if message["type"] == "event":
            events.append((message["t"], message["phase"], message["fraction"]))
            on_update(tuple(events))
        elif message["type"] == "result":
            results.append(message["repeat"])

    arguments = ["race-lane", "--workload", json.dumps(workload.to_dict()), "--backend", backend]
    arguments += ["--device", device, "--threads", str(threads), "--started-at", repr(started_at)]
    _run_child(
        arguments,
        _lane_environment(backend, device, threads),
        on_message,
        lambda: on_update(tuple(events)),
        should_stop,
    )
    if not results:
        raise LaneError("The lane process ended without a result.")
    return results[0]


def probe_backend(backend: str, should_stop: Callable[[], bool] | None = None) -> dict:
    """{"version", "gpus": [{"id": "GPU:0", "name": …}]} as `backend` sees them, asked in a fresh process."""
    facts: list[dict] = []

    def on_message(message: dict) -> None:
        if message["type"] == "probe":
            facts.append(message["facts"])

    _run_child(
        ["race-probe", "--backend", backend],
        _lane_environment(backend, None, None),
        on_message,
        lambda: None,
        should_stop,
        timeout=PROBE_TIMEOUT_SECONDS,
    )
    if not facts:
        raise LaneError(f"Asking {BACKENDS[backend].title} for its devices gave no answer.")
    return facts[0]
