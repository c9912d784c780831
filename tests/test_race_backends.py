"""Race lanes on each Keras backend: thread limits, the clock's wait for the device, the environment, the probe.

Backend start-up runs in a fresh process, as in a real lane (lane_runtime changes process-wide state: affinity,
thread pools, visible devices). Tests for a backend that is not installed are reported as skipped with the
reason; JAX is a test requirement, so its tests always run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import types

import pytest

from fmnist_core.errors import ConfigError
from fmnist_core.machine import package_version
from fmnist_core.race.backends import BACKENDS, get_backend, parse_backends, require_installed
from fmnist_core.race.lane import PhaseClock, _Recorder
from fmnist_core.race.lane_process import _lane_environment, probe_backend
from fmnist_core.race.lane_runtime import LaneError, pin_cores

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKEND_PARAMS = [
    pytest.param(
        name,
        marks=pytest.mark.skipif(
            not backend.installed, reason=f"{backend.title} is not installed: its lane start-up cannot be tested here"
        ),
    )
    for name, backend in BACKENDS.items()
]

# Runs in a fresh process with a one-core CPU lane's environment: starts the backend as a lane does, then times
# work that keeps the one core busy for about a second, and a computation dispatched just before the clock stops.
LANE_CHECK = textwrap.dedent(
    """
    import json, sys, time
    from fmnist_core.race import lane_runtime
    from fmnist_core.race.lane import PhaseClock, _Recorder

    backend = sys.argv[1]
    lane = lane_runtime.start(backend, "CPU", 1)
    from fmnist_core.machine import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(1)  # Keras seeds TensorFlow too whenever it can import it.
    ops = keras.ops
    matrix = ops.ones((700, 700)) / 700.0

    def work(rounds):
        value = matrix
        for _ in range(rounds):
            value = ops.matmul(value, matrix)
        return value

    pending = {}
    clock = PhaseClock(_Recorder(time.time(), lambda message: None), lambda: lane.synchronize(pending.get("value")))
    work(2)  # Compile and warm up outside the clock.
    clock.start("train")
    started = time.perf_counter()
    while time.perf_counter() - started < 1.0:
        float(ops.convert_to_numpy(work(20))[0, 0])  # Waits for the result: the work is done, not just queued.
    pending["value"] = work(60)  # Dispatched; on JAX it is still being computed when the call returns.
    dispatched_ready = bool(pending["value"].is_ready()) if backend == "jax" else None
    clock.stop("train")
    done_ready = bool(pending["value"].is_ready()) if backend == "jax" else None
    print(json.dumps({
        "facts": lane.facts,
        "sync": lane.sync_method,
        "seconds": clock.seconds["train"],
        "cpu_seconds": clock.cpu_seconds["train"],
        "dispatched_ready": dispatched_ready,
        "done_ready": done_ready,
        "value": 700 * float(ops.convert_to_numpy(pending["value"])[0, 0]),
        "tensorflow_imported": sys.modules.get("tensorflow") is not None,
    }))
    """
)


@pytest.fixture(scope="module")
def lane_checks() -> dict[str, dict]:
    """LANE_CHECK's report for every installed backend (each in its own one-core lane process)."""
    reports = {}
    for name, backend in BACKENDS.items():
        if not backend.installed:
            continue
        completed = subprocess.run(
            [sys.executable, "-c", LANE_CHECK, name],
            capture_output=True,
            text=True,
            env=_lane_environment(name, "CPU", 1),
            cwd=PROJECT_ROOT,
            timeout=1800,  # A fresh backend import on a busy 2-core machine can take minutes.
        )
        assert completed.returncode == 0, completed.stderr[-3000:]
        reports[name] = json.loads(completed.stdout.strip().splitlines()[-1])
    return reports


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_a_one_core_lane_keeps_at_most_one_core_busy(lane_checks, backend):
    report = lane_checks[backend]
    facts = report["facts"]
    assert facts["cpu_cores"] == 1 and facts["device_name"] == "CPU"
    if backend != "jax":  # XLA has no thread setting that holds; the affinity alone limits it (measured below).
        assert (facts["intra_op_threads"], facts["inter_op_threads"]) == (1, 1)
    # CPU time ≈ wall time: a second of matrix products (multi-threaded by every backend when allowed) never got
    # more than one core's worth of CPU time.
    assert report["seconds"] >= 1.0
    assert report["cpu_seconds"] <= 1.05 * report["seconds"]
    assert report["tensorflow_imported"] is (backend == "tensorflow")


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_the_lane_clock_stops_only_when_the_device_has_finished(lane_checks, backend):
    report = lane_checks[backend]
    assert report["value"] == pytest.approx(1.0, rel=1e-3)  # Products of the averaging matrix stay the same.
    if backend == "jax":
        # JAX dispatches asynchronously even on the CPU: without the wait the clock would have stopped while
        # the last computation was still running. With it, the result was ready when the clock was read.
        assert report["dispatched_ready"] is False
        assert report["done_ready"] is True
        assert "block_until_ready" in report["sync"]
    else:
        # TensorFlow and PyTorch compute CPU operations before the call returns; their GPU paths are below.
        assert report["sync"].startswith("the step's loss copied to the host")


