"""The three models side by side: the comparison table (page and CSV) and the hand-out report (Markdown).

Everything here is a pure function of cache entries (plus latencies and races when there are any), so the
Compare page and `python -m fmnist_core report` show the same numbers, and the tests need no trained model for
most of it. The pieces it assembles live with their concern: one model's mistakes in fmnist_core.evaluate.confusion, the
learning curves in words in fmnist_core.report.commentary, the race table in fmnist_core.race.summary; the command that
reproduces a model comes from the caller (the CLI owns its syntax). No Streamlit, no TensorFlow import:
`measure_latency` is handed a model its caller loaded through the cache.
"""

from __future__ import annotations

import json
import numbers
import platform
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fmnist_core.config import TrainConfig
from fmnist_core.data.fashion_mnist import TEST_SET_IMAGES
from fmnist_core.display import format_accuracy, format_duration, format_learning_rate, format_timestamp
from fmnist_core.evaluate.confusion import most_confused
from fmnist_core.evaluate.evaluation import single_image_latency
from fmnist_core.machine import cpu_model, usable_cores
from fmnist_core.models.registry import MODEL_NAMES, MODEL_SPECS
from fmnist_core.race.file import StoredRace
from fmnist_core.race.summary import lanes_not_run, summary_markdown, workload_sentence
from fmnist_core.report.commentary import learning_curve_summary, mirror_note
from fmnist_core.store.cache import DELETE_DAMAGED_COMMAND, CacheEntry, best_entries
from fmnist_core.sweep.report import markdown_section as seeds_section
from fmnist_core.sweep.result import SweepResult

# The CLI command that trains a registry model with given settings (None: the quick preset). The CLI owns its
# syntax (fmnist_core.cli.train_command.command_line); the core is handed it and never imports the CLI.
TrainCommand = Callable[[str, TrainConfig | None], str]

# The comparison table's columns (CSV headers) and how a person reads them (Markdown and page headers).
COLUMN_LABELS: dict[str, str] = {
    "model": "Model",
    "status": "Status",
    "entry_id": "Cache entry",
    "first_filters": "First-layer filters",
    "parameters": "Parameters",
    "forward_flops": "FLOPs per image",
    "epochs": "Epochs",
    "train_images": "Training images",
    "training_seconds": "Training time",
    "training_images_per_second": "Training images/s",
    "test_accuracy": "Test accuracy",
    "single_view_accuracy": "Picture alone",
    "test_loss": "Test loss",
    "macro_f1": "Macro F1",
    "inference_images_per_second": "Inference images/s",
    "latency_ms": "Latency, 1 image (ms)",
}
# The figures a class compares first, then the rest: a narrow screen shows these without scrolling sideways.
COMPARED_FIRST = ("model", "test_accuracy", "training_seconds", "latency_ms", "parameters")


def column_order() -> list[str]:
    """The comparison table's columns as the Compare page shows them: COMPARED_FIRST, then the others (the cache
    entry ids are in the page's pickers, so only the CSV keeps them)."""
    return [*COMPARED_FIRST, *(column for column in COLUMN_LABELS if column not in (*COMPARED_FIRST, "entry_id"))]


# What the "Picture alone" column means (the report's notes and the Compare page's column help).
SINGLE_VIEW_MEANING = (
    "a model trained on mirrored pictures answers with the average over each picture and its mirror "
    "image; this column is its accuracy without that (the same as the test accuracy otherwise)."
)
INTEGER_COLUMNS = ("first_filters", "parameters", "forward_flops", "epochs", "train_images")
TRAINED, NOT_TRAINED, DAMAGED = "trained", "not trained yet", "damaged"


# The three models side by side -------------------------------------------------------------------------


def chosen_entries(
    entries: Iterable[CacheEntry], picked: Mapping[str, CacheEntry] | None = None
) -> dict[str, CacheEntry | None]:
    """The entry the comparison shows for each registry model, in registry order.

    picked: entries chosen by hand (the Compare page's boxes, the CLI's --entry); otherwise the most accurate usable
    entry; a model whose only entries are damaged gets its newest damaged one (reported as damaged, with the reason
    and how to clean up, not as "not trained yet"); None when it has no entry at all.
    """
    entries = list(entries)
    chosen: dict[str, CacheEntry | None] = {**best_entries(entries), **(picked or {})}
    for entry in entries:
        if not entry.ok and chosen.get(entry.model_name, entry) is None:
            chosen[entry.model_name] = entry
    return chosen


