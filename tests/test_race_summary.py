"""The race summary (fmnist_core.race.summary): the one table the Race page, the Compare page and the report show."""

from __future__ import annotations

import pytest

from fmnist_core.cli.train_command import command_line
from fmnist_core.race import summary as race_summary
from fmnist_core.race.file import LaneResult, RaceResult, RepeatResult, races_dir, store_race
from fmnist_core.race.lane import Workload
from fmnist_core.report.comparison import build_report


def make_race() -> RaceResult:
    """A small finished race: GPU and all-cores CPU lanes ran once each, the one-core lane could not run."""

    def repeat(train_seconds: float, inference_seconds: float) -> RepeatResult:
        inference_start = 1.5 + train_seconds
        events = (
            (0.0, "setup", 0.0),
            (1.0, "warmup", 0.0),
            (1.5, "train", 0.0),
            (inference_start, "inference", 0.0),
            (inference_start + inference_seconds, "done", 1.0),
        )
        return RepeatResult(
            1.0,
            0.5,
            train_seconds,
            25_600 / train_seconds,
            inference_seconds,
            10_000 / inference_seconds,
            events,
            {"threads": 2},
        )

    return RaceResult(
        created="2026-11-25T18:00:00+00:00",
        repeats=1,
        workload=Workload(),
        machine={"hostname": "gpu-box", "cpu_model": "Race CPU", "cpu_cores": 16, "gpus": [{"name": "NVIDIA H100"}]},
        lanes=(
            LaneResult("gpu-0", "GPU 0", "GPU:0", 16, True, None, (repeat(2.0, 0.25),), precision="mixed_bfloat16"),
            LaneResult("cpu-all", "CPU, all cores", "CPU", 16, True, None, (repeat(40.0, 4.0),), precision="float32"),
            LaneResult("cpu-1", "CPU, 1 core", "CPU", 1, False, "not asked for", ()),
        ),
    )


def test_the_summary_table_has_a_row_per_lane_and_phase_that_ran():
    table = race_summary.summary_table(make_race())
    assert list(table.columns) == list(race_summary.SUMMARY_COLUMNS)
    assert list(table["lane"]) == ["GPU 0", "GPU 0", "CPU, all cores", "CPU, all cores"]
    assert list(table["phase"]) == ["Training", "Inference"] * 2
    gpu_training = table.query("lane == 'GPU 0' and phase == 'Training'").iloc[0]
    assert gpu_training["speedup"] == pytest.approx(20.0) and gpu_training["images_per_second"] == 12_800
    assert gpu_training["min_seconds"] == gpu_training["seconds"] == gpu_training["max_seconds"] == 2.0
    assert table.query("lane == 'CPU, all cores'")["speedup"].tolist() == [1.0, 1.0]  # The baseline.


def test_the_workload_and_the_lanes_that_did_not_run_in_words():
    race = make_race()
    assert "100 batches of 256" in race_summary.workload_sentence(race)
    assert race_summary.lanes_not_run(race) == ["CPU, 1 core: did not run (not asked for)"]
    assert race_summary.baseline_label(race) == "CPU, all cores"


def test_the_markdown_table_has_the_pages_columns():
    lines = race_summary.summary_markdown(make_race()).splitlines()
    header = "| Lane | Precision | Phase | Median time | Fastest | Slowest | Images/s | Speed-up vs CPU, all cores |"
    assert lines[0] == header
    assert lines[2] == "| GPU 0 | mixed_bfloat16 | Training | 2.0 s | 2.0 s | 2.0 s | 12,800 | 20.0× |"
    assert lines[4] == "| CPU, all cores | float32 | Training | 40.0 s | 40.0 s | 40.0 s | 640 | 1.0× |"
    assert len(lines) == 2 + 4


def test_races_are_listed_and_summarised_in_the_report(cache_dir):
    store_race(make_race())
    (races_dir() / "broken.json").write_text("{not json", encoding="utf-8")
    races = [stored for stored in race_summary.load_races() if stored.origin == "this machine"]
    assert len(races) == 1  # The unreadable file is left to the race page to explain.
    markdown = build_report({"model1": None, "model2": None, "model3": None}, command_line, races=races).markdown
    assert "NVIDIA H100" in markdown and "20.0×" in markdown and "12,800" in markdown
    assert race_summary.summary_markdown(races[0].result) in markdown
    assert "- CPU, 1 core: did not run (not asked for)" in markdown
