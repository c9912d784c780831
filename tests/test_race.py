"""Tests for the GPU-vs-CPU race: real lane processes on every installed backend, the race file, replay, the page.

Real lanes run in one multi-backend CLI race (JAX always: CI installs it; PyTorch when installed) and in the stop
tests; everything else uses hand-made results (tests/race_support.py), which are test fixtures only and never
written to recorded_races/. Backend internals (threads, clock, environment) are in test_race_backends.py.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from devtools.proc_support import parents
from fmnist_core.cli import main
from fmnist_core.errors import ConfigError
from fmnist_core.jobs.queue import CANCELLED, JobManager
from fmnist_core.race.backends import BACKENDS, fastest_precision
from fmnist_core.race.file import (
    MAX_RACE_FILE_BYTES,
    RaceFileError,
    list_races,
    load_race,
    parse_race,
    races_dir,
    store_race,
)
from fmnist_core.race.lane import LANE_KINDS, LaneError, RaceCancelled, Workload
from fmnist_core.race.plan import lane_label, no_gpu_reason, plan_lanes
from fmnist_core.race.runner import (
    RaceLive,
    RaceOptions,
    live_state,
    replay_duration,
    replay_state,
    run_race,
    start_race_job,
)
from tests.race_support import NO_GPU_MACHINE, PAUSE, TINY, make_result

PROJECT_ROOT = Path(__file__).resolve().parent.parent
V1_FILE = Path(__file__).parent / "fixtures" / "race-format-1.json"  # Written by the version 1 code (main, 12fb763).
# JAX is a test requirement, so its lanes always run; PyTorch's run where it is installed and are reported as
# skipped (with the reason) where it is not.
RACED = tuple(name for name in ("tensorflow", "jax", "torch") if name != "torch" or BACKENDS["torch"].installed)
BACKEND_PARAMS = [
    pytest.param(
        name,
        marks=pytest.mark.skipif(
            name not in RACED, reason=f"{BACKENDS[name].title} is not installed: its lanes cannot run here"
        ),
    )
    for name in BACKENDS
]


def lane_processes() -> list[int]:
    """Pids of this process's children that run a race lane."""
    found = []
    for pid, parent in parents().items():
        try:
            if parent == os.getpid() and b"race-lane" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            continue  # It ended meanwhile.
    return found


# Real lane processes --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_race(tmp_path_factory):
    """`race --backend <installed> --lanes gpu,cpu-1 …` with a tiny workload, run once:
    (exit code, output file, cache folder, stdout)."""
    folder = tmp_path_factory.mktemp("race")
    output = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(output):
        patch.setenv("FMNIST_CACHE_DIR", str(folder / "cache"))
        code = main(
            [
                "race",
                "--backend",
                ",".join(RACED),
                "--repeats",
                "1",
                "--lanes",
                "gpu,cpu-1",
                "--train-batches",
                "3",
                "--batch-size",
                "32",
                "--warmup-batches",
                "1",
                "--inference-images",
                "100",
                "--out",
                str(folder / "race.json"),
            ]
        )
    return code, folder / "race.json", folder / "cache", output.getvalue()


