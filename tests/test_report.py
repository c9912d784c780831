"""The report module (tables, Markdown, CSV, races) on synthetic cache entries, and the `report` CLI command."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from fmnist_core.cli import build_parser, main
from fmnist_core.cli.train_command import command_line, config_from_arguments
from fmnist_core.config import PRESETS, TrainConfig
from fmnist_core.data.fashion_mnist import CLASS_NAMES
from fmnist_core.display import format_accuracy
from fmnist_core.evaluate import confusion
from fmnist_core.models.registry import MODEL_SPECS
from fmnist_core.report import comparison as report
from fmnist_core.report.commentary import learning_curve_summary
from fmnist_core.store.cache import CacheEntry, best_entries
from tests import records
from tests.records import make_record


def make_entry(
    name: str, accuracy_seed: int = 0, config: TrainConfig | None = None, ok: bool = True, history: dict | None = None
) -> CacheEntry:
    """A usable (or damaged) cache entry of registry model `name`, evaluated on 200 synthetic predictions."""
    record = make_record(
        name, config, accuracy_seed=accuracy_seed, history=history, created=f"2026-11-25T10:0{accuracy_seed}:00"
    )
    return records.make_entry(
        record, accuracy_seed, problem=None if ok else "model.keras does not match its checksum (damaged)"
    )


def test_best_entries_picks_the_most_accurate_usable_entry():
    entries = [make_entry("model1", seed) for seed in (1, 2, 3)] + [make_entry("model2", 4, ok=False)]
    best = best_entries(entries)
    assert best["model1"].record.test_accuracy == max(entry.record.test_accuracy for entry in entries[:3])
    assert best["model2"] is None and best["model3"] is None  # A damaged entry counts as not trained.


def test_a_model_whose_only_entry_is_damaged_is_reported_damaged_not_untrained():
    damaged = make_entry("model2", 4, ok=False)
    chosen = report.chosen_entries([make_entry("model1", 1), damaged])
    assert chosen["model2"] is damaged and chosen["model3"] is None
    result = report.build_report(chosen, command_line)
    assert list(result.table["status"]) == [report.TRAINED, report.DAMAGED, report.NOT_TRAINED]
    assert result.table.loc[1, "entry_id"] == damaged.entry_id
    section = result.markdown.split("### Model 2")[1].split("###")[0]
    assert damaged.entry_id in section and damaged.problem in section
    assert "python -m fmnist_core cache delete --damaged" in section and "Not trained yet" not in section


def test_table_values_come_from_the_record():
    entry = make_entry("model2", 1)
    table = report.comparison_table({"model1": None, "model2": entry, "model3": None}, {entry.entry_id: 0.0042})
    assert list(table.columns) == list(report.COLUMN_LABELS)
    assert list(table["status"]) == [report.NOT_TRAINED, report.TRAINED, report.NOT_TRAINED]
    row = table.iloc[1]
    record, evaluation = entry.record, entry.record.evaluation
    assert row["entry_id"] == entry.entry_id and row["first_filters"] == 128
    assert row["parameters"] == record.parameters and row["forward_flops"] == record.forward_flops
    assert row["epochs"] == 3 and row["train_images"] == 18000
    assert row["training_seconds"] == pytest.approx(28.5) and row["training_images_per_second"] == 1900.0
    assert row["test_accuracy"] == pytest.approx(evaluation.test_accuracy)
    assert row["single_view_accuracy"] == row["test_accuracy"], "saved as trained: it answers from the picture alone"
    assert row["inference_images_per_second"] == pytest.approx(evaluation.images_per_second)
    assert row["latency_ms"] == pytest.approx(4.2)
    assert pd.isna(table.iloc[0]["test_accuracy"]) and table.iloc[2]["first_filters"] == 256


def test_markdown_names_models_accuracy_and_what_is_missing():
    entry = make_entry("model1", 1)
    result = report.build_report(
        {"model1": entry, "model2": None, "model3": None},
        command_line,
        races=[],
        machine={"cpu_model": "Report CPU", "cpu_cores": 2},
        generated="2026-11-25 12:00",
    )
    markdown = result.markdown
    assert markdown.startswith("# ")
    assert "2026-11-25 12:00" in markdown and "Report CPU" in markdown
    for spec in MODEL_SPECS.values():
        assert spec.title in markdown and f"{spec.first_filters}" in markdown
    assert format_accuracy(entry.record.test_accuracy) in markdown
    pair = confusion.most_confused(entry.record.evaluation.confusion_matrix, top=1)[0]
    assert pair.describe() in markdown
    assert markdown.count("not trained yet") >= 2 and "Not trained yet" in markdown
    assert "python -m fmnist_core train --model model3" in markdown
    assert "python -m fmnist_core report" in markdown
    assert "No race has been run yet" in markdown
    assert "not measured for this report" in markdown  # No latencies were given.


def test_markdown_warns_when_models_were_not_trained_alike():
    first = make_entry("model1", 1)
    second = make_entry("model2", 2, config=PRESETS["quick"].replace(epochs=5))
    markdown = report.build_report({"model1": first, "model2": second, "model3": None}, command_line).markdown
    assert "not trained alike" in markdown and "epochs: 3 / 5" in markdown


def test_csv_has_one_row_per_model_and_every_column():
    entry = make_entry("model1", 1)
    result = report.build_report(
        {"model1": entry, "model2": None, "model3": None}, command_line, {entry.entry_id: 0.001}
    )
    table = pd.read_csv(io.StringIO(result.csv))
    assert list(table.columns) == list(report.COLUMN_LABELS)
    assert list(table["model"]) == ["Model 1", "Model 2", "Model 3"]
    assert table.loc[0, "parameters"] == entry.record.parameters  # Integers stay integers.
    assert table.loc[0, "latency_ms"] == pytest.approx(1.0)


def test_confusion_cells_and_most_confused():
    matrix = np.diag([90] * 10)
    matrix[6, 0], matrix[2, 4], matrix[4, 2] = 30, 12, 5
    cells = confusion.confusion_cells(matrix.tolist())
    assert len(cells) == 100 and cells["count"].sum() == matrix.sum()
    shirt_row = cells[cells.true_index == 6]
    assert shirt_row["row_share"].sum() == pytest.approx(1.0)
    assert cells.query("true_index == 6 and predicted_index == 0")["true_class"].item() == "Shirt"
    pairs = confusion.most_confused(matrix.tolist(), top=2)
    assert [(pair.true_class, pair.predicted_class, pair.count) for pair in pairs] == [(6, 0, 30), (2, 4, 12)]
    assert pairs[0].share == pytest.approx(30 / 120)


def test_mistaken_images_are_captioned_and_bounded_by_the_test_set():
    evaluation = make_entry("model1", 1).record.evaluation
    pair = confusion.most_confused(evaluation.confusion_matrix, top=1)[0]
    recorded = evaluation.mistakes_for(pair.true_class, pair.predicted_class)
    images = confusion.mistaken_images(evaluation, pair.true_class, pair.predicted_class, test_images=200)
    assert [image.index for image in images] == [index for index, _ in recorded]
    assert images[0].caption == f"confidence {recorded[0][1]:.0%} as {CLASS_NAMES[pair.predicted_class]}"
    assert confusion.mistaken_images(evaluation, pair.true_class, pair.predicted_class, test_images=0) == []


def test_per_class_table_has_one_row_per_class_in_order():
    table = confusion.per_class_table(make_entry("model1", 1).record.evaluation)
    assert list(table.columns) == ["class", "precision", "recall", "f1", "support"]
    assert list(table["class"]) == list(CLASS_NAMES) and table["support"].sum() == 200


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        (
            {
                "loss": [1, 0.5, 0.3],
                "accuracy": [0.7, 0.9, 0.97],
                "val_loss": [0.6, 0.5, 0.55],
                "val_accuracy": [0.8, 0.86, 0.85],
            },
            ["over-fitting", "peaked at epoch 2"],
        ),
        (
            {"loss": [1, 0.5], "accuracy": [0.7, 0.8], "val_loss": [0.6, 0.5], "val_accuracy": [0.75, 0.81]},
            ["no sign of over-fitting", "still improving"],
        ),
        ({"loss": [1, 0.5], "accuracy": [0.6, 0.7]}, ["no validation images"]),
        ({}, ["No learning curves"]),
    ],
)
def test_learning_curve_summary_in_words(history, expected):
    summary = learning_curve_summary(history)
    for phrase in expected:
        assert phrase in summary


@pytest.mark.parametrize(
    "config",
    [
        PRESETS["quick"],
        PRESETS["full"],
        PRESETS["quick"].replace(epochs=2, train_limit=None, augment=True, precision="float32", learning_rate=0.003),
    ],
)
def test_the_command_line_reproduces_the_config(config):
    command = command_line("model2", config)
    arguments = build_parser().parse_args(command.split()[3:])
    assert arguments.model == "model2" and config_from_arguments(arguments) == config


# The CLI ------------------------------------------------------------------------------------------------


def test_cli_report_writes_markdown_and_csv(trained_cache, tmp_path):
    out, csv = tmp_path / "out" / "report.md", tmp_path / "table.csv"
    assert main(["report", "--no-latency", "--out", str(out), "--csv", str(csv)]) == 0
    markdown = out.read_text(encoding="utf-8")
    assert "Model 1" in markdown and "not trained yet" in markdown and "%" in markdown
    table = pd.read_csv(csv)
    assert list(table["status"]) == [report.TRAINED, report.NOT_TRAINED, report.NOT_TRAINED]
    assert table["latency_ms"].isna().all()


@pytest.mark.realdata  # Latency is timed on the first real test image.
def test_cli_report_prints_markdown_and_measures_latency(trained_cache, tmp_path, capsys):
    csv = tmp_path / "table.csv"
    assert main(["report", "--csv", str(csv)]) == 0
    assert capsys.readouterr().out.startswith("# Fashion-MNIST")
    assert pd.read_csv(csv).loc[0, "latency_ms"] > 0


def test_cli_report_refuses_a_damaged_entry(trained_cache, capsys):
    entry_id = next(path.name for path in trained_cache.iterdir() if path.name.startswith("model1-"))
    with (trained_cache / entry_id / "model.keras").open("ab") as handle:
        handle.write(b"tampered")
    assert main(["report", "--no-latency", "--entry", entry_id]) == 2
    assert "damaged" in capsys.readouterr().err