class _SlowDevice:
    """A device whose queued work finishes `seconds` after the clock asks it to finish."""

    def __init__(self, recorder: _Recorder, seconds: float):
        self.recorder, self.seconds, self.finished_at = recorder, seconds, []

    def synchronize(self) -> None:
        time.sleep(self.seconds)  # The device working, not a test waiting for something to happen.
        self.finished_at.append(self.recorder.now())


def test_the_phase_clock_reads_the_time_only_after_the_device_has_finished():
    sent = []
    recorder = _Recorder(time.time(), sent.append)
    device = _SlowDevice(recorder, 0.2)
    clock = PhaseClock(recorder, device.synchronize)
    clock.start("train")
    clock.stop("train")
    start_event, stop_event = recorder.events
    assert start_event[1:] == ("train", 0.0) and stop_event[1:] == ("train", 1.0)
    # Each clock reading comes after the device finished, so queued work counts where it ran, never earlier
    # (events are rounded to 0.1 ms, hence the half-step allowance).
    assert start_event[0] >= device.finished_at[0] - 5e-5 and stop_event[0] >= device.finished_at[1] - 5e-5
    assert clock.seconds["train"] >= 0.2
    assert clock.seconds["train"] == pytest.approx(stop_event[0] - start_event[0], abs=1e-3)  # Events are rounded.
    assert 0 <= clock.cpu_seconds["train"] < clock.seconds["train"]  # Sleeping is not CPU time.
    assert [message["phase"] for message in sent] == ["train", "train"]


def test_pinning_cores_limits_this_process_and_reports_the_count():
    before = os.sched_getaffinity(0)
    try:
        assert pin_cores(1) == 1 and len(os.sched_getaffinity(0)) == 1
        assert os.sched_getaffinity(0) <= before
    finally:
        os.sched_setaffinity(0, before)
    assert pin_cores(len(before) + 4) == len(before)  # Asking for more cores than allowed keeps them all.


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_a_gpu_lane_waits_for_the_gpu_with_the_backends_own_call(backend, monkeypatch):
    """The GPU branch, without a GPU: the backend is made to report one, and the wait it uses is recorded."""
    if not BACKENDS[backend].installed:
        pytest.skip(f"{BACKENDS[backend].title} is not installed: its GPU branch cannot be tested here")
    from fmnist_core.race import lane_runtime

    waited = []
    if backend == "jax":
        import jax

        gpu = types.SimpleNamespace(platform="gpu", device_kind="NVIDIA Test GPU", id=0)
        monkeypatch.setattr(jax, "devices", lambda *platform: [gpu])
        monkeypatch.setattr(jax, "block_until_ready", waited.append)
        lane = lane_runtime._jax(True, 4)
        lane.synchronize("model state")
        assert waited == ["model state"] and lane.facts["device_name"] == "NVIDIA Test GPU"
    else:
        import torch

        monkeypatch.setattr(torch, "set_num_threads", lambda threads: None)  # Keep the test process as it is.
        monkeypatch.setattr(torch, "set_num_interop_threads", lambda threads: None)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: "NVIDIA Test GPU")
        monkeypatch.setattr(torch.cuda, "synchronize", lambda: waited.append("cuda"))
        lane = lane_runtime._torch(True, 4)
        lane.synchronize(None)
        assert waited == ["cuda"] and lane.facts["device_name"] == "NVIDIA Test GPU"
        assert "torch.cuda.synchronize()" in lane.sync_method


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_a_gpu_lane_without_a_gpu_says_so(backend, monkeypatch):
    if not BACKENDS[backend].installed:
        pytest.skip(f"{BACKENDS[backend].title} is not installed: its GPU branch cannot be tested here")
    from fmnist_core.race import lane_runtime

    if backend == "jax":
        import jax

        monkeypatch.setattr(jax, "devices", lambda *platform: [types.SimpleNamespace(platform="cpu", id=0)])
    else:
        import torch

        monkeypatch.setattr(torch, "set_num_threads", lambda threads: None)
        monkeypatch.setattr(torch, "set_num_interop_threads", lambda threads: None)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    title = BACKENDS[backend].title
    with pytest.raises(LaneError, match=f"{title} sees no GPU in the lane process"):
        getattr(lane_runtime, f"_{backend}")(True, 4)