@pytest.mark.slow
@pytest.mark.realdata
def test_cli_race_runs_real_lanes_on_every_backend_and_writes_a_valid_file(cli_race):
    code, path, cache, printed = cli_race
    assert code == 0
    result = load_race(path)
    assert json.loads(path.read_text())["schema_version"] == 3
    stored = sorted((cache / "races").glob("*.json"))
    assert len(stored) == 1 and load_race(stored[0]) == result
    assert result.workload == Workload(train_batches=3, batch_size=32, warmup_batches=1, inference_images=100)
    assert [lane.backend for lane in result.lanes if lane.kind == "cpu-1"] == list(RACED)
    for name in RACED:
        assert result.machine["versions"][name] and name in result.machine["backends"]
        gpu_lanes = [lane for lane in result.lanes if lane.backend == name and lane.kind == "gpu"]
        if not result.machine["backends"][name]["gpus"]:  # This machine, CI: the GPU lane says why it cannot run.
            ((lane),) = gpu_lanes
            assert not lane.available and lane.unavailable_reason == no_gpu_reason(name)
        else:  # A GPU machine: the lane ran there, on the GPU.
            assert all(lane.repeats[0].runtime["device"].startswith("GPU") for lane in gpu_lanes)
    assert "Wrote" in printed and lane_label("jax", "cpu-1", 2) in printed
    # The race file replays: every lane that ran crosses the line.
    final = replay_state(result, replay_duration(result))
    assert sorted(view.place for view in final if view.status == "done") == list(range(1, len(result.finish_order) + 1))


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_a_one_core_lane_runs_on_its_backend_with_one_core_and_a_synchronised_clock(cli_race, backend):
    _, path, _, _ = cli_race
    (lane,) = [lane for lane in load_race(path).lanes if lane.backend == backend and lane.kind == "cpu-1"]
    (repeat,) = lane.repeats
    runtime = repeat.runtime
    # The lane reports what it really ran with, read back from the backend and the OS.
    assert runtime["backend"] == backend and runtime["cpu_cores"] == 1 and runtime["device"].startswith("CPU")
    assert runtime["pid"] != os.getpid() and runtime["keras_version"]
    assert runtime["jit_compile"] is BACKENDS[backend].jit_compile
    # Each lane ran the precision the race recorded for it: its CPU's fastest (float32 without native bfloat16).
    assert runtime["precision"] == lane.precision == fastest_precision(backend, "CPU")
    assert runtime["batch_norm"] == ("tensorflow-fused" if backend == "tensorflow" else "keras")
    assert runtime["tensorflow_imported"] is (backend == "tensorflow")
    if backend != "jax":  # XLA sizes its own pool; affinity is JAX's only limit, checked by the CPU time below.
        assert (runtime["intra_op_threads"], runtime["inter_op_threads"]) == (1, 1)
    # One core: the process never had more than one core's worth of CPU time per second of training.
    assert 0 < runtime["train_cpu_seconds"] <= 1.05 * repeat.train_seconds
    assert lane.cores_busy <= 1.05
    assert runtime["sync"] and 0 <= runtime["test_accuracy"] <= 1
    times = [event[0] for event in repeat.events]
    assert times == sorted(times) and [event[1] for event in repeat.events][-1] == "done"
    assert min(repeat.setup_seconds, repeat.warmup_seconds, repeat.train_seconds, repeat.inference_seconds) > 0
    # Both figures are rounded in the file and a tiny race trains for a fraction of a second, so allow 0.5%.
    assert repeat.train_images_per_second == pytest.approx(96 / repeat.train_seconds, rel=5e-3)


@pytest.mark.slow
@pytest.mark.realdata
def test_race_list_shows_the_stored_race(cli_race, monkeypatch, capsys):
    _, _, cache, _ = cli_race
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(cache))
    assert main(["race", "--list"]) == 0
    assert "jax-cpu-1" in capsys.readouterr().out


@pytest.mark.slow  # Starts a lane process, then ends it.
@pytest.mark.realdata
def test_stopping_before_the_lane_reports_ends_its_process(cache_dir):
    with pytest.raises(RaceCancelled):
        run_race(RaceOptions(TINY, ("cpu-all",), 1, ("jax",)), should_stop=lambda: True)
    assert lane_processes() == []


@pytest.mark.slow
@pytest.mark.realdata
def test_cancelling_a_running_race_job_kills_the_lane_and_saves_nothing(cache_dir):
    manager = JobManager()
    status = start_race_job(manager, RaceOptions(TINY, ("cpu-all",), 1))
    deadline = time.monotonic() + 60
    # Wait until the lane process has started and spoken, so the stop hits a lane at work.
    while not (getattr(manager.status(status.job_id).details.get("race"), "events", ()) and lane_processes()):
        assert time.monotonic() < deadline, "the lane process never started"
        time.sleep(0.05)
    (pid,) = lane_processes()
    assert manager.cancel(status.job_id)
    final = manager.wait(status.job_id, timeout=30)
    assert final.state == CANCELLED and final.result is None
    assert not Path(f"/proc/{pid}").exists()
    assert not races_dir().exists() or not list(races_dir().glob("*.json"))


# Lanes and options ----------------------------------------------------------------------------------------