def _row(name: str, entry: CacheEntry | None, latencies: Mapping[str, float]) -> dict:
    if entry is None or entry.record is None:
        return {
            "model": MODEL_SPECS[name].title,
            "status": NOT_TRAINED if entry is None else DAMAGED,
            "entry_id": None if entry is None else entry.entry_id,
            "first_filters": MODEL_SPECS[name].first_filters,
        }
    record, evaluation = entry.record, entry.record.evaluation
    latency = latencies.get(entry.entry_id)
    return {
        "model": entry.title,
        "status": TRAINED,
        "entry_id": entry.entry_id,
        "first_filters": record.spec.first_filters,
        "parameters": record.parameters,
        "forward_flops": record.forward_flops,
        "epochs": record.epochs_run,
        "train_images": record.train_images,
        "training_seconds": record.wall_seconds,
        "training_images_per_second": record.images_per_second,
        "test_accuracy": evaluation.test_accuracy,
        # Without mirror averaging; a model saved as trained answers from the picture alone anyway.
        "single_view_accuracy": (
            record.single_view_accuracy if record.single_view_accuracy is not None else evaluation.test_accuracy
        ),
        "test_loss": evaluation.test_loss,
        "macro_f1": evaluation.macro_f1,
        "inference_images_per_second": evaluation.images_per_second,
        "latency_ms": latency * 1000 if latency is not None else None,
    }


