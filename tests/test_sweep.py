"""Sweeps on Dask distributed: a local cluster end to end, a scheduler and worker processes started separately on
the loopback address (as a cluster would be), workers that die, a killed sweep that resumes, an unreachable
scheduler, and the CLI around it."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from fmnist_core.cli import main
from fmnist_core.engine.cluster import open_engine
from fmnist_core.errors import ClusterError
from fmnist_core.store.cache import ModelCache
from fmnist_core.sweep.result import load_sweeps
from fmnist_core.sweep.runner import SweepEvent, _collect, _WorkerWatcher, sweep_seeds
from tests.conftest import require_real_data
from tests.sweep_support import TINY_CONFIG, TINY_SEEDS, TINY_SPECS, run_tiny_sweep

ROOT = Path(__file__).resolve().parent.parent
DASK = Path(sys.executable).with_name("dask")
RUN_COUNT = len(TINY_SPECS) * len(TINY_SEEDS)


class Recorder:
    """Collects the events a sweep sends; `act` runs on each one (e.g. to kill a worker at the right moment)."""

    def __init__(self, act=None):
        self.events: list[SweepEvent] = []
        self.act = act

    def __call__(self, event: SweepEvent) -> None:
        self.events.append(event)
        if self.act is not None:
            self.act(event)

    def of_kind(self, kind: str) -> list[SweepEvent]:
        return [event for event in self.events if event.kind == kind]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def assert_runs_are_cache_entries(result, cache_dir: Path) -> None:
    cache = ModelCache(cache_dir)
    for run in result.runs:
        spec = next(spec for spec in TINY_SPECS if spec.name == run.model)
        entry = cache.find(spec, TINY_CONFIG.replace(seed=run.seed))
        assert entry is not None and entry.entry_id == run.entry_id
        assert entry.record.test_accuracy == run.test_accuracy
    assert {(run.model, run.seed) for run in result.runs} == {
        (spec.name, seed) for spec in TINY_SPECS for seed in TINY_SEEDS
    }


# Pure parts ---------------------------------------------------------------------------------------------------


def test_seeds_count_up_from_the_presets_seed():
    assert sweep_seeds(42, 5) == (42, 43, 44, 45, 46)
    with pytest.raises(Exception, match="at least one seed"):
        sweep_seeds(42, 0)


class FakeClient:
    def __init__(self, *answers):
        self.answers = list(answers)

    def nthreads(self):
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def test_workers_that_run_two_tasks_at_once_are_refused():
    with pytest.raises(ClusterError, match="--nthreads 1"):
        _WorkerWatcher(FakeClient({"tcp://a:1": 1, "tcp://b:2": 4}), 60, lambda event: None)


def test_watcher_notes_departures_and_gives_up_without_workers():
    notes = Recorder()
    watcher = _WorkerWatcher(FakeClient({"tcp://a:1": 1, "tcp://b:2": 1}, {"tcp://a:1": 1}, {}), 0.2, notes)
    watcher.check(finished_count=1, pending_count=3)
    assert "1 worker(s) left (1 connected)" in notes.events[0].text
    watcher.check(finished_count=1, pending_count=3)
    time.sleep(0.3)
    with pytest.raises(ClusterError, match="No Dask worker has been connected for 0 s.*1 runs that finished are kept"):
        watcher.check(finished_count=1, pending_count=3)


def test_unreachable_scheduler_is_a_clear_error(cache_dir):
    address = f"tcp://127.0.0.1:{free_port()}"  # Nothing listens there.
    started = time.monotonic()
    with pytest.raises(ClusterError, match=f"Could not reach the Dask scheduler at {address} within 2 s"):
        run_tiny_sweep(cache_dir, scheduler=address, connect_timeout=2)
    assert time.monotonic() - started < 30
    assert not cache_dir.exists() or not any(cache_dir.iterdir())


def test_the_cli_sweep_uses_fmnist_scheduler_and_says_in_one_line_when_it_is_unreachable(
    cache_dir, capsys, monkeypatch
):
    address = f"tcp://127.0.0.1:{free_port()}"  # Nothing listens there.
    monkeypatch.setenv("FMNIST_SCHEDULER", address)
    assert main(["sweep", "--models", "model1", "--seeds", "1"]) == 6
    said = capsys.readouterr().err
    assert f"on the Dask scheduler at {address}" in said and "Traceback" not in said
    [error] = [line for line in said.splitlines() if line.startswith("error:")]
    assert error.startswith(f"error: Could not reach the Dask scheduler at {address}")
    assert "unset FMNIST_SCHEDULER" in error


@pytest.mark.parametrize(
    "arguments, words",
    [
        (["--models", "model1,model1"], "distinct model names"),
        (["--models", "model9"], "Unknown model 'model9'"),
        (["--seeds", "0"], "at least one seed"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--scheduler", "tcp://127.0.0.1:8786", "--workers", "2"], "--workers sizes the local cluster"),
    ],
)
def test_bad_sweep_arguments(arguments, words, cache_dir, capsys):
    assert main(["sweep", *arguments]) == 2
    assert words in capsys.readouterr().err


def test_display_prints_a_line_per_run_when_not_a_terminal():
    from fmnist_core.cli.sweep_command import SweepDisplay
    from fmnist_core.sweep.result import RunResult

    stream = io.StringIO()
    display = SweepDisplay(2, stream=stream)
    run = RunResult("model1", "Model 1", 42, "model1-0123456789ab", 0.8629, 25.0, 2378.0, False, "h", 2)
    display.show(SweepEvent("progress", "epoch 1/3", "Model 1", 42, 0.1, worker="w1"))
    display.show(SweepEvent("progress", "epoch 2/3", "Model 1", 42, 0.5, worker="w1"))
    display.show(SweepEvent("finished", "trained", "Model 1", 42, 1.0, run))
    display.show(SweepEvent("failed", "out of memory", "Model 2", 42))
    assert stream.getvalue().splitlines() == [
        "Model 1 · seed 42: started on worker w1",
        "[1/2] ✓ Model 1 · seed 42: 86.29% test accuracy, trained in 25.0 s",
        "[2/2] ✗ Model 2 · seed 42: failed: out of memory",
    ]


def test_display_draws_one_live_bar_per_running_run_in_a_terminal():
    from fmnist_core.cli.sweep_command import SweepDisplay

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    display = SweepDisplay(4, stream=stream)
    display.show(SweepEvent("progress", "epoch 1/3", "Model 1", 42, 0.25))
    display.last_draw = 0.0  # Skip the redraw throttle.
    display.show(SweepEvent("progress", "epoch 1/3", "Model 2", 42, 0.5))
    last_frame = stream.getvalue().rsplit("\x1b[J", 1)[-1].splitlines()
    assert len(last_frame) == 2
    assert last_frame[0].startswith("Model 1 · seed 42   25/100 [=======>")
    assert last_frame[1].startswith("Model 2 · seed 42   50/100 [===============>") and "epoch 1/3" in last_frame[1]


# On Dask distributed ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_tiny_sweep_on_the_local_cluster_then_all_reused(tmp_path):
    cache_dir = tmp_path / "cache"
    recorder = Recorder()
    result = run_tiny_sweep(cache_dir, on_event=recorder)
    assert_runs_are_cache_entries(result, cache_dir)
    assert not any(run.reused for run in result.runs)
    assert {(event.model, event.seed) for event in recorder.of_kind("progress")} == {
        (spec.title, seed) for spec in TINY_SPECS for seed in TINY_SEEDS
    }
    assert len(recorder.of_kind("finished")) == RUN_COUNT and not recorder.of_kind("failed")
    assert result.engine["kind"] == "local" and result.engine["workers"] == 1
    # The statistics are those of the runs: Model 2 − Model 1 per seed, in points.
    by_run = {(run.model, run.seed): 100 * run.test_accuracy for run in result.runs}
    assert result.comparisons[0].differences == pytest.approx(
        tuple(by_run[("model2", seed)] - by_run[("model1", seed)] for seed in TINY_SEEDS)
    )
    assert result.models[0].test_accuracy.mean == pytest.approx(sum(by_run[("model1", s)] for s in TINY_SEEDS) / 2)
    assert load_sweeps(cache_dir) == ([result], [])

    again = Recorder()
    repeated = run_tiny_sweep(cache_dir, on_event=again)
    assert all(run.reused for run in repeated.runs) and len(again.of_kind("reused")) == RUN_COUNT
    assert "workers" not in repeated.engine  # Nothing was left to train: no cluster was started.
    assert repeated.models == result.models and repeated.comparisons == result.comparisons


@pytest.mark.slow
def test_a_killed_sweep_resumes_with_the_runs_it_finished(tmp_path):
    cache_dir = tmp_path / "cache"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "tests.sweep_support", str(cache_dir)],
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # Its local cluster's worker processes share its process group.
    )
    try:
        deadline = time.monotonic() + 600
        while not (cache_dir.is_dir() and any(path.name.startswith("model") for path in cache_dir.iterdir())):
            assert sweep.poll() is None, "the sweep ended before finishing a run"
            assert time.monotonic() < deadline, "no run finished within 10 minutes"
            time.sleep(0.2)
    finally:
        os.killpg(sweep.pid, signal.SIGKILL)
        sweep.wait(timeout=30)
    kept = [entry for entry in ModelCache(cache_dir).list() if entry.ok]
    assert 1 <= len(kept) < RUN_COUNT
    assert not list((cache_dir / "sweeps").glob("*.json")) if (cache_dir / "sweeps").exists() else True

    recorder = Recorder()
    result = run_tiny_sweep(cache_dir, on_event=recorder)
    assert_runs_are_cache_entries(result, cache_dir)
    assert {run.entry_id for run in result.runs if run.reused} == {entry.entry_id for entry in kept}
    assert len(recorder.of_kind("finished")) == RUN_COUNT - len(kept)


class LoopbackCluster:
    """`dask scheduler` and `dask worker` processes on 127.0.0.1, each in its own process group."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *arguments: str, environment: dict | None = None) -> None:
        log = (self.folder / f"{name}.log").open("w")
        self.processes[name] = subprocess.Popen(
            [str(DASK), *arguments],
            cwd=ROOT,  # Workers import the project (and the tests' tiny data loader) from here.
            env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", **(environment or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_worker(self, name: str, environment: dict | None = None) -> None:
        arguments = ("worker", self.address, "--nthreads", "1", "--name", name, "--no-dashboard")
        self.start(name, *arguments, environment=environment)

    def kill(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # The worker and its nanny: the machine went away.
        process.wait(timeout=30)

    def wait_for_workers(self, count: int, timeout: float = 120) -> None:
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            deadline = time.monotonic() + timeout
            while len(client.nthreads()) < count:
                assert time.monotonic() < deadline, f"{count} workers did not connect: {self.logs()}"
                time.sleep(0.2)

    def logs(self) -> str:
        return "\n".join(path.read_text() for path in self.folder.glob("*.log"))


@contextmanager
def loopback_cluster(folder: Path, workers: int = 2, environments: dict | None = None):
    """A scheduler and `workers` worker processes, started separately as on a real cluster; all killed after.

    environments: extra environment variables by worker name ("w1", ...), e.g. a cache and home folder of its own.
    """
    cluster = LoopbackCluster(folder)
    try:
        host, port = cluster.address.removeprefix("tcp://").split(":")
        cluster.start("scheduler", "scheduler", "--host", host, "--port", port, "--no-dashboard")
        for index in range(1, workers + 1):
            cluster.start_worker(f"w{index}", (environments or {}).get(f"w{index}"))
        cluster.wait_for_workers(workers)
        yield cluster
    finally:
        for name in list(cluster.processes):
            cluster.kill(name)


@pytest.mark.slow
def test_sweep_on_a_scheduler_and_two_separate_worker_processes(tmp_path):
    with loopback_cluster(tmp_path) as cluster:
        recorder = Recorder()
        result = run_tiny_sweep(tmp_path / "cache", scheduler=cluster.address, on_event=recorder)
    assert_runs_are_cache_entries(result, tmp_path / "cache")
    assert {event.worker for event in recorder.of_kind("progress")} == {"w1", "w2"}
    assert result.engine == {"kind": "scheduler", "address": cluster.address, "threads_per_run": None, "workers": 2}


@pytest.mark.slow
def test_a_worker_that_dies_mid_run_leaves_its_run_to_the_other(tmp_path):
    with loopback_cluster(tmp_path) as cluster:

        def kill_w1_once_it_trains(event: SweepEvent) -> None:
            if event.kind == "progress" and event.worker == "w1" and cluster.processes["w1"].poll() is None:
                cluster.kill("w1")

        recorder = Recorder(kill_w1_once_it_trains)
        result = run_tiny_sweep(tmp_path / "cache", scheduler=cluster.address, on_event=recorder)
    assert cluster.processes["w1"].poll() is not None
    assert any("worker(s) left" in event.text for event in recorder.of_kind("note"))
    assert_runs_are_cache_entries(result, tmp_path / "cache")
    assert not recorder.of_kind("failed")


@pytest.mark.slow
def test_when_every_worker_is_gone_the_sweep_stops_clearly_and_keeps_finished_runs(tmp_path):
    cache_dir = tmp_path / "cache"
    with loopback_cluster(tmp_path) as cluster:

        def kill_all_after_the_first_run(event: SweepEvent) -> None:
            if event.kind == "finished":
                for name in ("w1", "w2"):
                    cluster.kill(name)

        with pytest.raises(ClusterError, match="No Dask worker has been connected for 5 s") as raised:
            run_tiny_sweep(
                cache_dir,
                scheduler=cluster.address,
                on_event=Recorder(kill_all_after_the_first_run),
                worker_wait_seconds=5,
            )
    assert "run the same command again to resume" in str(raised.value)
    kept = [entry for entry in ModelCache(cache_dir).list() if entry.ok]
    assert 1 <= len(kept) < RUN_COUNT
    assert load_sweeps(cache_dir) == ([], [])


@pytest.mark.slow
def test_cli_reports_an_unreachable_scheduler_without_a_traceback(cache_dir):
    address = f"tcp://127.0.0.1:{free_port()}"
    completed = subprocess.run(
        [sys.executable, "-m", "fmnist_core", "sweep", "--models", "model1", "--seeds", "2", "--scheduler", address],
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 6
    assert f"error: Could not reach the Dask scheduler at {address}" in completed.stderr
    assert "Traceback" not in completed.stderr


@pytest.mark.slow
@pytest.mark.realdata
def test_cli_sweep_on_real_data_then_resumed_from_the_cache(tmp_path):
    require_real_data()
    arguments = ["--models", "model1,model2", "--epochs", "1", "--train-limit", "256", "--validation-split", "0"]
    arguments += ["--precision", "float32", "--out", str(tmp_path / "sweep.json")]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "FMNIST_CACHE_DIR": str(tmp_path / "cache")}

    def sweep(seeds: int, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "fmnist_core", "sweep", "--seeds", str(seeds), *arguments, *extra],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )

    first = sweep(2, "--json")
    assert first.returncode == 0, first.stderr
    payload = json.loads(first.stdout)
    assert payload["preset"] == "custom" and payload["seeds"] == [42, 43]
    assert [(run["model"], run["seed"], run["reused"]) for run in payload["runs"]] == [
        ("model1", 42, False),
        ("model2", 42, False),
        ("model1", 43, False),
        ("model2", 43, False),
    ]
    assert 0 < payload["runs"][0]["test_accuracy"] <= 1
    assert payload["comparisons"][0]["verdict"].startswith(("Model 1 and Model 2", "Model 1 is", "Model 2 is"))
    assert json.loads((tmp_path / "sweep.json").read_text())["runs"] == payload["runs"]
    assert Path(payload["saved_to"]) == tmp_path / "cache" / "sweeps" / f"{payload['sweep_id']}.json"

    # A third seed: the four runs above come from the cache, two are trained, and the tables are printed.
    second = sweep(3)
    assert second.returncode == 0, second.stderr
    assert second.stderr.count("in the cache") == 4 and second.stderr.count("trained in") == 2
    assert "[6/6] ✓ Model 2 · seed 44" in second.stderr
    assert "3 seeds per model (42, 43, 44)" in second.stdout
    assert "Paired differences in test accuracy" in second.stdout
    assert len(list((tmp_path / "cache" / "sweeps").glob("*.json"))) == 2


@pytest.mark.slow
@pytest.mark.realdata
def test_ctrl_c_stops_the_cli_sweep_and_its_workers(tmp_path):
    require_real_data()
    log = tmp_path / "stderr.txt"
    with log.open("w") as stderr:
        sweep = subprocess.Popen(
            [sys.executable, "-m", "fmnist_core", "sweep", "--models", "model1", "--seeds", "1"]
            + ["--epochs", "3", "--validation-split", "0"],
            cwd=ROOT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "FMNIST_CACHE_DIR": str(tmp_path / "cache")},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
            # A terminal's Ctrl-C reaches a process whose SIGINT is not ignored (a background job's would be).
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    try:
        deadline = time.monotonic() + 300
        while "started on worker" not in log.read_text():
            assert sweep.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        os.killpg(sweep.pid, signal.SIGINT)  # Ctrl-C: the whole foreground process group.
        assert sweep.wait(timeout=120) == 130
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
    assert "interrupted; the runs that finished are kept in the model cache" in log.read_text()
    assert "Traceback" not in log.read_text()
    time.sleep(2)
    with pytest.raises(ProcessLookupError):
        os.killpg(sweep.pid, 0)  # No worker process of its local cluster is left behind.


def sigint_ignored() -> bool:
    """In the calling process: whether SIGINT is ignored (the SigIgn mask in /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    raise AssertionError("no SigIgn line in /proc/self/status")


@pytest.mark.slow  # Starts a local Dask cluster.
def test_a_local_clusters_workers_ignore_ctrl_c_and_the_sweep_keeps_it():
    """Ctrl-C reaches the whole process group; only the sweep's own process acts on it (the test above)."""
    # As in a terminal, whatever this test runner inherited (a background job's SIGINT is ignored).
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with open_engine(None, 1, 10.0) as client:
            assert client.submit(sigint_ignored, pure=False).result(timeout=120)
            assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert not sigint_ignored()
    finally:
        signal.signal(signal.SIGINT, inherited)


def test_a_result_lost_with_its_worker_leaves_the_run_pending_instead_of_waiting_forever(cache_dir):
    """A run that finished on a worker killed before its result was fetched (the sweep's own test kills workers on
    the first "finished" event) is computed again by the scheduler; with no worker left, fetching it waited forever
    and hung CI. `_collect` now gives up after the wait it is given and says the run is still pending."""
    asked = []

    class LostResult:
        def result(self, timeout=None):
            asked.append(timeout)
            raise TimeoutError(f"timed out after {timeout} s.")

    finished, events = {}, []
    collected = _collect(LostResult(), TINY_SPECS[0], TINY_CONFIG, finished, events.append, 5, ModelCache(cache_dir))
    assert collected is False and asked == [5]
    assert finished == {} and events == []
