"""The Compare page's Seeds section, headless (AppTest): error bars and verdicts from a saved sweep, or "one seed"."""

from __future__ import annotations

import pytest

from fmnist_core.sweep.report import MEASURES
from fmnist_core.sweep.result import save_sweep
from tests.sweep_support import synthetic_sweep
from tests.test_app_evaluate_compare import chart_tables, run_page

pytestmark = pytest.mark.realdata  # The page times predictions on a real test image.


def report_preview(app) -> str:
    return next(block.value for block in app.markdown if block.value.startswith("# Fashion-MNIST"))


def test_without_a_sweep_the_page_and_report_say_one_seed(trained_cache):
    app = run_page("compare.py")
    assert any(info.value.startswith("One seed: each model here was trained once") for info in app.info)
    assert not app.get("selectbox") or all(box.key != "compare_sweep" for box in app.selectbox)
    assert "One seed: each model here was trained once" in report_preview(app)


def test_with_sweeps_the_page_draws_error_bars_and_verdicts(trained_cache, tiny_config):
    from fmnist_core.config import PRESETS

    # The newest sweep used other settings; the one with the trained model's settings is offered first.
    matching = synthetic_sweep(tiny_config, "custom", created="2026-11-30T10:00:00")
    other = synthetic_sweep(PRESETS["full"], "full", created="2026-11-30T12:00:00")
    for sweep in (matching, other):
        save_sweep(sweep, trained_cache)
    app = run_page("compare.py")
    box = app.selectbox(key="compare_sweep")
    assert box.value == 1 and len(box.options) == 2  # Newest first: [other, matching].

    tables = chart_tables(app)
    runs = next(table for table in tables if "seed" in table.columns and "value" in table.columns)
    expected = sorted(100 * run.test_accuracy for run in matching.runs)
    assert sorted(runs["value"]) == pytest.approx(expected) and set(runs["measure"]) == {MEASURES["test_accuracy"]}
    bars = [table for table in tables if {"low", "high", "mean"} <= set(table.columns)]
    assert {measure for table in bars for measure in table["measure"]} == set(MEASURES.values())
    accuracy_bars = next(table for table in bars if table["measure"].iloc[0] == MEASURES["test_accuracy"])
    summary = matching.summary_of("model3").test_accuracy
    model3 = accuracy_bars.set_index("model").loc["Model 3"]
    assert (model3["low"], model3["high"]) == pytest.approx((summary.low, summary.high))

    shown = [block.value for block in app.markdown]
    for comparison in matching.comparisons:
        assert f"- {comparison.verdict}" in shown
        assert comparison.verdict in report_preview(app)
    assert "other settings" not in report_preview(app)

    box.set_value(0).run()
    assert not app.exception
    assert "other settings than the models in the table" in report_preview(app)


def test_a_sweep_shipped_with_the_app_is_offered_and_says_so(trained_cache, tiny_config, tmp_path, monkeypatch):
    import json

    from fmnist_core.paths import recorded_sweeps_dir

    monkeypatch.setenv("FMNIST_SHIPPED_DIR", str(tmp_path / "repository"))  # This test's own, not the session's.
    shipped = synthetic_sweep(tiny_config, "custom", created="2026-12-02T10:00:00")
    recorded_sweeps_dir().mkdir(parents=True)
    (recorded_sweeps_dir() / f"{shipped.sweep_id}.json").write_text(json.dumps(shipped.to_dict()))
    app = run_page("compare.py")
    assert not app.exception
    box = app.selectbox(key="compare_sweep")
    assert len(box.options) == 1 and box.options[0].endswith("· shipped with the app")
    assert "shipped with the app" in report_preview(app)
    assert f"- {shipped.comparisons[0].verdict}" in [block.value for block in app.markdown]