def test_lanes_are_planned_per_backend_with_labels_saying_backend_and_device():
    lanes = plan_lanes(("tensorflow", "jax"), LANE_KINDS, {"jax": [{"id": "GPU:0", "name": "NVIDIA H200"}]}, 4)
    assert [(lane.lane_id, lane.label, lane.device, lane.threads, lane.available) for lane in lanes] == [
        ("tensorflow-gpu", "TensorFlow · GPU", "GPU", 4, False),
        ("tensorflow-cpu-all", "TensorFlow · CPU, 4 cores", "CPU", 4, True),
        ("tensorflow-cpu-1", "TensorFlow · CPU, 1 core", "CPU", 1, True),
        ("jax-gpu-0", "JAX · NVIDIA H200", "GPU:0", 4, True),
        ("jax-cpu-all", "JAX · CPU, 4 cores", "CPU", 4, True),
        ("jax-cpu-1", "JAX · CPU, 1 core", "CPU", 1, True),
    ]
    assert lanes[0].unavailable_reason == no_gpu_reason("tensorflow")
    assert "TensorFlow sees no GPU" in lanes[0].unavailable_reason
    two = [{"id": "GPU:0", "name": "NVIDIA H200"}, {"id": "GPU:1", "name": "NVIDIA H200"}]
    labels = [lane.label for lane in plan_lanes(("torch",), ("gpu",), {"torch": two}, 16)]
    assert labels == ["PyTorch · GPU:0 · NVIDIA H200", "PyTorch · GPU:1 · NVIDIA H200"]


def test_a_race_with_only_an_unavailable_lane_says_so(cache_dir, monkeypatch, capsys):
    monkeypatch.setattr("fmnist_core.race.runner.race_machine", lambda backends, probe, should_stop: NO_GPU_MACHINE)
    with pytest.raises(LaneError, match="No lane can run"):
        run_race(RaceOptions(TINY, ("gpu",), 1, ("tensorflow", "jax")))
    assert main(["race", "--backend", "jax", "--lanes", "gpu"]) == 1
    assert "JAX sees no GPU" in capsys.readouterr().err


@pytest.mark.parametrize(
    "changes",
    [
        {"train_batches": 0},
        {"batch_size": 256, "train_batches": 235},
        {"precision": "float8"},
        {"inference_images": 10_001},
    ],
)
def test_invalid_workloads_are_refused(changes):
    with pytest.raises(ConfigError):
        Workload(**changes)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--lanes", "tpu"], "Lanes must be distinct"),
        (["--lanes", "cpu-1,cpu-1"], "Lanes must be distinct"),
        (["--repeats", "0"], "Repeats must be"),
        (["--train-batches", "0"], "train batches must be"),
        (["--backend", "mxnet"], "Unknown backend 'mxnet'. Valid backends: tensorflow, jax, torch."),
        (["--backend", "jax,jax"], "Backends must be distinct"),
        (["--backend", ""], "Backends must be distinct"),
    ],
)
def test_the_cli_refuses_bad_settings_with_exit_code_2(arguments, expected, cache_dir, capsys):
    assert main(["race", *arguments]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error:") and expected in error


def test_racing_a_backend_that_is_not_installed_says_how_to_install_it(cache_dir, monkeypatch, capsys):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        "importlib.util.find_spec", lambda name, *rest: None if name == "torch" else real_find_spec(name, *rest)
    )
    started = time.perf_counter()
    assert main(["race", "--backend", "tensorflow,torch"]) == 2
    assert time.perf_counter() - started < 5, "refused before any lane started"
    error = capsys.readouterr().err
    assert "PyTorch is not installed on this machine. Install it with `pip install torch`" in error
    assert "TensorFlow is not installed" not in error


# The race file --------------------------------------------------------------------------------------------