def test_each_lane_process_gets_its_backend_and_device_through_the_environment(monkeypatch):
    # What the lane adds is under test, not what an earlier test in this process left in its environment.
    for name in ("CUDA_VISIBLE_DEVICES", "JAX_PLATFORMS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    cpu = _lane_environment("jax", "CPU", 1)
    assert (cpu["KERAS_BACKEND"], cpu["CUDA_VISIBLE_DEVICES"], cpu["JAX_PLATFORMS"]) == ("jax", "", "cpu")
    assert cpu["OMP_NUM_THREADS"] == cpu["TF_NUM_INTRAOP_THREADS"] == "1"
    gpu = _lane_environment("torch", "GPU:2", 16)
    assert (gpu["KERAS_BACKEND"], gpu["CUDA_VISIBLE_DEVICES"], gpu["JAX_PLATFORMS"]) == ("torch", "2", "cuda")
    assert gpu["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    # GPU numbers count the GPUs this process may use: with CUDA_VISIBLE_DEVICES=3,5, GPU:1 is the fifth.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert _lane_environment("tensorflow", "GPU:1", 16)["CUDA_VISIBLE_DEVICES"] == "5"
    probe = _lane_environment("jax", None, None)
    assert probe["CUDA_VISIBLE_DEVICES"] == "3,5" and "JAX_PLATFORMS" not in probe and "OMP_NUM_THREADS" not in probe


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_the_probe_reports_the_backend_version_and_its_gpus(backend):
    facts = probe_backend(backend)
    assert facts["version"].split("+")[0] == package_version(backend).split("+")[0]
    assert isinstance(facts["gpus"], list)
    assert [gpu["id"] for gpu in facts["gpus"]] == [f"GPU:{index}" for index in range(len(facts["gpus"]))]
    assert all(isinstance(gpu["name"], str) and gpu["name"] for gpu in facts["gpus"])


def test_backends_are_named_checked_and_explained():
    assert parse_backends(" TensorFlow, jax ,torch") == ("tensorflow", "jax", "torch")
    for text in ("", "jax,jax", ",,"):
        with pytest.raises(ConfigError, match="Backends must be distinct"):
            parse_backends(text)
    with pytest.raises(ConfigError, match="Unknown backend 'pytorch'. Valid backends: tensorflow, jax, torch."):
        parse_backends("jax,pytorch")
    assert get_backend("jax").jit_compile is True and get_backend("tensorflow").jit_compile is False
    assert BACKENDS["jax"].installed, "JAX is a test requirement (requirements-dev.txt): CI races its lanes"


def test_a_missing_backend_is_refused_with_how_to_install_it(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *rest: None)
    assert not BACKENDS["torch"].installed
    with pytest.raises(ConfigError) as raised:
        require_installed(("jax", "torch"))
    message = str(raised.value)
    assert message.startswith("JAX is not installed on this machine. Install it with `pip install jax`")
    assert "PyTorch is not installed on this machine. Install it with `pip install torch`" in message
