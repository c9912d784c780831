"""Sweep statistics against values worked out by hand, and the sweep's JSON record."""

from __future__ import annotations

import json
import math

import pytest

from fmnist_core.config import PRESETS, TrainConfig
from fmnist_core.models.registry import MODEL_SPECS
from fmnist_core.statistics import PairedDifference, Summary, paired_difference, summarize, t_quantile
from fmnist_core.sweep.result import (
    load_sweeps,
    save_sweep,
    summarize_runs,
    sweep_id,
    sweep_path,
)
from tests.sweep_support import synthetic_runs, synthetic_sweep

# Two-sided 95 % Student-t critical values from a printed table (degrees of freedom → t).
T_TABLE = {1: 12.706, 2: 4.303, 4: 2.776, 9: 2.262, 29: 2.045}


@pytest.mark.parametrize("degrees, expected", T_TABLE.items())
def test_t_quantile_matches_the_printed_table(degrees, expected):
    assert t_quantile(degrees) == pytest.approx(expected, abs=5e-4)


def test_summary_of_five_values_by_hand():
    # Mean 3; squared deviations 4+1+0+1+4 = 10, / 4 = 2.5, sd = √2.5 = 1.5811; half width 2.776 × 1.5811 / √5.
    summary = summarize([1.0, 2.0, 3.0, 4.0, 5.0])
    assert summary.count == 5
    assert summary.mean == pytest.approx(3.0)
    assert summary.standard_deviation == pytest.approx(1.58114, abs=1e-5)
    assert summary.half_width == pytest.approx(2.776 * 1.58114 / math.sqrt(5), abs=1e-3)
    assert (summary.low, summary.high) == pytest.approx((3 - 1.9632, 3 + 1.9632), abs=1e-3)


def test_summary_of_two_values_uses_one_degree_of_freedom():
    # 86 and 87: sd = √0.5 = 0.7071, half width = 12.706 × 0.7071 / √2 = 6.353: two seeds say little.
    summary = summarize([86.0, 87.0])
    assert summary.mean == pytest.approx(86.5)
    assert summary.half_width == pytest.approx(6.353, abs=1e-3)


def test_one_value_has_no_spread_and_no_interval():
    summary = summarize([86.29])
    assert (summary.count, summary.mean, summary.standard_deviation, summary.half_width) == (1, 86.29, None, None)
    assert summary.low is None and summary.high is None
    with pytest.raises(ValueError):
        summarize([])


def test_paired_difference_by_hand_uses_shared_seeds_only():
    baseline = {1: 86.0, 2: 86.5, 3: 87.0}
    other = {1: 86.4, 2: 86.8, 3: 87.5, 4: 99.0}  # Seed 4 has no partner: left out.
    difference = paired_difference("Model 1", baseline, "Model 3", other)
    # Differences 0.4, 0.3, 0.5: mean 0.4, sd 0.1, half width 4.303 × 0.1 / √3 = 0.2484.
    assert difference.seeds == (1, 2, 3)
    assert difference.differences == pytest.approx((0.4, 0.3, 0.5))
    assert difference.summary.mean == pytest.approx(0.4)
    assert difference.summary.standard_deviation == pytest.approx(0.1)
    assert difference.summary.half_width == pytest.approx(0.2484, abs=1e-4)
    assert difference.agreeing_seeds == 3
    assert difference.distinguishable
    assert difference.verdict == "Model 3 is better than Model 1 by 0.40 ± 0.25 points (3 of 3 seeds agree)."


def test_pairing_is_narrower_than_the_separate_intervals():
    # Both models vary a lot from seed to seed, but Model 3 is ahead by about 0.3 on every seed.
    baseline = {1: 85.0, 2: 86.0, 3: 87.0, 4: 86.5, 5: 85.5}
    other = {seed: value + 0.3 + 0.05 * (seed % 2) for seed, value in baseline.items()}
    difference = paired_difference("Model 1", baseline, "Model 3", other)
    assert difference.distinguishable
    assert difference.summary.half_width < summarize(list(baseline.values())).half_width / 10


def test_not_distinguishable_verdict_and_sign_agreement():
    # Differences +0.3, −0.2, +0.1: mean +0.0667, sd 0.2517, half width 4.303 × 0.2517 / √3 = 0.625.
    difference = paired_difference("Model 1", {1: 86.0, 2: 86.0, 3: 86.0}, "Model 2", {1: 86.3, 2: 85.8, 3: 86.1})
    assert difference.summary.half_width == pytest.approx(0.625, abs=1e-3)
    assert difference.agreeing_seeds == 2
    assert not difference.distinguishable
    assert difference.verdict == (
        "Model 1 and Model 2 are not distinguishable with 3 seeds "
        "(Model 2 − Model 1 = +0.07 ± 0.63 points; 2 of 3 seeds agree on the sign)."
    )


def test_a_worse_second_model_names_the_first_as_better():
    difference = paired_difference("Model 1", {1: 87.0, 2: 87.2}, "Model 3", {1: 86.0, 2: 86.2})
    assert difference.summary.mean == pytest.approx(-1.0)
    assert difference.summary.half_width == pytest.approx(0.0, abs=1e-9)
    assert difference.verdict.startswith("Model 1 is better than Model 3 by 1.00 ± 0.00 points (2 of 2 seeds agree)")