def test_race_file_round_trip_keeps_everything_and_derives_the_rest():
    result = make_result()
    written = result.to_dict()
    assert parse_race(json.dumps(written)) == result
    assert written["schema_version"] == 3
    order = ["jax-gpu-0", "tensorflow-cpu-all", "tensorflow-cpu-1", "jax-cpu-1"]
    assert written["finish_order"] == order == result.finish_order
    assert written["speedups"]["baseline"] == "tensorflow-cpu-all"
    assert written["speedups"]["train"]["jax-gpu-0"] == pytest.approx(6.0 / 0.5)
    assert written["lanes"][1]["median"]["train_seconds"] == 6.0
    assert written["lanes"][1]["spread"]["train_seconds"] == {"min": 5.0, "max": 7.0}
    assert [(lane["backend"], lane["kind"]) for lane in written["lanes"]] == [
        ("jax", "gpu"),
        ("tensorflow", "cpu-all"),
        ("tensorflow", "cpu-1"),
        ("jax", "cpu-1"),
    ]
    assert result.lanes[3].cores_busy == pytest.approx(19.6 / 20.0) and result.lanes[1].cores_busy is None
    assert result.recorded_label == "recorded on test-box (Test GPU, Test CPU, 2 cores), 2026-01-02 03:04"


def test_a_version_1_race_file_still_loads_as_tensorflow_lanes():
    """The fixture was written by the version 1 code (TensorFlow only, lanes without a backend), unedited."""
    values = json.loads(V1_FILE.read_text())
    assert values["schema_version"] == 1 and "backend" not in values["lanes"][0]
    result = load_race(V1_FILE)
    assert [(lane.lane_id, lane.backend, lane.kind) for lane in result.lanes] == [
        ("gpu-0", "tensorflow", "gpu"),
        ("cpu-all", "tensorflow", "cpu-all"),
        ("cpu-1", "tensorflow", "cpu-1"),
    ]
    assert [lane.label for lane in result.lanes] == [
        "TensorFlow · GPU:0 · Test GPU",
        "TensorFlow · CPU, all cores (2)",
        "TensorFlow · CPU, 1 core",
    ]
    assert result.workload.jit_compile is False and result.speedups["baseline"] == "cpu-all"
    assert result.finish_order == values["finish_order"] and result.speedups == values["speedups"]
    replayed = replay_state(result, replay_duration(result))
    assert [view.place for view in replayed] == [1, 2, 3]
    # Saved again, it is a version 3 file with the same lanes and times, each lane in the file's one precision.
    assert [lane.precision for lane in result.lanes] == [result.workload.precision] * 3
    assert parse_race(json.dumps(result.to_dict())) == result


def test_stored_races_are_listed_newest_first_with_unreadable_ones_flagged(cache_dir):
    first = store_race(make_result())
    second = store_race(make_result())
    (races_dir() / "broken.json").write_text("{", encoding="utf-8")
    for age, path in enumerate((races_dir() / "broken.json", second, first)):
        os.utime(path, (time.time() - age, time.time() - age))
    listed = [(stored.path, stored.result is None) for stored in list_races() if stored.origin == "this machine"]
    assert listed == [(races_dir() / "broken.json", True), (second, False), (first, False)]


def valid_file() -> dict:
    return json.loads(json.dumps(make_result().to_dict()))


def without(path: tuple, values: dict | None = None) -> dict:
    values = values or valid_file()
    target = values
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return values


