"""`train`: train a registry model (or reuse its cache entry) with Keras-style progress."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from fmnist_core.cli.output import ProgressBar, print_json
from fmnist_core.config import (
    PRECISIONS,
    PRESETS,
    SCHEDULES,
    TrainConfig,
    decimal_number,
    get_preset,
    precision_note,
    whole_number,
)
from fmnist_core.display import format_duration
from fmnist_core.models.registry import MODEL_NAMES, get_spec


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Preset plus per-field overrides; shared by `train` and `evaluate`."""
    parser.add_argument("--preset", default="quick", choices=list(PRESETS), help="starting settings (default quick)")
    parser.add_argument("--epochs", type=whole_number)
    parser.add_argument("--batch-size", type=whole_number)
    parser.add_argument("--learning-rate", type=decimal_number)
    parser.add_argument("--seed", type=whole_number)
    parser.add_argument("--train-limit", type=whole_number, help="training images to use (0 = all)")
    parser.add_argument("--validation-split", type=decimal_number)
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None, help="random flips (+ below)")
    parser.add_argument(
        "--shift-pixels", type=whole_number, help="with --augment: random shifts up to ± this (0 = none)"
    )
    parser.add_argument(
        "--erase-probability", type=decimal_number, help="with --augment: share of images randomly erased"
    )
    parser.add_argument("--schedule", choices=SCHEDULES, help="learning rate after the warm-up")
    parser.add_argument("--warmup-fraction", type=decimal_number, help="share of the steps spent warming up from 0")
    parser.add_argument("--label-smoothing", type=decimal_number)
    parser.add_argument("--ema-momentum", type=decimal_number, help="average the weights (e.g. 0.99; 0 = off)")
    parser.add_argument("--weight-decay", type=decimal_number, help="decoupled (AdamW) weight decay; 0 = plain Adam")
    parser.add_argument("--adam-beta-2", type=decimal_number, help="Adam's squared-gradient decay (default 0.999)")
    parser.add_argument(
        "--early-stopping-patience", type=whole_number, help="epochs without progress before stopping (0 = off)"
    )
    parser.add_argument("--precision", choices=PRECISIONS)
    parser.add_argument("--jit-compile", action=argparse.BooleanOptionalAction, default=None)


def config_from_arguments(arguments: argparse.Namespace):
    """The preset with every given override applied (validated by TrainConfig)."""
    changes = {}
    for field in dataclasses.fields(get_preset(arguments.preset)):
        value = getattr(arguments, field.name, None)
        if value is not None:
            changes[field.name] = value
    # 0 means "none" on the command line for the settings whose off-value is None.
    for name in ("train_limit", "ema_momentum", "early_stopping_patience"):
        if changes.get(name) == 0:
            changes[name] = None
    return get_preset(arguments.preset).replace(**changes)


def command_line(model_name: str, config: TrainConfig | None = None) -> str:
    """The `train` command that trains `model_name` with `config` (the quick preset when None): the closest preset
    plus one flag per other setting; settings no flag can set are named in a trailing comment."""
    # The settable fields are read from the parser itself, so this stays right when flags are added.
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


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model (or reuse the cached one)",
        description="Train Model 1/2/3 and cache it; the same settings reuse the cache.",
    )
    parser.add_argument("--model", required=True, choices=MODEL_NAMES)
    add_config_arguments(parser)
    parser.add_argument(
        "--retrain",
        action="store_true",
        help="train even if this exact model is cached (into your own cache: a shipped model is kept as it is)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=run)


def run(arguments: argparse.Namespace) -> int:
    # The pipeline (jobs, training, data) is imported here, not when the parser is built for every command.
    from fmnist_core.data.loading import last_load_report
    from fmnist_core.store.cache import ModelCache
    from fmnist_core.training.pipeline import preset_here, train_and_cache

    config = config_from_arguments(arguments)
    spec = get_spec(arguments.model)
    note = None  # Said when the training starts (with --json: once it is done), never before an error or on reuse.
    if arguments.precision is None:  # --retrain too: a cached bfloat16 model is retrained as it is.
        chosen = preset_here(spec, config, ModelCache())
        if chosen != config:
            note = f"note: {precision_note(config)} (--precision mixed_bfloat16 keeps bfloat16)"
        config = chosen
    bar = ProgressBar()

    def progress(event) -> None:
        if event.kind == "start" and note:
            print(note, file=sys.stderr)
        shown = {k: v for k, v in event.metrics.items() if k in ("loss", "accuracy", "val_loss", "val_accuracy")}
        rate = f"{event.images_per_second:,.0f} img/s"
        if event.kind == "start":
            bar.message(
                f"Training {spec.title} ({spec.first_filters} first-layer filters), "
                f"{event.batches} batches × {event.epochs} epochs"
            )
        elif event.kind == "batch":
            if event.batch == 1 and bar.interactive:
                bar.message(f"Epoch {event.epoch}/{event.epochs}")
            bar.update(event.batch, event.batches, event.elapsed_seconds, shown, rate)
        else:
            if not bar.interactive:
                bar.message(f"Epoch {event.epoch}/{event.epochs}")
            bar.finish(event.batches, event.batches, event.elapsed_seconds, shown, rate)

    outcome = train_and_cache(
        spec,
        config,
        progress=None if arguments.json else progress,  # Per-batch reports cost a little speed: none for --json.
        retrain=arguments.retrain,
        command=command_line(spec.name, config),
    )
    if arguments.json and note and not outcome.reused:
        print(note, file=sys.stderr)
    loaded = last_load_report()  # None when the model came from the cache and no data was read.
    if loaded is not None and loaded.note:
        print(f"note: {loaded.note}", file=sys.stderr)
    entry, record = outcome.entry, outcome.entry.record
    if arguments.json:
        print_json(
            {
                "entry_id": entry.entry_id,
                "reused": outcome.reused,
                "provenance": entry.provenance,
                "model": spec.name,
                "config": config.to_dict(),
                "test_accuracy": record.test_accuracy,
                "single_view_accuracy": record.single_view_accuracy,
                "test_loss": record.evaluation.test_loss,
                "wall_seconds": record.wall_seconds,
                "images_per_second": record.images_per_second,
                "epochs_run": record.epochs_run,
                "parameters": record.parameters,
                "forward_flops": record.forward_flops,
                "speed_settings": record.speed_settings,
                "path": str(entry.path),
            }
        )
        return 0
    how = "Reused cached" if outcome.reused else "Trained and cached"
    print(f"{how} {entry.entry_id}, {entry.provenance}")
    print(f"  test accuracy {record.test_accuracy:.2%}  (loss {record.evaluation.test_loss:.4f})")
    if record.single_view_accuracy is not None:
        print(
            f"  ({record.single_view_accuracy:.2%} from the picture alone; "
            "the saved model averages each picture with its mirror image)"
        )
    speed = record.speed_settings
    print(
        f"  {record.epochs_run} epochs in {format_duration(record.wall_seconds)}, "
        f"{record.images_per_second:,.0f} training images/s ({speed['precision']}, batch {speed['batch_size']}, "
        f"{speed['device']})"
    )
    return 0
