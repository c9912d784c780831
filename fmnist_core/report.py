"""Tables and the hand-out report: one model's mistakes, the three models side by side, Markdown and CSV.

Everything here is a pure function of cache entries (plus latencies and race results when there are any),
so the Evaluate and Compare pages and `python -m fmnist_core report` show the same numbers, and the tests
need no trained model for most of it. No Streamlit, and no TensorFlow import: `measure_latency` is handed a
model its caller loaded through the cache.
"""

from __future__ import annotations

import json
import numbers
import platform
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fmnist_core.cache import CacheEntry
from fmnist_core.config import PRESETS, TrainConfig
from fmnist_core.evaluation import Evaluation, single_image_latency
from fmnist_core.fashion_mnist import CLASS_NAMES
from fmnist_core.machine import cpu_model, usable_cores
from fmnist_core.models import MODEL_NAMES, MODEL_SPECS
from fmnist_core.sweep_report import markdown_section as seeds_section
from fmnist_core.sweep_result import SweepResult

OVERFITTING_GAP = 0.03  # Training accuracy this far above validation accuracy counts as over-fitting.

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
# What the "Picture alone" column means (the report's notes and the Compare page's column help).
SINGLE_VIEW_MEANING = (
    "a model trained on mirrored pictures answers with the average over each picture and its mirror "
    "image; this column is its accuracy without that (the same as the test accuracy otherwise)."
)
INTEGER_COLUMNS = ("first_filters", "parameters", "forward_flops", "epochs", "train_images")
TRAINED, NOT_TRAINED = "trained", "not trained yet"


# One model: the confusion matrix, its worst pairs and its mistaken images ---------------------------------


def evaluation_of(entry: CacheEntry) -> Evaluation | None:
    """The test-set evaluation stored with an entry, or None when the entry has none (or an unknown shape)."""
    values = (entry.meta or {}).get("evaluation")
    try:
        return Evaluation.from_dict(values) if isinstance(values, dict) else None
    except TypeError:
        return None


def confusion_cells(matrix: list[list[int]]) -> pd.DataFrame:
    """One row per (true, predicted) cell: indices, class names, count and share of the true class's row."""
    counts = np.asarray(matrix, dtype=int)
    row_totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, row_totals, out=np.zeros(counts.shape), where=row_totals > 0)
    rows = [
        {
            "true_index": true,
            "true_class": CLASS_NAMES[true],
            "predicted_index": predicted,
            "predicted_class": CLASS_NAMES[predicted],
            "count": int(counts[true, predicted]),
            "row_share": float(shares[true, predicted]),
        }
        for true in range(counts.shape[0])
        for predicted in range(counts.shape[1])
    ]
    return pd.DataFrame(rows)


def mirror_note(entry: CacheEntry) -> str | None:
    """For a model trained on mirrored pictures (saved mirror-averaged): what that means and its single-view score."""
    if entry.single_view_accuracy is None:
        return None
    return (
        "Trained on mirrored pictures too, it answers with the average of its answers for each picture and for "
        f"its mirror image; from the picture alone it scores {entry.single_view_accuracy:.2%}."
    )


def images_evaluated(evaluation: Evaluation) -> int:
    """How many test images the evaluation covered (10,000 for the real test set)."""
    return int(np.sum(evaluation.confusion_matrix))


def per_class_table(evaluation: Evaluation) -> pd.DataFrame:
    """Precision, recall, F1 and support per class (scikit-learn's figures, as stored at evaluation)."""
    table = pd.DataFrame(evaluation.per_class, columns=["name", "precision", "recall", "f1", "support"])
    return table.rename(columns={"name": "class"})


@dataclass(frozen=True)
class ConfusedPair:
    """Test images of one class that the model called another."""

    true_class: int
    predicted_class: int
    count: int
    share: float  # Of all test images of the true class.

    def describe(self) -> str:
        return (
            f"{CLASS_NAMES[self.true_class]} taken for {CLASS_NAMES[self.predicted_class]}: "
            f"{self.count:,} images ({self.share:.1%} of {CLASS_NAMES[self.true_class]})"
        )