def with_value(path: tuple, value) -> dict:
    values = valid_file()
    target = values
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return values


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"{oops", "not valid JSON"),
        (b"\xff\xfe\x00", "not text"),
        (b"[1, 2]", "holds a list"),
        (json.dumps({"hello": 1}), "no `schema` field"),
        (json.dumps(with_value(("schema",), "fmnist-bench")), "not a race file"),
        (json.dumps(with_value(("schema_version",), 4)), "schema_version 4; this app reads versions 1 to 3"),
        (json.dumps(with_value(("lanes", 1, "precision"), "float8")), "`lanes[1].precision` should be one of"),
        (json.dumps(with_value(("lanes", 1, "precision"), None)), "`lanes[1].precision` should be one of"),
        (json.dumps(without(("lanes", 3, "precision"))), "`lanes[3].precision` is missing"),
        (json.dumps(with_value(("lanes", 0, "backend"), "mxnet")), "`lanes[0].backend` should be one of"),
        (json.dumps(with_value(("lanes", 2, "kind"), "cpu-3")), "`lanes[2].kind` should be one of"),
        (json.dumps(without(("lanes", 1, "backend"))), "`lanes[1].backend` is missing"),
        (json.dumps(with_value(("workload", "jit_compile"), "yes")), "`workload.jit_compile` should be true or false"),
        (json.dumps(with_value(("schema_version",), "1")), "`schema_version` should be a whole number"),
        (json.dumps(without(("lanes", 0, "repeats", 0, "train_seconds"))), "`lanes[0].repeats[0].train_seconds`"),
        (json.dumps(without(("workload", "spec", "first_filters"))), "`workload.spec.first_filters`"),
        (json.dumps(without(("machine",))), "`machine`"),
        (json.dumps(with_value(("lanes", 1, "repeats", 0, "train_seconds"), "fast")), "should be a finite number"),
        (json.dumps(with_value(("lanes", 1, "available"), 1)), "should be true or false"),
        (json.dumps(with_value(("lanes", 0, "repeats", 0, "events", 2), [0.0, "warmup", 0.5])), "in time order"),
        (json.dumps(with_value(("lanes", 0, "repeats", 0, "events", 1), [1.0, "sprint", 0.5])), "phase one of"),
        (json.dumps(with_value(("workload", "batch_size"), 0)), "`workload` is not valid"),
        (b" " * (MAX_RACE_FILE_BYTES + 1), "at most 5 MB"),
    ],
)
def test_malformed_race_files_get_a_clear_message(payload, expected):
    with pytest.raises(RaceFileError) as raised:
        parse_race(payload, "race.json")
    assert expected in str(raised.value)
    assert raised.value.exit_code == 2


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path_choice=st.integers(min_value=0), value=json_values)
def test_any_damage_to_a_race_file_is_a_race_file_error_or_still_valid(path_choice, value):
    values = valid_file()
    paths = []

    def walk(node, path):
        paths.append(path)
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in children:
            walk(child, (*path, key))

    walk(values, ())
    path = paths[1 + path_choice % (len(paths) - 1)]
    damaged = with_value(path, value)
    try:
        result = parse_race(json.dumps(damaged))
    except RaceFileError:
        return
    # Still valid: it must be usable everywhere a race is shown.
    replay_state(result, replay_duration(result) / 2)
    result.summary_rows()
    assert result.recorded_label


# Replay and live views ------------------------------------------------------------------------------------


def test_replay_one_after_another_follows_the_recorded_events():
    result = make_result()
    lanes = {lane.lane_id: lane.representative for lane in result.lanes}
    # Representative = median scored time: the 0.5 s GPU run, the 6.0 s all-core run, the only 1-core run.
    assert (lanes["jax-gpu-0"].train_seconds, lanes["tensorflow-cpu-all"].train_seconds) == (0.5, 6.0)
    gpu_end = lanes["jax-gpu-0"].events[-1][0]
    events = lanes["tensorflow-cpu-all"].events
    for at, _, _ in events:
        views = {view.lane_id: view for view in replay_state(result, gpu_end + at, together=False)}
        _, phase, fraction = [event for event in events if event[0] <= at][-1]  # The last of simultaneous events.
        assert (views["tensorflow-cpu-all"].phase, views["tensorflow-cpu-all"].fraction) == (phase, fraction)
        assert views["jax-gpu-0"].status == "done" and views["tensorflow-cpu-1"].status != "done"
    paused = {view.lane_id: view for view in replay_state(result, gpu_end + 12.0 + PAUSE / 2, together=False)}
    assert (paused["tensorflow-cpu-all"].phase, paused["tensorflow-cpu-all"].race_seconds) == (
        "train",
        pytest.approx(6.0),
    )
    halfway = {view.lane_id: view for view in replay_state(result, gpu_end + 6.0 + 3.0, together=False)}
    assert halfway["tensorflow-cpu-all"].phase == "train" and halfway[
        "tensorflow-cpu-all"
    ].race_seconds == pytest.approx(3.0)
    assert halfway["tensorflow-cpu-all"].lane_seconds == pytest.approx(9.0)
    assert halfway["tensorflow-cpu-all"].train_images_per_second == pytest.approx(TINY.train_images * 0.5 / 3.0)
    assert replay_duration(result, together=False) == pytest.approx(12.6 + 13.0 + 21.0 + 31.5 + 4 * (PAUSE + 0.25))


