"""benchmarks/recipe_search.py: each candidate is its stage's start with exactly its named changes, results are
found again by their settings whichever stage trained them, and the summary measures gains against the first
candidate of the stage. No training here: the rows are written by the tests."""

from __future__ import annotations

import json

import pytest

from benchmarks import recipe_search
from fmnist_core import machine
from fmnist_core.config import PRESETS, TrainConfig


@pytest.fixture(autouse=True)
def bfloat16_machine(monkeypatch):
    """The recorded searches ran where bfloat16 is fast, so the candidates are the presets' own precision."""
    monkeypatch.setattr(machine, "bfloat16_is_fast", lambda: True)


def test_without_fast_bfloat16_every_candidate_trains_in_float32(monkeypatch):
    monkeypatch.setattr(machine, "bfloat16_is_fast", lambda: False)
    for stage, (start, candidates) in recipe_search.STAGES.items():
        for name, changes in candidates.items():
            config = recipe_search.candidate_config(stage, name, seed=7)
            assert config == start.replace(**changes, seed=7, precision="float32"), name


@pytest.mark.parametrize("stage", list(recipe_search.STAGES))
def test_every_candidate_is_its_start_with_only_its_changes(stage):
    start, candidates = recipe_search.STAGES[stage]
    for name, changes in candidates.items():
        config = recipe_search.candidate_config(stage, name, seed=7)
        assert config.seed == 7
        differing = {key for key, value in config.to_dict().items() if start.to_dict()[key] != value} - {"seed"}
        assert differing == {key for key, value in changes.items() if start.to_dict()[key] != value}, name


def test_the_model3_stage_starts_from_the_full_preset_it_tries_to_improve():
    start, candidates = recipe_search.STAGES["full-model3"]
    assert start == PRESETS["full"]
    assert candidates["full preset"] == {}, "the reference row is the preset itself"
    assert list(candidates)[0] == "full preset", "gains are measured against the first candidate"


def row(stage: str, name: str, model: str, seed: int, accuracy: float) -> dict:
    config = recipe_search.candidate_config(stage, name, seed)
    return {
        "stage": stage,
        "candidate": name,
        "model": model,
        "seed": seed,
        "validation_accuracy": accuracy,
        "validation_accuracy_alone": accuracy,
        "images_per_second": 1000.0,
        "config": config.to_dict(),
    }


def test_a_result_is_found_by_its_settings_and_model_only():
    rows = [row("full-model3", "peak lr 3e-3", "model3", 42, 0.9452)]
    same = recipe_search.candidate_config("full-model3", "peak lr 3e-3", 42)
    assert recipe_search.find_row(rows, "model3", same) is rows[0]
    assert recipe_search.find_row(rows, "model1", same) is None
    assert recipe_search.find_row(rows, "model3", same.replace(seed=7)) is None
    # The same settings reached from another stage's start are the same run.
    assert recipe_search.find_row(rows, "model3", PRESETS["full"].replace(learning_rate=3e-3)) is rows[0]


def test_a_row_written_before_a_setting_existed_reads_it_as_its_default():
    old = row("full-model3", "full preset", "model3", 42, 0.9458)
    del old["config"]["label_smoothing"]
    assert recipe_search.find_row([old], "model3", PRESETS["full"]) is old
    assert TrainConfig.from_dict(old["config"]).label_smoothing == 0.0


def printed_summary(tmp_path, capsys, accuracies: dict[str, dict[int, float]]) -> dict[str, str]:
    """The full-model3 summary of Model 3 rows with these validation accuracies ({candidate: {seed: accuracy}}),
    each printed line keyed by its candidate."""
    results = tmp_path / "results.jsonl"
    lines = [
        row("full-model3", name, "model3", seed, accuracy)
        for name, by_seed in accuracies.items()
        for seed, accuracy in by_seed.items()
    ]
    results.write_text("".join(json.dumps(line) + "\n" for line in lines))
    seeds = list(next(iter(accuracies.values())))
    recipe_search.summary("full-model3", "model3", seeds, results)
    return {line.split("  ")[0]: line for line in capsys.readouterr().out.splitlines()}


def test_the_summary_gives_each_candidate_its_gain_over_the_first(tmp_path, capsys):
    printed = printed_summary(
        tmp_path, capsys, {"full preset": {42: 0.9458}, "peak lr 3e-3": {42: 0.9452}, "AdamW 5e-2": {42: 0.9443}}
    )
    assert "+0.00" in printed["full preset"]
    assert "94.52%" in printed["peak lr 3e-3"] and "-0.06" in printed["peak lr 3e-3"]
    assert "-0.15" in printed["AdamW 5e-2"]
    assert "not run for every seed" in printed["peak lr 4e-3"]


def test_with_two_seeds_the_gain_is_paired_and_carries_its_interval(tmp_path, capsys):
    """Gains of +0.10 and +0.30 points: mean +0.20, s = 0.1414, 95 % half-width 12.706 × 0.1414 / √2 = 1.27; the count
    is of seeds that agree with the mean's sign (`statistics.paired_difference`)."""
    printed = printed_summary(
        tmp_path,
        capsys,
        {
            "full preset": {42: 0.9450, 7: 0.9370},
            "label smoothing 0.1": {42: 0.9460, 7: 0.9400},
            "batch 128": {42: 0.9440, 7: 0.9390},
            "AdamW 5e-2": {42: 0.9440, 7: 0.9380},
        },
    )
    assert "±" not in printed["full preset"], "the reference has no gain of its own to bound"
    assert "+0.20" in printed["label smoothing 0.1"] and "± 1.27 (2/2)" in printed["label smoothing 0.1"]
    # −0.10 and +0.20: mean +0.05, s = 0.2121, half-width 1.91; one seed of two agrees with the mean's sign.
    assert "+0.05" in printed["batch 128"] and "± 1.91 (1/2)" in printed["batch 128"]
    # −0.10 and +0.10: a mean that rounds to nothing, whatever sign its last bit has.
    assert "+0.00" in printed["AdamW 5e-2"]


def test_a_search_does_not_train_what_it_has_measured(tmp_path, monkeypatch):
    """Every candidate of the stage already has its row: no data is loaded, nothing is trained or appended."""
    results = tmp_path / "results.jsonl"
    names = list(recipe_search.STAGES["full-model3"][1])
    results.write_text("".join(json.dumps(row("full-model3", name, "model3", 42, 0.94)) + "\n" for name in names))
    before = results.read_text()

    def refuse(*arguments, **keywords):
        raise AssertionError("trained or loaded data for a candidate already measured")

    monkeypatch.setattr("fmnist_core.training.loop.train", refuse)
    monkeypatch.setattr("fmnist_core.data.loading.load_fashion_mnist", refuse)
    recipe_search.run_stage("full-model3", "model3", [42], None, results)
    recipe_search.run_stage("full-model3", "model3", [42], ["label smoothing 0.1"], results)
    assert results.read_text() == before


def test_a_candidate_name_the_stage_lacks_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(recipe_search, "run_stage", lambda *arguments: pytest.fail("ran a stage for a wrong name"))
    results = tmp_path / "results.jsonl"
    with pytest.raises(SystemExit) as stopped:
        recipe_search.main(
            ["--stage", "full-model3", "--only", "full preset,label smoothing", "--results", str(results)]
        )
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert "no candidate 'label smoothing' in stage full-model3" in error
    assert "label smoothing 0.1" in error, "the valid names are listed"
    assert not results.exists()