def most_confused(matrix: list[list[int]], top: int = 5) -> list[ConfusedPair]:
    """The off-diagonal cells with the most images, largest first (ties by class order)."""
    cells = confusion_cells(matrix)
    mistakes = cells[(cells.true_index != cells.predicted_index) & (cells["count"] > 0)]
    mistakes = mistakes.sort_values("count", ascending=False, kind="stable").head(top)
    return [
        ConfusedPair(int(row.true_index), int(row.predicted_index), int(row.count), float(row.row_share))
        for row in mistakes.itertuples()
    ]


@dataclass(frozen=True)
class MistakenImage:
    """One test image the model got wrong, ready for a gallery."""

    index: int  # Position in the test set.
    confidence: float  # The model's probability for its (wrong) answer.
    caption: str  # "confidence 87% as Shirt".


def mistaken_images(
    evaluation: Evaluation, true_class: int, predicted_class: int, test_images: int
) -> list[MistakenImage]:
    """Test images of `true_class` called `predicted_class`, most confident first.

    test_images: size of the test set on hand; indices beyond it (an entry evaluated on other data) are dropped.
    """
    return [
        MistakenImage(index, confidence, f"confidence {confidence:.0%} as {CLASS_NAMES[predicted_class]}")
        for index, confidence in evaluation.mistakes_for(true_class, predicted_class)
        if index < test_images
    ]


# The three models side by side -------------------------------------------------------------------------


def entries_by_model(entries: Iterable[CacheEntry]) -> dict[str, list[CacheEntry]]:
    """Usable entries of each registry model, highest test accuracy first ([] when a model is not trained)."""
    grouped: dict[str, list[CacheEntry]] = {name: [] for name in MODEL_NAMES}
    for entry in entries:
        if entry.ok and entry.model_name in grouped:
            grouped[entry.model_name].append(entry)
    for candidates in grouped.values():
        candidates.sort(key=lambda entry: entry.test_accuracy or 0.0, reverse=True)
    return grouped


def best_entries(entries: Iterable[CacheEntry]) -> dict[str, CacheEntry | None]:
    """For each registry model, its most accurate usable entry, or None."""
    return {name: (candidates[0] if candidates else None) for name, candidates in entries_by_model(entries).items()}


def _row(name: str, entry: CacheEntry | None, latencies: Mapping[str, float]) -> dict:
    if entry is None:
        return {
            "model": MODEL_SPECS[name].title,
            "status": NOT_TRAINED,
            "first_filters": MODEL_SPECS[name].first_filters,
        }
    meta = entry.meta or {}
    evaluation = meta.get("evaluation", {})
    latency = latencies.get(entry.entry_id)
    return {
        "model": entry.title,
        "status": TRAINED,
        "entry_id": entry.entry_id,
        "first_filters": meta.get("spec", {}).get("first_filters"),
        "parameters": meta.get("parameters"),
        "forward_flops": meta.get("forward_flops"),
        "epochs": len(meta.get("history", {}).get("loss", [])) or None,
        "train_images": meta.get("train_images"),
        "training_seconds": meta.get("wall_seconds"),
        "training_images_per_second": meta.get("images_per_second"),
        "test_accuracy": evaluation.get("test_accuracy"),
        # Without mirror averaging; a model saved as trained answers from the picture alone anyway.
        "single_view_accuracy": (
            entry.single_view_accuracy if entry.single_view_accuracy is not None else evaluation.get("test_accuracy")
        ),
        "test_loss": evaluation.get("test_loss"),
        "macro_f1": evaluation.get("macro_f1"),
        "inference_images_per_second": evaluation.get("images_per_second"),
        "latency_ms": latency * 1000 if latency is not None else None,
    }


