"""The race by machine: each lane in the precision its device computes fastest, recorded and shown; a recording
speaks of the recording machine; lane cards and the summary table show the same figures."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from streamlit.testing.v1 import AppTest

from fmnist_core import machine
from fmnist_core.paths import PROJECT_ROOT
from fmnist_core.race import summary as race_summary
from fmnist_core.race.file import LaneResult, RaceResult, load_race, parse_race
from fmnist_core.race.lane import LANE_KINDS, Workload
from fmnist_core.race.plan import no_gpu_reason, plan_lanes
from fmnist_core.race.runner import replay_duration, replay_ready, replay_state
from tests.race_support import NO_GPU_MACHINE, TINY, make_repeat, make_result

SHIPPED = PROJECT_ROOT / "recorded_races" / "2026-11-30-cpu-2-cores-tensorflow-jax-torch.json"  # Recorded in version 2.


@pytest.fixture
def this_machine(monkeypatch):
    """Make this machine's CPU compute bfloat16 natively or not, with or without an NVIDIA GPU."""

    def make(native: bool, gpu: bool) -> None:
        monkeypatch.setattr(machine, "native_bfloat16_flags", lambda: ("amx_bf16",) if native else ())
        monkeypatch.setattr(machine, "nvidia_gpu_present", lambda: gpu)
        machine.bfloat16_is_fast.cache_clear()

    yield make
    machine.bfloat16_is_fast.cache_clear()


def planned(precision: str | None = None) -> dict[str, str]:
    """Lane id → the precision planned for it, on every backend with one GPU each."""
    backends = ("tensorflow", "jax", "torch")
    gpus = {name: [{"id": "GPU:0", "name": "Test GPU"}] for name in backends}
    lanes = plan_lanes(backends, LANE_KINDS, gpus, 4, Workload(precision=precision))
    return {lane.lane_id: lane.precision for lane in lanes}


def test_without_native_bfloat16_every_cpu_lane_runs_float32_and_gpus_bfloat16(this_machine):
    this_machine(native=False, gpu=True)  # A GPU machine whose CPU lacks bfloat16: its CPU lanes still run float32.
    assert planned() == {
        **{f"{name}-gpu-0": "mixed_bfloat16" for name in ("tensorflow", "jax", "torch")},
        **{f"{name}-{kind}": "float32" for name in ("tensorflow", "jax", "torch") for kind in ("cpu-all", "cpu-1")},
    }


def test_with_native_bfloat16_only_the_backends_that_gain_from_it_run_it_on_the_cpu(this_machine):
    this_machine(native=True, gpu=False)
    precisions = planned()
    assert precisions["tensorflow-cpu-all"] == precisions["tensorflow-cpu-1"] == "mixed_bfloat16"
    assert {precisions[f"{name}-{kind}"] for name in ("jax", "torch") for kind in ("cpu-all", "cpu-1")} == {"float32"}


def test_a_chosen_precision_runs_on_every_lane(this_machine):
    this_machine(native=False, gpu=False)
    assert set(planned("mixed_bfloat16").values()) == {"mixed_bfloat16"}
    assert Workload(precision="float32").precision_text == "float32 on every lane"


def test_an_old_race_file_loads_with_its_one_precision_on_every_lane_that_ran():
    values = json.loads(SHIPPED.read_text())
    assert values["schema_version"] == 2 and "precision" not in values["lanes"][0]
    result = load_race(SHIPPED)
    ran = {lane.precision for lane in result.lanes if lane.repeats}
    assert ran == {"mixed_bfloat16"} and all(lane.precision is None for lane in result.lanes if not lane.repeats)
    assert "mixed_bfloat16 on every lane" in race_summary.workload_sentence(result)
    assert set(race_summary.summary_table(result)["precision"]) == {"mixed_bfloat16"}
    assert parse_race(json.dumps(result.to_dict())) == result  # Saved again: version 3, the same precisions.


def test_lane_cards_and_the_summary_table_show_the_same_images_per_second():
    # Three runs whose median-scored run is not the median of each phase: (train, inference) = (1, 3), (2, 1),
    # (3, 2) score 4, 3 and 5 s, so the replay shows the (1, 3) run while the medians are 2 s and 2 s.
    lane = LaneResult(
        "tensorflow-cpu-all",
        "TensorFlow · CPU, 2 cores",
        "CPU",
        2,
        True,
        None,
        tuple(make_repeat(1.0, 1.0, train, inference) for train, inference in ((1.0, 3.0), (2.0, 1.0), (3.0, 2.0))),
        kind="cpu-all",
        precision="float32",
    )
    result = RaceResult("2026-01-02T03:04:05+00:00", NO_GPU_MACHINE, TINY, 3, (lane,))
    assert lane.representative.inference_seconds == 3.0
    (card,) = replay_state(result, replay_duration(result))
    table = race_summary.summary_table(result).set_index("phase")
    assert card.train_images_per_second == table.loc["Training", "images_per_second"] == TINY.train_images / 2.0
    assert card.inference_images_per_second == table.loc["Inference", "images_per_second"]
    assert card.inference_images_per_second == TINY.inference_images / 2.0
    assert card.precision == table.loc["Training", "precision"] == "float32"


def test_before_a_replay_is_played_no_lane_has_run_and_missing_lanes_speak_of_the_recording_machine():
    gpu = LaneResult("jax-gpu", "JAX · GPU", "GPU", 2, False, no_gpu_reason("jax"), backend="jax", kind="gpu")
    result = replace(make_result(), lanes=(gpu, *make_result().lanes[1:]))
    ready = replay_ready(result)
    assert [view.status for view in ready] == ["unavailable", "waiting", "waiting", "waiting"]
    assert all(view.phase == "" and view.repeat == 0 and view.race_seconds == 0 for view in ready)
    assert ready[0].note == "no GPU on the recording machine"
    assert all(view.repeat == 0 for view in replay_state(result, 1.0))  # A replay shows one run, not "run 3 of 3".
    assert race_summary.lanes_not_run(result) == ["JAX · GPU: did not run (no GPU on the recording machine)"]


def test_the_race_page_shows_each_lanes_precision_and_a_missing_gpu_in_one_line(cache_dir, monkeypatch):
    monkeypatch.setattr("fmnist_core.machine.usable_cores", lambda: 2)
    page = AppTest.from_file(str(PROJECT_ROOT / "pages" / "race.py"), default_timeout=60).run()
    page.radio[0].set_value("Upload a race file").run()
    page.file_uploader[0].set_value(("race.json", SHIPPED.read_bytes(), "application/json")).run()
    assert not page.exception and not page.error
    assert not page.warning  # A lane the recording machine lacked is one line, not a warning box.
    captions = [caption.value for caption in page.caption]
    assert captions.count("🚫 no GPU on the recording machine") == 3
    assert not any("this machine" in caption for caption in captions)
    assert captions.count("mixed_bfloat16") == 6  # One per lane that ran.
    assert not any("run 3 of 3" in caption or "starting" in caption for caption in captions)
    assert any("mixed_bfloat16 on every lane" in info.value for info in page.info)
    next(button for button in page.button if button.label == "Jump to the finish").click().run()
    assert not page.exception
    (chart,) = page.get("vega_lite_chart")
    assert '"labelLimit": 0' in chart.proto.spec  # Whole lane names on the chart's axis, never cut alike.
    assert "Precision" in page.dataframe[0].proto.columns or "precision" in page.dataframe[0].value.columns
