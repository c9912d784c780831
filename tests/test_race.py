"""Tests for the GPU-vs-CPU race: real lane processes on a tiny workload, the race file, replay, the page.

Only two tests start TensorFlow lane processes (the CLI race and the cancelled job); everything else uses
hand-made results, which are test fixtures only and never written to recorded_races/.
"""

from __future__ import annotations

import contextlib
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

from fmnist_core.cli import main
from fmnist_core.errors import ConfigError
from fmnist_core.jobs import CANCELLED, JobManager
from fmnist_core.race import (
    LANE_KINDS,
    NO_GPU_REASON,
    RaceLive,
    RaceOptions,
    live_state,
    plan_lanes,
    replay_duration,
    replay_state,
    run_race,
    start_race_job,
)
from fmnist_core.race_file import (
    MAX_RACE_FILE_BYTES,
    LaneResult,
    RaceFileError,
    RaceResult,
    RepeatResult,
    list_races,
    load_race,
    parse_race,
    races_dir,
    store_race,
)
from fmnist_core.race_lane import TINY_WORKLOAD, LaneError, RaceCancelled, Workload

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TINY = replace(TINY_WORKLOAD, synthetic=True)
NO_GPU_MACHINE = {
    "hostname": "test-box",
    "cpu_model": "Test CPU",
    "cpu_cores": 2,
    "gpus": [],
    "nvidia_smi": [],
    "versions": {"tensorflow": "test", "keras": "test"},
}


PAUSE = 0.5  # Unscored: TensorFlow tearing down the training input pipeline before inference starts.


def make_repeat(setup: float, warmup: float, train: float, inference: float) -> RepeatResult:
    """A hand-made repeat whose events follow the lane protocol: setup, warm-up, the gun, train, inference."""
    gun = setup + warmup
    inference_start = gun + train + PAUSE
    end = inference_start + inference
    events = (
        (0.2, "setup", 0.0),
        (setup, "warmup", 0.0),
        (gun, "warmup", 1.0),
        (gun, "train", 0.0),
        (gun + train / 2, "train", 0.5),
        (gun + train, "train", 1.0),
        (inference_start, "inference", 0.0),
        (end, "inference", 1.0),
        (end + 0.25, "done", 1.0),
    )
    return RepeatResult(
        setup,
        warmup,
        train,
        TINY.train_images / train,
        inference,
        TINY.inference_images / inference,
        events,
        {"intra_op_threads": 1, "inter_op_threads": 1, "cpu_cores": 1, "device": "CPU:0"},
    )


def make_result() -> RaceResult:
    """Three lanes: a fast 'GPU' with a slow start-up, all cores, one core (two of them repeated 3 times)."""
    lanes = (
        LaneResult(
            "gpu-0",
            "GPU:0 · Test GPU",
            "GPU:0",
            2,
            True,
            None,
            (make_repeat(9.0, 3.0, 0.5, 0.1), make_repeat(8.0, 3.0, 0.4, 0.1), make_repeat(9.5, 3.0, 0.6, 0.1)),
        ),
        LaneResult(
            "cpu-all",
            "CPU, all cores (2)",
            "CPU",
            2,
            True,
            None,
            (make_repeat(4.0, 2.0, 6.0, 1.0), make_repeat(4.0, 2.0, 5.0, 1.0), make_repeat(4.0, 2.0, 7.0, 1.0)),
        ),
        LaneResult("cpu-1", "CPU, 1 core", "CPU", 1, True, None, (make_repeat(5.0, 4.0, 10.0, 2.0),)),
    )
    machine = dict(NO_GPU_MACHINE, gpus=[{"id": "GPU:0", "name": "Test GPU"}])
    return RaceResult("2026-01-02T03:04:05+00:00", machine, TINY, 3, lanes)