def comparison_table(
    chosen: Mapping[str, CacheEntry | None], latencies: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """One row per model (in the order given), every column of COLUMN_LABELS; untrained models say so.

    latencies: entry id → median seconds to predict one image (measured by the caller on this machine).
    """
    rows = [_row(name, entry, latencies or {}) for name, entry in chosen.items()]
    # Nullable integers, so an untrained row leaves cells empty instead of turning counts into floats.
    return pd.DataFrame(rows, columns=list(COLUMN_LABELS)).astype({column: "Int64" for column in INTEGER_COLUMNS})


def learning_curve_summary(history: Mapping[str, list[float]] | None) -> str:
    """The learning curves in two or three plain sentences (rise, over-fitting, whether to train longer)."""
    history = history or {}
    accuracy, validation = list(history.get("accuracy") or []), list(history.get("val_accuracy") or [])
    validation_loss = list(history.get("val_loss") or [])
    if not accuracy:
        return "No learning curves were recorded."
    epochs = len(accuracy)
    if not validation:
        return (
            f"Training accuracy went from {accuracy[0]:.1%} to {accuracy[-1]:.1%} in {epochs} epoch(s); "
            "no validation images were held out, so over-fitting cannot be judged."
        )
    sentences = [
        f"Validation accuracy went from {validation[0]:.1%} after epoch 1 to {validation[-1]:.1%} "
        f"after epoch {len(validation)} (training accuracy {accuracy[-1]:.1%})."
    ]
    gap = accuracy[-1] - validation[-1]
    if gap > OVERFITTING_GAP:
        sentences.append(
            f"Training accuracy ends {gap * 100:.1f} points above validation: the model has "
            "started to memorise its training images (over-fitting)."
        )
    elif gap < -0.01:
        sentences.append(
            "Validation accuracy is above training accuracy: dropout (and augmentation, if on) "
            "make training harder than testing, so there is no sign of over-fitting."
        )
    else:
        sentences.append("Training and validation accuracy stay close: no sign of over-fitting yet.")
    best_epoch = int(np.argmax(validation)) + 1
    lowest_loss_epoch = int(np.argmin(validation_loss)) + 1 if validation_loss else best_epoch
    if epochs == 1:
        sentences.append("With a single epoch there is no curve yet; train for more epochs to see one.")
    elif best_epoch == epochs and lowest_loss_epoch == epochs:
        sentences.append("Validation accuracy was still improving at the last epoch: more epochs would probably help.")
    else:
        sentences.append(
            f"Validation accuracy peaked at epoch {best_epoch} ({max(validation):.1%}) and "
            f"validation loss was lowest at epoch {lowest_loss_epoch}: more epochs alone would "
            "not help much."
        )
    return " ".join(sentences)


def train_command(model_name: str, config: TrainConfig | None = None) -> str:
    """The CLI command that trains `model_name` with `config` (the quick preset when None)."""
    import argparse

    from fmnist_core.cli.train_command import add_config_arguments

    # The settable fields are read from the train command itself, so this stays right when flags are added.
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    flags = set(vars(parser.parse_args([])))
    config = config or PRESETS["quick"]

    def differences(preset: TrainConfig) -> dict:
        wanted, base = config.to_dict(), preset.to_dict()
        return {key: value for key, value in wanted.items() if value != base[key]}

    # The closest preset: first the one whose settings the CLI cannot override match, then fewest flags.
    preset_name = min(
        PRESETS,
        key=lambda name: (sum(key not in flags for key in differences(PRESETS[name])), len(differences(PRESETS[name]))),
    )
    parts = ["python -m fmnist_core train", f"--model {model_name}", f"--preset {preset_name}"]
    unsettable = []
    for key, value in differences(PRESETS[preset_name]).items():
        if key not in flags:
            unsettable.append(f"{key}={value}")
        elif isinstance(value, bool):
            parts.append(f"--{'' if value else 'no-'}{key.replace('_', '-')}")
        else:
            parts.append(f"--{key.replace('_', '-')} {0 if value is None else value}")
    note = f"  # also {', '.join(unsettable)}, which the CLI cannot set" if unsettable else ""
    return " ".join(parts) + note


# Races (recorded by fmnist_core.race; the race page owns them, the report only summarises) ---------------

RACE_COLUMNS = ("lane", "phase", "seconds", "min_seconds", "max_seconds", "images_per_second", "speedup")


def load_races() -> list:
    """Every readable race as `race_file.StoredRace`: this machine's, newest first, then the recorded ones."""
    try:
        from fmnist_core.race_file import list_races
    except ModuleNotFoundError as error:
        if error.name != "fmnist_core.race_file":
            raise
        return []  # A checkout without the race feature simply has no races.
    return [stored for stored in list_races() if stored.result is not None]


def race_table(result) -> pd.DataFrame:
    """One row per lane that ran and scored phase: median seconds, spread, images/s, speed-up (a RaceResult)."""
    return pd.DataFrame(result.summary_rows(), columns=list(RACE_COLUMNS))


def race_workload(result) -> str:
    """What every lane of a race ran, in one sentence."""
    workload = result.workload
    return (
        f"Every lane trained {workload.spec.title} for {workload.train_batches} batches of {workload.batch_size} "
        f"images ({workload.precision}, XLA {'on' if workload.jit_compile else 'off'}) after "
        f"{workload.warmup_batches} untimed warm-up batches, then predicted {workload.inference_images:,} "
        f"images; times are the median of {result.repeats} repeat(s), each in a fresh process."
    )


# Measuring and the report itself ------------------------------------------------------------------------


def measure_latency(model, test_images: np.ndarray) -> float:
    """Median seconds for one warm single-image prediction, on the first test image."""
    return single_image_latency(model, np.asarray(test_images[0], dtype=np.float32) / 255.0)


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
    latencies: Mapping[str, float] | None = None,
    races: list | None = None,
    machine: Mapping | None = None,
    generated: str | None = None,
    sweep: SweepResult | None = None,
) -> Report:
    """The full report for one entry per registry model (None = not trained yet).

    latencies: entry id → seconds, or None when latency was not measured for this report.
    races: `load_races()`'s stored races; the newest three are summarised.
    machine: where the report is made (defaults to this one); generated: its date (defaults to now).
    sweep: the repeated runs that say which differences are real (`sweep_report.pick_sweep`); None: one seed.
    """
    table = comparison_table(chosen, latencies)
    machine = dict(machine or report_machine())
    trained = {name: entry for name, entry in chosen.items() if entry is not None}
    sections = [
        "# Fashion-MNIST: three CNNs compared",
        f"*Generated {generated or time.strftime('%Y-%m-%d %H:%M')} on {_machine_words(machine)}.*",
        "## The three models",
        _models_paragraph(),
        *_settings_warning(trained),
        "## Results",
        _markdown_table(table, latencies is not None),
        "## Seeds: is the difference real?",
        seeds_section(sweep, next((entry.config for entry in trained.values()), None)),
        "## Each model",
        *(_model_section(name, entry) for name, entry in chosen.items()),
        "## GPU vs CPU race",
        *_race_sections(races or []),
        "## How the numbers were measured",
        _measurement_notes(latencies is not None),
        "## Reproduce",
        "```bash\n"
        + "\n".join(train_command(name, entry.config if entry else None) for name, entry in chosen.items())
        + "\npython -m fmnist_core report --out report.md --csv table.csv\n```",
    ]
    return Report(table, "\n\n".join(sections) + "\n")


