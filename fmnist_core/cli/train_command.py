"""`train`: train a registry model (or reuse its cache entry) with Keras-style progress."""

from __future__ import annotations

import argparse
import dataclasses

from fmnist_core.cli.output import ProgressBar, print_json
from fmnist_core.config import PRECISIONS, PRESETS, SCHEDULES, get_preset
from fmnist_core.models import MODEL_NAMES


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Preset plus per-field overrides; shared by `train` and `evaluate`."""
    parser.add_argument("--preset", default="quick", choices=list(PRESETS), help="starting settings (default quick)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--train-limit", type=int, help="training images to use (0 = all)")
    parser.add_argument("--validation-split", type=float)
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None, help="random flips (+ below)")
    parser.add_argument("--shift-pixels", type=int, help="with --augment: random shifts up to ± this (0 = none)")
    parser.add_argument("--erase-probability", type=float, help="with --augment: share of images randomly erased")
    parser.add_argument("--schedule", choices=SCHEDULES, help="learning rate after the warm-up")
    parser.add_argument("--warmup-fraction", type=float, help="share of the steps spent warming up from 0")
    parser.add_argument("--label-smoothing", type=float)
    parser.add_argument("--ema-momentum", type=float, help="average the weights (e.g. 0.99; 0 = off)")
    parser.add_argument("--weight-decay", type=float, help="decoupled (AdamW) weight decay; 0 = plain Adam")
    parser.add_argument("--adam-beta-2", type=float, help="Adam's squared-gradient decay (default 0.999)")
    parser.add_argument("--early-stopping-patience", type=int, help="epochs without progress before stopping (0 = off)")
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


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model (or reuse the cached one)",
        description="Train Model 1/2/3 and cache it; the same settings reuse the cache.",
    )
    parser.add_argument("--model", required=True, choices=MODEL_NAMES)
    add_config_arguments(parser)
    parser.add_argument("--retrain", action="store_true", help="train even if this exact model is cached")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=run)


def run(arguments: argparse.Namespace) -> int:
    from fmnist_core.models import get_spec
    from fmnist_core.pipeline import train_and_cache

    config = config_from_arguments(arguments)
    spec = get_spec(arguments.model)
    bar = ProgressBar()

    def progress(event) -> None:
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

    outcome = train_and_cache(spec, config, progress=None if arguments.json else progress, retrain=arguments.retrain)
    entry = outcome.entry
    meta = entry.meta
    if arguments.json:
        print_json(
            {
                "entry_id": entry.entry_id,
                "reused": outcome.reused,
                "model": spec.name,
                "config": config.to_dict(),
                "test_accuracy": entry.test_accuracy,
                "single_view_accuracy": entry.single_view_accuracy,
                "test_loss": meta["evaluation"]["test_loss"],
                "wall_seconds": meta["wall_seconds"],
                "images_per_second": meta["images_per_second"],
                "epochs_run": len(meta["history"]["loss"]),
                "parameters": meta["parameters"],
                "forward_flops": meta["forward_flops"],
                "speed_settings": meta["speed_settings"],
                "path": str(entry.path),
            }
        )
        return 0
    how = "Reused cached" if outcome.reused else "Trained and cached"
    print(f"{how} {entry.entry_id}")
    print(f"  test accuracy {entry.test_accuracy:.2%}  (loss {meta['evaluation']['test_loss']:.4f})")
    if entry.single_view_accuracy is not None:
        print(
            f"  ({entry.single_view_accuracy:.2%} from the picture alone; "
            "the saved model averages each picture with its mirror image)"
        )
    print(
        f"  {len(meta['history']['loss'])} epochs in {meta['wall_seconds']:.1f} s, "
        f"{meta['images_per_second']:,.0f} training images/s ({meta['speed_settings']['precision']}, "
        f"batch {meta['speed_settings']['batch_size']}, {meta['speed_settings']['device']})"
    )
    return 0