def lane_processes() -> list[int]:
    """Pids of this process's children that run a race lane."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat, command = (entry / "stat").read_text(), (entry / "cmdline").read_bytes()
        except (OSError, NotADirectoryError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() and b"race-lane" in command:
            found.append(int(entry.name))
    return found


# Real lane processes --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_race(tmp_path_factory):
    """`race --tiny --synthetic --lanes gpu,cpu-1 --out …` run once: (exit code, output file, cache folder, stdout)."""
    folder = tmp_path_factory.mktemp("race")
    output = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(output):
        patch.setenv("FMNIST_CACHE_DIR", str(folder / "cache"))
        code = main(
            [
                "race",
                "--tiny",
                "--synthetic",
                "--repeats",
                "1",
                "--lanes",
                "gpu,cpu-1",
                "--out",
                str(folder / "race.json"),
            ]
        )
    return code, folder / "race.json", folder / "cache", output.getvalue()


@pytest.mark.slow
def test_cli_race_runs_real_lane_processes_and_writes_a_valid_file(cli_race):
    code, path, cache, printed = cli_race
    assert code == 0
    result = load_race(path)
    assert json.loads(path.read_text())["schema_version"] == 1
    stored = sorted((cache / "races").glob("*.json"))
    assert len(stored) == 1 and load_race(stored[0]) == result
    lanes = {lane.lane_id: lane for lane in result.lanes}
    one_core = lanes["cpu-1"]
    (repeat,) = one_core.repeats
    # The lane reports the limits it really ran under, read back from TensorFlow and the OS.
    assert repeat.runtime["intra_op_threads"] == 1 and repeat.runtime["inter_op_threads"] == 1
    assert repeat.runtime["cpu_cores"] == 1
    assert repeat.runtime["device"] == "CPU:0" and repeat.runtime["visible_gpus"] == 0
    assert repeat.runtime["pid"] != os.getpid()
    times = [event[0] for event in repeat.events]
    assert times == sorted(times) and [event[1] for event in repeat.events][-1] == "done"
    assert min(repeat.setup_seconds, repeat.warmup_seconds, repeat.train_seconds, repeat.inference_seconds) > 0
    # Both figures are rounded in the file and a tiny race trains for ~0.15 s, so allow 0.5%.
    assert repeat.train_images_per_second == pytest.approx(TINY.train_images / repeat.train_seconds, rel=5e-3)
    assert result.workload == TINY and result.machine["versions"]["tensorflow"]
    if not result.machine["gpus"]:
        assert not lanes["gpu"].available and lanes["gpu"].unavailable_reason == NO_GPU_REASON
        assert result.finish_order == ["cpu-1"]
    assert "CPU, 1 core" in printed and "Wrote" in printed


@pytest.mark.slow
def test_race_list_shows_the_stored_race(cli_race, monkeypatch, capsys):
    _, _, cache, _ = cli_race
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(cache))
    assert main(["race", "--list"]) == 0
    assert "cpu-1" in capsys.readouterr().out


@pytest.mark.slow  # Starts a lane process, then ends it.
def test_stopping_before_the_lane_reports_ends_its_process(cache_dir):
    with pytest.raises(RaceCancelled):
        run_race(RaceOptions(TINY, ("cpu-all",), 1), should_stop=lambda: True)
    assert lane_processes() == []


@pytest.mark.slow
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


def test_without_a_gpu_the_gpu_lane_is_unavailable_with_the_reason():
    lanes = {lane.lane_id: lane for lane in plan_lanes(LANE_KINDS, [], 4)}
    assert not lanes["gpu"].available and "TensorFlow sees no GPU" in lanes["gpu"].unavailable_reason
    assert (lanes["cpu-all"].threads, lanes["cpu-1"].threads) == (4, 1)
    with_gpu = plan_lanes(("gpu",), [{"id": "GPU:0", "name": "Test GPU"}], 4)
    assert [(lane.lane_id, lane.device, lane.available) for lane in with_gpu] == [("gpu-0", "GPU:0", True)]


def test_a_race_with_only_an_unavailable_lane_says_so(cache_dir, monkeypatch, capsys):
    monkeypatch.setattr("fmnist_core.race.race_machine", lambda: NO_GPU_MACHINE)
    with pytest.raises(LaneError, match="No lane can run"):
        run_race(RaceOptions(TINY, ("gpu",), 1))
    assert main(["race", "--tiny", "--synthetic", "--lanes", "gpu"]) == 1
    assert "TensorFlow sees no GPU" in capsys.readouterr().err


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
    "arguments", [["--lanes", "tpu"], ["--lanes", "cpu-1,cpu-1"], ["--repeats", "0"], ["--train-batches", "0"]]
)
def test_the_cli_refuses_bad_settings_with_exit_code_2(arguments, capsys):
    assert main(["race", "--tiny", "--synthetic", *arguments]) == 2
    assert capsys.readouterr().err.startswith("error:")


# The race file --------------------------------------------------------------------------------------------


def test_race_file_round_trip_keeps_everything_and_derives_the_rest():
    result = make_result()
    written = result.to_dict()
    assert parse_race(json.dumps(written)) == result
    assert written["finish_order"] == ["gpu-0", "cpu-all", "cpu-1"] == result.finish_order
    assert written["speedups"]["baseline"] == "cpu-all"
    assert written["speedups"]["train"]["gpu-0"] == pytest.approx(6.0 / 0.5)
    assert written["lanes"][1]["median"]["train_seconds"] == 6.0
    assert written["lanes"][1]["spread"]["train_seconds"] == {"min": 5.0, "max": 7.0}
    assert result.recorded_label == "recorded on test-box (Test GPU, Test CPU, 2 cores), 2026-01-02 03:04"


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
        (json.dumps(with_value(("schema_version",), 2)), "schema_version 2"),
        (json.dumps(with_value(("schema_version",), "1")), "`schema_version` should be a whole number"),
        (json.dumps(without(("lanes", 0, "repeats", 0, "train_seconds"))), "`lanes[0].repeats[0].train_seconds`"),
        (json.dumps(without(("workload", "spec", "first_filters"))), "`workload.spec.first_filters`"),
        (json.dumps(without(("machine",))), "`machine`"),
        (json.dumps(with_value(("lanes", 1, "repeats", 0, "train_seconds"), "fast")), "should be a number"),
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
    assert (lanes["gpu-0"].train_seconds, lanes["cpu-all"].train_seconds) == (0.5, 6.0)
    gpu_end = lanes["gpu-0"].events[-1][0]
    events = lanes["cpu-all"].events
    for at, _, _ in events:
        views = {view.lane_id: view for view in replay_state(result, gpu_end + at, together=False)}
        _, phase, fraction = [event for event in events if event[0] <= at][-1]  # The last of simultaneous events.
        assert (views["cpu-all"].phase, views["cpu-all"].fraction) == (phase, fraction)
        assert views["gpu-0"].status == "done" and views["cpu-1"].status != "done"
    paused = {view.lane_id: view for view in replay_state(result, gpu_end + 12.0 + PAUSE / 2, together=False)}
    assert (paused["cpu-all"].phase, paused["cpu-all"].race_seconds) == ("train", pytest.approx(6.0))
    halfway = {view.lane_id: view for view in replay_state(result, gpu_end + 6.0 + 3.0, together=False)}
    assert halfway["cpu-all"].phase == "train" and halfway["cpu-all"].race_seconds == pytest.approx(3.0)
    assert halfway["cpu-all"].lane_seconds == pytest.approx(9.0)
    assert halfway["cpu-all"].train_images_per_second == pytest.approx(TINY.train_images * 0.5 / 3.0)
    assert replay_duration(result, together=False) == pytest.approx(12.6 + 13.0 + 21.0 + 3 * (PAUSE + 0.25))


def test_replay_together_fires_one_gun_and_finishes_in_the_finish_order():
    result = make_result()
    gun = 12.0  # The GPU lane's start-up and warm-up take longest: everyone else waits for it.
    at_gun = replay_state(result, gun)
    assert all(view.phase == "train" and view.race_seconds == 0 for view in at_gun)
    assert {view.lane_id: view.status for view in replay_state(result, 1.0)}["cpu-all"] == "waiting"
    # The unscored pause before inference is cut, so each lane crosses the line at the gun + its score.
    assert [view.status for view in replay_state(result, gun + 6.99)] == ["done", "running", "running"]
    assert replay_duration(result) == pytest.approx(gun + 12.0 + 0.25)
    final = replay_state(result, gun + 12.0)
    assert [view.lane_id for view in sorted(final, key=lambda view: view.place)] == result.finish_order
    assert [view.race_seconds for view in final] == pytest.approx([0.6, 7.0, 12.0])


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
    assert views["cpu-all"].status == "running" and views["cpu-all"].phase == "train"
    assert views["cpu-all"].race_seconds == pytest.approx(2.5) and views["cpu-all"].lane_seconds == pytest.approx(6.5)
    assert views["cpu-all"].warmup_seconds == pytest.approx(4.0)
    assert views["gpu-0"].status == "done" and views["gpu-0"].place == 1
    assert views["cpu-1"].status == "done" and views["cpu-1"].place == 2
    assert live.message.startswith("Round 1/1 · CPU, all cores (2) · training")


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


def test_race_page_renders_with_a_start_button_and_lanes(cache_dir):
    page = race_page()
    assert not page.exception
    start = next(button for button in page.button if button.label == "Start the race")
    assert not start.disabled
    assert any("one after another" in caption.value for caption in page.caption)
    labels = [markdown.value for markdown in page.markdown]
    assert any("CPU, 1 core" in label for label in labels)


def test_race_page_replays_an_uploaded_race_and_explains_a_bad_one(cache_dir):
    page = race_page()
    page.radio[0].set_value("Upload a race file").run()
    page.file_uploader[0].set_value(
        ("race.json", json.dumps(make_result().to_dict()).encode(), "application/json")
    ).run()
    assert not page.exception and not page.error
    assert any("recorded on test-box" in info.value for info in page.info)
    next(button for button in page.button if button.label == "Jump to the finish").click().run()
    assert not page.exception
    assert [header.value for header in page.subheader] == ["Finish order"]
    page.file_uploader[0].set_value(
        ("other.json", json.dumps(with_value(("schema_version",), 9)).encode(), "application/json")
    ).run()
    assert not page.exception
    assert "schema_version 9" in page.error[0].value


def test_race_page_lists_past_races(cache_dir):
    store_race(make_result())
    page = race_page()
    assert not page.exception
    assert any("test-box" in option for option in page.selectbox[0].options)


def test_race_page_shows_a_running_race_live_and_can_stop_it(cache_dir):
    from pages.common import job_manager

    live = RaceLive(
        TINY,
        plan_lanes(LANE_KINDS, [], 2),
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