def test_replay_together_fires_one_gun_and_finishes_in_the_finish_order():
    result = make_result()
    gun = 12.0  # The GPU lane's start-up and warm-up take longest: everyone else waits for it.
    at_gun = replay_state(result, gun)
    assert all(view.phase == "train" and view.race_seconds == 0 for view in at_gun)
    assert {view.lane_id: view.status for view in replay_state(result, 1.0)}["tensorflow-cpu-all"] == "waiting"
    # The unscored pause before inference is cut, so each lane crosses the line at the gun + its score.
    assert [view.status for view in replay_state(result, gun + 6.99)] == ["done", "running", "running", "running"]
    assert replay_duration(result) == pytest.approx(gun + 22.5 + 0.25)
    final = replay_state(result, gun + 22.5)
    assert [view.lane_id for view in sorted(final, key=lambda view: view.place)] == result.finish_order
    assert [view.race_seconds for view in final] == pytest.approx([0.6, 7.0, 12.0, 22.5])


def test_live_view_ticks_between_events_and_keeps_finished_lanes():
    result = make_result()
    lanes = (
        replace(result.lanes[0], repeats=result.lanes[0].repeats[:1]),
        replace(result.lanes[1], repeats=()),
        result.lanes[2],
    )
    live = RaceLive(
        TINY,
        lanes,
        1,
        running=1,
        running_since=1000.0,
        events=((0.3, "setup", 0.0), (2.0, "warmup", 0.0), (4.0, "warmup", 1.0), (4.0, "train", 0.0)),
    )
    views = {view.lane_id: view for view in live_state(live, 1006.5)}
    assert views["tensorflow-cpu-all"].status == "running" and views["tensorflow-cpu-all"].phase == "train"
    assert views["tensorflow-cpu-all"].race_seconds == pytest.approx(2.5) and views[
        "tensorflow-cpu-all"
    ].lane_seconds == pytest.approx(6.5)
    assert views["tensorflow-cpu-all"].warmup_seconds == pytest.approx(4.0)
    assert views["jax-gpu-0"].status == "done" and views["jax-gpu-0"].place == 1
    assert views["tensorflow-cpu-1"].status == "done" and views["tensorflow-cpu-1"].place == 2
    assert live.message.startswith("Round 1/1 · TensorFlow · CPU, 2 cores · training")


def test_the_terminal_log_reports_each_run_with_its_own_times():
    from fmnist_core.cli.race_command import LaneBoard

    result = make_result()
    all_cores = result.lanes[1]  # Training took 6.0, 5.0 and 7.0 s in its three runs.
    stream = io.StringIO()  # Not a terminal: one log line per finished run.
    board = LaneBoard(stream)
    for finished in (1, 2, 3):
        board.update(RaceLive(TINY, (replace(all_cores, repeats=all_cores.repeats[:finished]),), 3))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    for line, run, seconds in zip(lines, (1, 2, 3), (6.0, 5.0, 7.0), strict=True):
        assert f"run {run}/3" in line and f"train {TINY.train_images / seconds:,.0f} img/s" in line, line


# The page -------------------------------------------------------------------------------------------------


def race_page() -> AppTest:
    return AppTest.from_file(str(PROJECT_ROOT / "pages" / "race.py"), default_timeout=60).run()


@pytest.fixture
def probed(monkeypatch) -> list[tuple[str, ...]]:
    """A 2-core machine whose backends see no GPU, without starting backend processes.
    Returns the backend tuples anybody asked about: opening the page must ask about none."""
    asked = []

    def fake_machine(backends, *arguments, **options):
        asked.append(tuple(backends))
        return dict(NO_GPU_MACHINE, backends={name: {"version": "test", "gpus": []} for name in backends})

    monkeypatch.setattr("fmnist_core.race.plan.race_machine", fake_machine)
    monkeypatch.setattr("fmnist_core.machine.usable_cores", lambda: 2)
    yield asked


def lane_labels(page: AppTest) -> list[str]:
    return [markdown.value.strip() for markdown in page.markdown if markdown.value.startswith("**")]