def test_one_shared_seed_cannot_tell_and_no_shared_seed_is_none():
    one = paired_difference("Model 1", {1: 86.0}, "Model 2", {1: 86.3})
    assert not one.distinguishable
    assert "one seed cannot tell" in one.verdict
    assert paired_difference("Model 1", {1: 86.0}, "Model 2", {2: 86.3}) is None


def test_statistics_survive_a_json_round_trip():
    difference = paired_difference("Model 1", {1: 86.0, 2: 86.5}, "Model 2", {1: 86.2, 2: 86.9})
    assert PairedDifference.from_dict(json.loads(json.dumps(difference.to_dict()))) == difference
    summary = summarize([1.0, 2.5, 4.0])
    assert Summary.from_dict(json.loads(json.dumps(summary.to_dict()))) == summary


SPECS = tuple(MODEL_SPECS.values())


def test_summarize_runs_in_points_and_every_pair():
    models, comparisons = summarize_runs(SPECS, synthetic_runs())
    assert [summary.model for summary in models] == ["model1", "model2", "model3"]
    assert models[0].test_accuracy.mean == pytest.approx(86.20)
    assert models[2].test_accuracy.mean == pytest.approx((86.30 + 86.80 + 86.50) / 3)
    assert models[0].training_seconds.mean == pytest.approx(21.0)
    assert models[0].images_per_second.mean == pytest.approx(1999.0)
    assert [(c.baseline, c.other) for c in comparisons] == [
        ("Model 1", "Model 2"),
        ("Model 1", "Model 3"),
        ("Model 2", "Model 3"),
    ]
    # Model 3 − Model 1 per seed: 0.30, 0.40, 0.30 points.
    assert comparisons[1].differences == pytest.approx((0.30, 0.40, 0.30))
    assert comparisons[1].summary.mean == pytest.approx(1 / 3)


def test_sweep_id_names_the_request_whatever_the_first_seed():
    config = TrainConfig()
    identifier = sweep_id("quick", SPECS, config, (42, 43, 44))
    assert identifier.startswith("quick-")
    assert identifier == sweep_id("quick", SPECS, config.replace(seed=7), (42, 43, 44))
    assert identifier != sweep_id("quick", SPECS, config, (42, 43))
    assert identifier != sweep_id("quick", SPECS, config.replace(epochs=4), (42, 43, 44))


def test_sweep_json_is_kept_in_the_cache_and_read_back(tmp_path):
    result = synthetic_sweep()
    kept = save_sweep(result, tmp_path, also_to=tmp_path / "copy.json")
    assert kept == sweep_path(tmp_path, result.sweep_id) and kept.is_file()
    assert json.loads((tmp_path / "copy.json").read_text()) == json.loads(kept.read_text())
    (kept.parent / "broken.json").write_text("{not json")
    sweeps, problems = load_sweeps(tmp_path)
    assert sweeps == [result]
    assert len(problems) == 1 and "broken.json is not a sweep result" in problems[0]
    assert load_sweeps(tmp_path / "nowhere") == ([], [])


def test_an_unwritable_out_file_is_a_clear_error_and_the_cache_copy_is_kept(tmp_path):
    from fmnist_core.errors import ConfigError

    result = synthetic_sweep()
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ConfigError, match="Cannot write .*the sweep is saved in"):
        save_sweep(result, tmp_path, also_to=tmp_path / "a-file" / "sweep.json")
    assert load_sweeps(tmp_path) == ([result], [])


def test_sweeps_shipped_with_the_app_come_after_the_users_own_and_say_so(tmp_path):
    from dataclasses import replace

    own = synthetic_sweep(created="2026-11-30T09:00:00")
    shipped_folder = tmp_path / "recorded_sweeps"
    shipped_folder.mkdir()
    shipped_same = replace(own, created="2026-11-01T09:00:00")  # Same request: the user's own copy wins.
    shipped_other = synthetic_sweep(PRESETS["full"], "full", created="2026-12-01T09:00:00")
    for result in (shipped_same, shipped_other):
        (shipped_folder / f"{result.sweep_id}.json").write_text(json.dumps(result.to_dict()))
    (shipped_folder / "damaged.json").write_text('{"format": 1}')
    save_sweep(own, tmp_path / "cache")

    sweeps, problems = load_sweeps(tmp_path / "cache", shipped_folder)

    assert [(sweep.sweep_id, sweep.created, sweep.recorded) for sweep in sweeps] == [
        (own.sweep_id, own.created, False),
        (shipped_other.sweep_id, shipped_other.created, True),
    ]
    assert len(problems) == 1 and "damaged.json is not a sweep result" in problems[0]
    assert "recorded" not in json.loads(json.dumps(sweeps[1].to_dict()))  # Where it was read from is not saved.
    assert load_sweeps(tmp_path / "empty-cache", shipped_folder / "missing") == ([], [])


def test_an_interval_excludes_zero_only_when_it_exists_and_zero_lies_outside_it():
    assert Summary(3, 0.5, 0.2, 0.4).excludes_zero  # 0.1 … 0.9
    assert Summary(3, -0.5, 0.2, 0.4).excludes_zero  # −0.9 … −0.1
    assert not Summary(3, 0.5, 0.4, 0.5).excludes_zero  # 0 … 1.0: 0 is on the edge, inside
    assert not Summary(3, 0.1, 0.4, 0.9).excludes_zero  # −0.8 … 1.0
    assert not Summary(1, 0.5, None, None).excludes_zero  # One value: no interval at all.