def format_duration(seconds: float | None) -> str:
    """'1 min 05 s' / '12.3 s' / '0.25 s' / '—'."""
    if seconds is None or seconds != seconds:
        return "—"
    if seconds >= 60:
        minutes, rest = divmod(int(round(seconds)), 60)
        return f"{minutes} min {rest:02d} s"
    return f"{seconds:.1f} s" if seconds >= 1 else f"{seconds:.2f} s"


def _format_cell(column: str, value) -> str:
    if value is None or pd.isna(value):
        return "—"
    if column == "forward_flops":
        return f"{value / 1e6:,.1f} M"
    if column == "training_seconds":
        return format_duration(value)
    if column in ("test_accuracy", "single_view_accuracy"):
        return f"{value:.1%}"
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
        if row["status"] == NOT_TRAINED:
            cells = [row["model"], _format_cell("first_filters", row["first_filters"]), NOT_TRAINED]
            cells += [""] * (len(columns) - len(cells))
        else:
            cells = [_format_cell(column, row[column]) for column in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _machine_words(machine: Mapping) -> str:
    gpus = [gpu.get("name", "GPU") for gpu in machine.get("gpus") or [] if isinstance(gpu, dict)]
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
            (entry.meta or {}).get("config", {}),
            **{
                key: value
                for key, value in (entry.meta or {}).get("spec", {}).items()
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


def _model_section(name: str, entry: CacheEntry | None) -> str:
    spec = (entry.meta or {}).get("spec", {}) if entry is not None else {}
    title = (
        f"### {spec.get('title', MODEL_SPECS[name].title)} "
        f"({spec.get('first_filters', MODEL_SPECS[name].first_filters)} first-layer filters)"
    )
    if entry is None:
        return (
            f"{title}\n\nNot trained yet. Train it with `{train_command(name)}` (or on the Train page), "
            "then make the report again."
        )
    meta, config = entry.meta or {}, entry.config
    trained_on = _machine_words(meta.get("machine") or {})
    lines = [
        f"- Cache entry `{entry.entry_id}`, trained {entry.created[:16].replace('T', ' ')} on {trained_on}"
        + (
            f": {config.epochs} epochs on {meta.get('train_images', 0):,} images, batch {config.batch_size}, "
            f"learning rate {config.learning_rate:g}, {config.precision} precision, "
            f"augmentation {'on' if config.augment else 'off'}."
            if config
            else "."
        )
    ]
    evaluation = evaluation_of(entry)
    if evaluation is not None:
        classes = sorted(evaluation.per_class, key=lambda row: row["f1"])
        lines.append(
            f"- Test accuracy **{evaluation.test_accuracy:.1%}** on {images_evaluated(evaluation):,} test "
            f"images, loss {evaluation.test_loss:.3f}, "
            f"macro F1 {evaluation.macro_f1:.3f}. Easiest class: {classes[-1]['name']} "
            f"(F1 {classes[-1]['f1']:.2f}); hardest: {classes[0]['name']} (F1 {classes[0]['f1']:.2f})."
        )
        note = mirror_note(entry)
        if note:
            lines.append(f"- {note}")
        pairs = most_confused(evaluation.confusion_matrix, top=3)
        if pairs:
            lines.append("- Most confused: " + "; ".join(pair.describe() for pair in pairs) + ".")
    lines.append(f"- Learning curves: {learning_curve_summary(meta.get('history'))}")
    return title + "\n\n" + "\n".join(lines)


def _race_sections(races: list) -> list[str]:
    if not races:
        return [
            "No race has been run yet. Run one on the GPU vs CPU race page or with `python -m fmnist_core "
            "race`; a race recorded on a GPU machine can be copied into `recorded_races/`."
        ]
    sections = []
    for stored in races[:3]:
        result = stored.result
        labels = {lane.lane_id: lane.label for lane in result.lanes}
        baseline = labels.get(result.speedups.get("baseline"), "the slowest lane")
        lines = [
            f"### Race {result.recorded_label}",
            "",
            race_workload(result),
            "",
            f"| Lane | Phase | Median time | Fastest–slowest | Images/s | Speed-up vs {baseline} |",
            "|---|---|--:|--:|--:|--:|",
        ]
        lines += [
            f"| {row['lane']} | {row['phase']} | {format_duration(row['seconds'])} | "
            f"{row['min_seconds']:.1f}–{row['max_seconds']:.1f} s | {row['images_per_second']:,.0f} | "
            f"{row['speedup']:.1f}× |"
            for row in result.summary_rows()
        ]
        skipped = [
            f"- {lane.label}: did not run ({lane.unavailable_reason})" for lane in result.lanes if not lane.available
        ]
        lines += ["", *skipped] if skipped else []
        sections.append("\n".join(lines))
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
            "- **Test accuracy, loss, macro F1, confusion matrix**: the 10,000 official Fashion-MNIST test images, "
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