def test_race_page_renders_with_a_start_button_and_lanes(cache_dir, probed):
    page = race_page()
    assert not page.exception
    start = next(button for button in page.button if button.label == "Start the race")
    assert not start.disabled
    assert any("one after another" in caption.value for caption in page.caption)
    choice = page.multiselect[0]
    assert choice.label == "Keras backends" and choice.value == ["tensorflow"]
    assert choice.options == [BACKENDS[name].title for name in RACED]  # Installed ones: JAX always (CI installs it).
    assert lane_labels(page) == ["**TensorFlow · CPU, 2 cores**", "**TensorFlow · CPU, 1 core**"]
    assert any("GPU lanes: when the race starts" in caption.value for caption in page.caption)
    assert probed == []  # Opening the page starts no backend process; the race asks when it starts.


def test_race_page_races_the_chosen_backends_and_says_how_to_install_the_others(cache_dir, probed, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        "importlib.util.find_spec", lambda name, *rest: None if name == "torch" else real_find_spec(name, *rest)
    )
    page = race_page()
    assert page.multiselect[0].options == ["TensorFlow", "JAX"]
    assert any("PyTorch is not installed on this machine" in caption.value for caption in page.caption)
    page.multiselect[0].set_value(["jax", "tensorflow"]).run()
    assert not page.exception
    labels = lane_labels(page)
    assert labels[:2] == ["**TensorFlow · CPU, 2 cores**", "**TensorFlow · CPU, 1 core**"]  # Registry order.
    assert "**JAX · CPU, 2 cores**" in labels and len(labels) == 4
    page.multiselect[0].set_value([]).run()
    assert any("Choose at least one backend" in warning.value for warning in page.warning)
    assert next(button for button in page.button if button.label == "Start the race").disabled


def test_race_page_replays_an_uploaded_race_and_explains_a_bad_one(cache_dir, probed):
    page = race_page()
    page.radio[0].set_value("Upload a race file").run()
    page.file_uploader[0].set_value(
        ("race.json", json.dumps(make_result().to_dict()).encode(), "application/json")
    ).run()
    assert not page.exception and not page.error
    assert any("recorded on test-box" in info.value for info in page.info)
    next(button for button in page.button if button.label == "Jump to the finish").click().run()
    assert not page.exception
    assert [header.value for header in page.header] == ["Finish order"]
    assert any("🥇 **JAX · Test GPU**" in markdown.value for markdown in page.markdown)
    page.file_uploader[0].set_value(("old.json", V1_FILE.read_bytes(), "application/json")).run()
    assert not page.exception and not page.error
    assert "**TensorFlow · GPU:0 · Test GPU**" in lane_labels(page)
    page.file_uploader[0].set_value(
        ("other.json", json.dumps(with_value(("schema_version",), 9)).encode(), "application/json")
    ).run()
    assert not page.exception
    assert "schema_version 9" in page.error[0].value


def test_race_page_lists_past_races(cache_dir, probed):
    store_race(make_result())
    page = race_page()
    assert not page.exception
    assert any("test-box" in option for option in page.selectbox[0].options)


def test_race_page_shows_a_running_race_live_and_can_stop_it(cache_dir, probed):
    from fmnist_app.common import job_manager

    live = RaceLive(
        TINY,
        plan_lanes(("tensorflow",), LANE_KINDS, {}, 2),
        1,
        running=1,
        running_since=time.time() - 3,
        events=((0.2, "setup", 0.0), (1.0, "warmup", 0.0), (2.0, "warmup", 1.0), (2.0, "train", 0.0)),
    )
    started = threading.Event()

    def fake_race(context):
        context.report(0.0, live.message, race=live)
        started.set()
        while not context.should_stop():
            time.sleep(0.02)
        raise RaceCancelled("The race was stopped; nothing was saved.")

    manager = job_manager()
    job = manager.start("race", "GPU vs CPU race", fake_race)
    started.wait(10)
    page = race_page()
    assert not page.exception
    assert any(bar.value == 0.0 and "training" in (bar.proto.text or "") for bar in page.get("progress"))
    next(button for button in page.button if button.label == "Stop the race").click().run()
    assert manager.wait(job.job_id, timeout=10).state == CANCELLED
    page.run()
    assert any("nothing was saved" in info.value for info in page.info)