def comparison_table(
    chosen: Mapping[str, CacheEntry | None], latencies: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """One row per model (in the order given), every column of COLUMN_LABELS; untrained and damaged models say so.

    latencies: entry id → median seconds to predict one image (measured by the caller on this machine).
    """
    rows = [_row(name, entry, latencies or {}) for name, entry in chosen.items()]
    # Nullable integers, so an untrained row leaves cells empty instead of turning counts into floats.
    return pd.DataFrame(rows, columns=list(COLUMN_LABELS)).astype({column: "Int64" for column in INTEGER_COLUMNS})


# Measuring and the report itself ------------------------------------------------------------------------


def measure_latency(model, test_images: np.ndarray) -> float:
    """Median seconds for one warm single-image prediction, on the first test image."""
    return single_image_latency(model, test_images[0])


def report_machine() -> dict:
    """The machine the report (and its latencies) is made on; cheap, no TensorFlow."""
    return {"cpu_model": cpu_model(), "cpu_cores": usable_cores(), "platform": platform.platform()}


@dataclass(frozen=True)
class Report:
    """The comparison as a table (for the page and CSV) and as Markdown (for handing out)."""

    table: pd.DataFrame
    markdown: str

    @property
    def csv(self) -> str:
        return self.table.to_csv(index=False)


def build_report(
    chosen: Mapping[str, CacheEntry | None],
    train_command: TrainCommand,
    latencies: Mapping[str, float] | None = None,
    races: list[StoredRace] | None = None,
    machine: Mapping | None = None,
    generated: str | None = None,
    sweep: SweepResult | None = None,
) -> Report:
    """The full report for one entry per registry model (None = not trained yet).

    chosen: `chosen_entries(...)`: a damaged entry is reported as damaged, None as not trained yet.
    train_command: (model name, settings) → the command that trains it, for the Reproduce section.
    latencies: entry id → seconds, or None when latency was not measured for this report.
    races: `race_summary.load_races()`; the newest three are summarised.
    machine: where the report is made (defaults to this one); generated: its date (defaults to now).
    sweep: the repeated runs that say which differences are real (`sweep_report.pick_sweep`); None: one seed.
    """
    table = comparison_table(chosen, latencies)
    machine = dict(machine or report_machine())
    trained = {name: entry for name, entry in chosen.items() if entry is not None and entry.ok}
    sections = [
        "# Fashion-MNIST: three CNNs compared",
        f"*Generated {generated or time.strftime('%Y-%m-%d %H:%M')} on {_machine_words(machine)}.*",
        "## The three models",
        _models_paragraph(),
        *_settings_warning(trained),
        "## Results",
        _markdown_table(table, latencies is not None),
        "## Seeds: is the difference real?",
        seeds_section(sweep, next((entry.record.config for entry in trained.values()), None)),
        "## Each model",
        *(_model_section(name, entry, train_command) for name, entry in chosen.items()),
        "## GPU vs CPU race",
        *_race_sections(races or []),
        "## How the numbers were measured",
        _measurement_notes(latencies is not None),
        "## Reproduce",
        "```bash\n"
        + "\n".join(
            train_command(name, entry.record.config if entry and entry.record else None)
            for name, entry in chosen.items()
        )
        + "\npython -m fmnist_core report --out report.md --csv table.csv\n```",
    ]
    return Report(table, "\n\n".join(sections) + "\n")


def _format_cell(column: str, value) -> str:
    if value is None or pd.isna(value):
        return "—"
    if column == "forward_flops":
        return f"{value / 1e6:,.1f} M"
    if column == "training_seconds":
        return format_duration(value)
    if column in ("test_accuracy", "single_view_accuracy"):
        return format_accuracy(value)
    if column in ("test_loss", "macro_f1"):
        return f"{value:.3f}"
    if column == "latency_ms":
        return f"{value:.2f}"
    if isinstance(value, numbers.Number):
        return f"{value:,.0f}"
    return str(value).replace("|", "\\|")


def _markdown_table(table: pd.DataFrame, with_latency: bool) -> str:
    columns = [
        column
        for column in COLUMN_LABELS
        if column not in ("status", "entry_id", "test_loss") and (with_latency or column != "latency_ms")
    ]
    lines = [
        "| " + " | ".join(COLUMN_LABELS[column] for column in columns) + " |",
        "|" + "|".join("---" if column == "model" else "--:" for column in columns) + "|",
    ]
    for row in table.to_dict("records"):
        if row["status"] != TRAINED:
            cells = [row["model"], _format_cell("first_filters", row["first_filters"]), row["status"]]
            cells += [""] * (len(columns) - len(cells))
        else:
            cells = [_format_cell(column, row[column]) for column in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _machine_words(machine: Mapping) -> str:
    # machine_info()'s shape, but read defensively: meta.json is a file anyone can edit.
    listed = machine.get("gpus") if isinstance(machine.get("gpus"), list) else []
    gpus = [str(gpu.get("name", "GPU")) for gpu in listed if isinstance(gpu, dict)]
    cores = f" ({machine['cpu_cores']} cores)" if machine.get("cpu_cores") else ""
    return " + ".join([f"{machine.get('cpu_model') or 'an unknown CPU'}{cores}", *gpus])


def _models_paragraph() -> str:
    spec = MODEL_SPECS[MODEL_NAMES[0]]
    widths = ", ".join(f"{MODEL_SPECS[name].title} has {MODEL_SPECS[name].first_filters}" for name in MODEL_NAMES)
    return (
        f"All three are the same small convolutional network for 28×28 grey-scale images: a 3×3 convolution "
        f"at 28×28, max-pooling, batch normalisation and ReLU, two 3×3 convolutions of "
        f"{spec.block2_filters} filters at 14×14, pooling, one of {spec.block3_filters} filters at 7×7, "
        f"pooling, a dense layer of {spec.dense_units} units with dropout {spec.dropout}, and a softmax over "
        f"the 10 classes. **Only the first convolution's width differs**: {widths} filters. Every other "
        "layer, the data and the training settings are meant to be identical, so differences in accuracy, "
        "size and speed are caused by that one layer."
    )


def _settings_warning(trained: Mapping[str, CacheEntry]) -> list[str]:
    """A warning when the compared entries were not trained alike (then the first layer is not the only cause)."""
    settings = [
        dict(
            entry.record.config.to_dict(),
            **{
                key: value
                for key, value in entry.record.spec.to_dict().items()
                if key not in ("name", "title", "first_filters")
            },
        )
        for entry in trained.values()
    ]
    differing = sorted(
        {key for values in settings for key in values if len({json.dumps(other.get(key)) for other in settings}) > 1}
    )
    if not differing:
        return []
    details = "; ".join(f"{key}: " + " / ".join(str(values.get(key)) for values in settings) for key in differing)
    return [
        f"**Careful:** these models were not trained alike ({details}), so part of the differences below "
        "comes from that, not only from the first layer."
    ]


def _model_section(name: str, entry: CacheEntry | None, train_command: TrainCommand) -> str:
    spec = entry.record.spec if entry is not None and entry.record is not None else MODEL_SPECS[name]
    title = f"### {spec.title} ({spec.first_filters} first-layer filters)"
    if entry is None:
        return (
            f"{title}\n\nNot trained yet. Train it with `{train_command(name, None)}` (or on the Train page), "
            "then make the report again."
        )
    if entry.record is None:
        return (
            f"{title}\n\nDamaged: cache entry `{entry.entry_id}` cannot be used ({entry.problem}). Delete it with "
            f"`{DELETE_DAMAGED_COMMAND}`, train the model again with `{train_command(name, None)}` (or on the "
            "Train page), then make the report again."
        )
    record, config = entry.record, entry.record.config
    evaluation = record.evaluation
    classes = sorted(evaluation.per_class, key=lambda row: row.f1)
    lines = [
        f"- Cache entry `{entry.entry_id}`, trained {format_timestamp(record.created)} on "
        f"{_machine_words(record.machine)}: {config.epochs} epochs on {record.train_images:,} images, batch "
        f"{config.batch_size}, learning rate {format_learning_rate(config.learning_rate)}, "
        f"{config.precision} precision, "
        f"augmentation {'on' if config.augment else 'off'}.",
        f"- Test accuracy **{format_accuracy(evaluation.test_accuracy)}** on {evaluation.test_images:,} test "
        f"images, loss {evaluation.test_loss:.3f}, macro F1 {evaluation.macro_f1:.3f}. Easiest class: "
        f"{classes[-1].name} (F1 {classes[-1].f1:.2f}); hardest: {classes[0].name} (F1 {classes[0].f1:.2f}).",
    ]
    note = mirror_note(record)
    if note:
        lines.append(f"- {note}")
    pairs = most_confused(evaluation.confusion_matrix, top=3)
    if pairs:
        lines.append("- Most confused: " + "; ".join(pair.describe() for pair in pairs) + ".")
    lines.append(f"- Learning curves: {learning_curve_summary(record.history)}")
    return title + "\n\n" + "\n".join(lines)


def _race_sections(races: list[StoredRace]) -> list[str]:
    if not races:
        return [
            "No race has been run yet. Run one on the GPU vs CPU race page or with `python -m fmnist_core "
            "race`; a race recorded on a GPU machine can be copied into `recorded_races/`."
        ]
    sections = []
    for stored in races[:3]:
        result = stored.result
        not_run = [f"- {line}" for line in lanes_not_run(result)]
        lines = [f"### Race {result.recorded_label}", "", workload_sentence(result), "", summary_markdown(result)]
        sections.append("\n".join([*lines, *([""] + not_run if not_run else [])]))
    return sections


def _measurement_notes(with_latency: bool) -> str:
    latency = (
        "median of 50 single-image predictions on a warm model (the first call is excluded), measured "
        "on the machine this report was made on"
        if with_latency
        else "not measured for this report (`--no-latency`, or timing switched off on the Compare page)"
    )
    return "\n".join(
        [
            f"- **Test accuracy, loss, macro F1, confusion matrix**: the {TEST_SET_IMAGES:,} official Fashion-MNIST "
            "test images, "
            "never used in training. Macro F1 is the plain mean of the ten per-class F1 scores (scikit-learn).",
            f"- **Picture alone**: {SINGLE_VIEW_MEANING}",
            "- **Training time**: wall-clock time of all epochs, validation pass included; **training images/s** "
            "counts training images only, on the machine that trained the model.",
            "- **Inference images/s**: the whole test set in batches of 1,024 after one untimed warm-up batch.",
            f"- **Latency**: {latency}.",
            "- **Parameters** count every weight (batch-norm statistics included); **FLOPs** are for one image's "
            "forward pass through the convolution and dense layers, a multiply-add counting as 2.",
            "- Speed depends on the machine and on what else it was doing: compare speeds only between runs on "
            "the same machine.",
        ]
    )
