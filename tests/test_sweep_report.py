"""A sweep read for people: which sweep goes with a comparison, its tables, and the report's Seeds section."""

from __future__ import annotations

import json

import pytest

from fmnist_core.cli import main
from fmnist_core.cli.train_command import command_line
from fmnist_core.config import PRESETS
from fmnist_core.report import comparison as report
from fmnist_core.sweep import report as sweep_report
from fmnist_core.sweep.result import save_sweep
from tests.sweep_support import SYNTHETIC_ACCURACIES, SYNTHETIC_SEEDS, synthetic_sweep
from tests.test_report import make_entry

QUICK, FULL = PRESETS["quick"], PRESETS["full"]


def test_pick_sweep_prefers_the_settings_of_the_compared_models():
    newest_full = synthetic_sweep(FULL, "full", created="2026-11-30T12:00:00")
    older_quick = synthetic_sweep(QUICK, "quick", created="2026-11-30T10:00:00")
    sweeps = [newest_full, older_quick]
    assert sweep_report.pick_sweep(sweeps, [QUICK.replace(seed=7)]) is older_quick  # Any seed matches.
    assert sweep_report.pick_sweep(sweeps, [QUICK.replace(epochs=9)]) is newest_full  # None match: the newest.
    assert sweep_report.pick_sweep(sweeps, [None]) is newest_full
    assert sweep_report.pick_sweep([], [QUICK]) is None


def test_describe_names_preset_models_seeds_and_time():
    from dataclasses import replace

    assert sweep_report.describe(synthetic_sweep()) == (
        "quick preset · Model 1, Model 2, Model 3 × 3 seeds (42–44) · 2026-11-30 10:00"
    )
    assert sweep_report.describe(replace(synthetic_sweep(), recorded=True)).endswith("10:00 · shipped with the app")


def test_tables_hold_the_sweeps_own_figures():
    sweep = synthetic_sweep()
    runs = sweep_report.runs_table(sweep)
    accuracy = runs[runs.measure == sweep_report.MEASURES["test_accuracy"]]
    assert sorted(accuracy.loc[accuracy.model == "Model 3", "value"]) == pytest.approx(
        sorted(100 * value for value in SYNTHETIC_ACCURACIES["model3"])
    )
    assert len(runs) == 3 * len(SYNTHETIC_SEEDS) * len(sweep_report.MEASURES)
    summaries = sweep_report.summary_table(sweep).set_index(["model", "measure"])
    model3 = summaries.loc[("Model 3", sweep_report.MEASURES["test_accuracy"])]
    summary = sweep.summary_of("model3").test_accuracy
    assert (model3["mean"], model3["low"], model3["high"]) == pytest.approx((summary.mean, summary.low, summary.high))
    assert model3["seeds"] == 3


def test_markdown_section_has_intervals_and_verdicts():
    sweep = synthetic_sweep()
    text = sweep_report.markdown_section(sweep, QUICK)
    model1 = sweep.summary_of("model1").test_accuracy
    assert f"| Model 1 | 64 | {model1.mean:.2f} % ± {model1.half_width:.2f} ({model1.standard_deviation:.2f}) |" in text
    for comparison in sweep.comparisons:
        assert f"- {comparison.verdict}" in text
    assert "other settings" not in text
    assert "other settings than the models in the table" in sweep_report.markdown_section(sweep, FULL)
    assert "One seed" in sweep_report.markdown_section(None)


def test_interval_text_with_and_without_an_interval():
    assert sweep_report.interval_text(86.4123, 86.3, 86.5, unit=" %") == "86.41 % ± 0.10"
    assert sweep_report.interval_text(2378.4, None, None, digits=0) == "2,378 (one seed)"


def test_report_says_one_seed_without_a_sweep_and_quotes_the_sweep_with_one():
    chosen = {"model1": make_entry("model1", 1), "model2": None, "model3": make_entry("model3", 3)}
    alone = report.build_report(chosen, command_line, generated="now").markdown
    assert "## Seeds: is the difference real?" in alone and "One seed: each model here was trained once" in alone
    sweep = synthetic_sweep()
    with_sweep = report.build_report(chosen, command_line, generated="now", sweep=sweep).markdown
    assert "One seed: each model here" not in with_sweep
    assert sweep.comparisons[1].verdict in with_sweep


def test_cli_report_uses_the_saved_sweep(trained_cache, tmp_path, capsys):
    sweep = synthetic_sweep()
    save_sweep(sweep, trained_cache)
    (trained_cache / "sweeps" / "damaged.json").write_text(json.dumps({"format": 99}))
    assert main(["report", "--no-latency", "--out", str(tmp_path / "report.md")]) == 0
    markdown = (tmp_path / "report.md").read_text()
    assert all(comparison.verdict in markdown for comparison in sweep.comparisons)
    # The trained model used other settings than the sweep, and the report says so.
    assert "other settings than the models in the table" in markdown
    assert "damaged.json is not a sweep result" in capsys.readouterr().err
