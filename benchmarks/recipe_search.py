"""The lever search behind the `class` and `full` presets, judged on the 6,000 validation images only.

Each candidate is a named set of changes to a starting recipe; every candidate is trained on all 54,000
training images with each seed given, and scored on that seed's validation images by the rule the saved
model follows (mirror-averaged when it trained with flips, else the network alone). The test set is never
read here. One JSON line per (stage, candidate, model, seed) goes to the results file, so an interrupted
search resumes where it stopped and every figure in docs/results/training.md can be traced to a line.

    python benchmarks/recipe_search.py --stage class-levers [--seeds 42,7] [--model model1]
    python benchmarks/recipe_search.py --stage class-levers --summary    # print the table from the file

Stages: `class-*` start from the floor of issue 13 (2 epochs, batch 256, Adam 2e-3, cosine, no augmentation);
`full-levers` and `full-stack` from the earlier full preset cut to 15 epochs (flips, ±2 px shifts, cosine, AdamW
1e-4, early stopping); `full-model3` from today's full preset.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from devtools.results_lines import append_row, read_rows
from fmnist_core.config import PRESETS, TrainConfig, for_this_machine
from fmnist_core.statistics import paired_difference

RESULTS = Path(__file__).resolve().parent / "results" / "recipe_search.jsonl"

CLASS_FLOOR = TrainConfig(epochs=2, train_limit=None, schedule="cosine")
FULL_AT_15 = TrainConfig(
    epochs=15,
    train_limit=None,
    augment=True,
    schedule="cosine",
    weight_decay=1e-4,
    early_stopping_patience=5,
)

# stage → (starting recipe, {candidate name: changes}). Each lever stage changes one thing at a time.
STAGES: dict[str, tuple[TrainConfig, dict[str, dict]]] = {
    "class-levers": (
        CLASS_FLOOR,
        {
            "floor": {},
            "warm-up 10 %": {"warmup_fraction": 0.1},
            "peak lr 4e-3": {"learning_rate": 4e-3},
            "linear decay": {"schedule": "linear"},
            "label smoothing 0.1": {"label_smoothing": 0.1},
            "EMA 0.99": {"ema_momentum": 0.99},
            "batch 128": {"batch_size": 128},
            "flips + mirror": {"augment": True, "shift_pixels": 0},
            "flips + shifts + mirror": {"augment": True},
            "AdamW 5e-2": {"weight_decay": 5e-2},
        },
    ),
    # Round 2: the levers that paid alone (warm-up, linear decay, batch 128), stacked; then one change at a time.
    "class-stack": (
        CLASS_FLOOR.replace(warmup_fraction=0.1, schedule="linear", batch_size=128),
        {
            "round-1 floor": {"warmup_fraction": 0.0, "schedule": "cosine", "batch_size": 256},
            "warm-up + linear + batch 128": {},
            "peak lr 3e-3": {"learning_rate": 3e-3},
            "warm-up 20 %": {"warmup_fraction": 0.2},
            "batch 64": {"batch_size": 64},
            "Adam beta 2 0.99": {"adam_beta_2": 0.99},
        },
    ),
    # Round 3: the round-2 winners (batch 64, Adam beta 2 0.99) together, and the peak and warm-up around them.
    "class-stack-64": (
        CLASS_FLOOR.replace(warmup_fraction=0.1, schedule="linear", batch_size=64),
        {
            "round-2 stack at batch 64": {},
            "batch 64 + beta 2 0.99": {"adam_beta_2": 0.99},
            "+ peak lr 3e-3": {"adam_beta_2": 0.99, "learning_rate": 3e-3},
            "+ peak lr 1.5e-3": {"adam_beta_2": 0.99, "learning_rate": 1.5e-3},
            "+ warm-up 5 %": {"adam_beta_2": 0.99, "warmup_fraction": 0.05},
        },
    ),
    # Round 4: higher peaks and a faster-adapting Adam around the round-3 winner (batch 64, beta 2 0.99, 3e-3).
    "class-peak": (
        CLASS_FLOOR.replace(
            warmup_fraction=0.1, schedule="linear", batch_size=64, adam_beta_2=0.99, learning_rate=3e-3
        ),
        {
            "round-3 winner (the class preset)": {},
            "peak lr 4e-3": {"learning_rate": 4e-3},
            "beta 2 0.95": {"adam_beta_2": 0.95},
        },
    ),
    # The quick preset (3 epochs of 18,000 images, constant 2e-3): does the class recipe lift it too?
    "quick": (
        TrainConfig(),
        {
            "quick as it was": {},
            "warm-up 10 % + linear decay": {"warmup_fraction": 0.1, "schedule": "linear"},
            "warm-up + linear + batch 128": {"warmup_fraction": 0.1, "schedule": "linear", "batch_size": 128},
            "class recipe (batch 64, beta 2 0.99, 3e-3)": {
                "warmup_fraction": 0.1,
                "schedule": "linear",
                "batch_size": 64,
                "adam_beta_2": 0.99,
                "learning_rate": 3e-3,
            },
            "class recipe at batch 128": {
                "warmup_fraction": 0.1,
                "schedule": "linear",
                "batch_size": 128,
                "adam_beta_2": 0.99,
                "learning_rate": 3e-3,
            },
        },
    ),
    # Full, stacked: flips only (the best augmentation alone) with the short-run schedule, around its peak.
    "full-stack": (
        FULL_AT_15.replace(shift_pixels=0, warmup_fraction=0.1, schedule="linear", adam_beta_2=0.99),
        {
            "flips only + short-run schedule, peak 3e-3": {"learning_rate": 3e-3},
            "peak 6e-3": {"learning_rate": 6e-3},
            "peak 1e-2": {"learning_rate": 1e-2},
            "peak 6e-3, shifts of ±1 px": {"learning_rate": 6e-3, "shift_pixels": 1},
        },
    ),
    # Model 3 alone, from the full preset (searched on Model 1): the lever that the width suggests (Adam's step
    # moves a 4× wider sum into block 2, so a lower peak), the one decay lever that paid alone on Model 1, and the
    # stronger shifts a wider network might use; then twice the steps (batch 128) and softer targets. The one that
    # paid (label smoothing) was then run on Models 1 and 2 too (`--model model1 --only 'full preset,label ...'`).
    # Last, the other direction from ±2 px (which cost most): no shifts, the flips alone; and weight averaging
    # over the last few epochs of the decay (EMA 0.999: ~1,000 of the run's 3,165 steps).
    "full-model3": (
        PRESETS["full"],
        {
            "full preset": {},
            "peak lr 3e-3": {"learning_rate": 3e-3},
            "peak lr 4e-3": {"learning_rate": 4e-3},
            "AdamW 5e-2": {"weight_decay": 5e-2},
            "shifts of ±2 px": {"shift_pixels": 2},
            "batch 128": {"batch_size": 128},
            "label smoothing 0.1": {"label_smoothing": 0.1},
            "flips only (no shifts)": {"shift_pixels": 0},
            "EMA 0.999": {"ema_momentum": 0.999},
        },
    ),
    # The full preset's levers, one at a time, from the earlier full recipe cut to 15 epochs (one seed: ~10 min each).
    "full-levers": (
        FULL_AT_15,
        {
            "earlier full recipe, 15 epochs": {},
            "warm-up 10 %": {"warmup_fraction": 0.1},
            "flips only (no shifts)": {"shift_pixels": 0},
            "shifts of ±1 px": {"shift_pixels": 1},
            "linear decay": {"schedule": "linear"},
            "Adam beta 2 0.99": {"adam_beta_2": 0.99},
            "label smoothing 0.1": {"label_smoothing": 0.1},
            "EMA 0.99": {"ema_momentum": 0.99},
            "random erasing 0.5": {"erase_probability": 0.5},
            "AdamW 5e-2": {"weight_decay": 5e-2},
            "peak lr 6e-3": {"learning_rate": 6e-3},
            "peak lr 6e-3 after a 10 % warm-up": {"learning_rate": 6e-3, "warmup_fraction": 0.1},
        },
    ),
}


def candidate_config(stage: str, name: str, seed: int) -> TrainConfig:
    """A candidate's settings, in the precision this machine trains fast in (`config.for_this_machine`)."""
    start, candidates = STAGES[stage]
    return for_this_machine(start.replace(**candidates[name], seed=seed))


def find_row(rows: list[dict], model: str, config: TrainConfig) -> dict | None:
    """The result of training `model` with exactly `config`, whichever stage trained it (settings added since
    then read as their defaults, which is what those runs used)."""
    for row in rows:
        if row["model"] == model and TrainConfig.from_dict(row["config"]) == config:
            return row
    return None


def validation_accuracy(result, data) -> tuple[float, float]:
    """(saved-model rule, network alone) accuracy on the run's validation images."""
    import numpy as np

    from fmnist_core.evaluate.evaluation import predict_probabilities
    from fmnist_core.models.mirror import mirror_averaged
    from fmnist_core.training.loop import split_indices

    (x_train, y_train), _ = data
    _, validation_index = split_indices(len(x_train), result.config)
    images, labels = x_train[validation_index], y_train[validation_index]

    def accuracy(model) -> float:
        return float(np.mean(predict_probabilities(model, images).argmax(axis=1) == labels))

    alone = accuracy(result.model)
    return (accuracy(mirror_averaged(result.model)) if result.config.augment else alone), alone


def run_stage(stage: str, model: str, seeds: list[int], only: list[str] | None, path: Path) -> None:
    rows = read_rows(path)
    asked = [(name, seed, candidate_config(stage, name, seed)) for name in only or STAGES[stage][1] for seed in seeds]
    pending = [(name, seed, config) for name, seed, config in asked if find_row(rows, model, config) is None]
    if not pending:
        return  # Everything asked for is measured: no data loaded, no TensorFlow started.
    import keras

    from fmnist_core.data.loading import load_fashion_mnist
    from fmnist_core.training.loop import train

    data = load_fashion_mnist()
    for name, seed, config in pending:
        started = time.perf_counter()
        result = train(model, config, data=data)
        saved_rule, alone = validation_accuracy(result, data)
        row = {
            "stage": stage,
            "candidate": name,
            "model": model,
            "seed": seed,
            "validation_accuracy": saved_rule,
            "validation_accuracy_alone": alone,
            "val_accuracy_by_epoch": result.history.get("val_accuracy"),
            "epoch_seconds": result.epoch_seconds,
            "images_per_second": result.images_per_second,
            "command_seconds": time.perf_counter() - started,
            "config": config.to_dict(),
        }
        append_row(path, row)
        print(
            f"{stage:14} {name:28} {model} seed {seed:>3}: validation {saved_rule:.2%} "
            f"(alone {alone:.2%}), {result.images_per_second:,.0f} img/s",
            flush=True,
        )
        keras.backend.clear_session()


def summary(stage: str, model: str, seeds: list[int], path: Path) -> None:
    """Validation accuracy per candidate and seed, the mean, and its gain over the stage's first candidate.

    The gain is paired seed by seed (`fmnist_core.statistics.paired_difference`, the rule the sweeps use); with two
    or more seeds it carries its 95 % t interval and how many seeds agree with its sign: a lever is told apart from
    the seed's luck only when that interval excludes 0.
    """
    rows = read_rows(path)
    print(f"{stage} ({model}; validation accuracy of the saved model, seeds {', '.join(map(str, seeds))})")
    each_width = max(18, 8 * len(seeds) - 1)  # One "94.58%" and a space per seed.
    print(f"{'candidate':44} {'each seed':>{each_width}} {'mean':>7} {'gain':>6} {'95 % interval':>13} {'img/s':>6}")
    first = None  # (name, {seed: validation accuracy in %}) of the stage's first candidate run for every seed.
    for name in STAGES[stage][1]:
        found = [find_row(rows, model, candidate_config(stage, name, seed)) for seed in seeds]
        if any(row is None for row in found):
            print(f"{name:44} (not run for every seed)")
            continue
        percent = {seed: 100 * row["validation_accuracy"] for seed, row in zip(seeds, found, strict=True)}
        first = first or (name, percent)
        gain = paired_difference(*first, name, percent)
        interval = ""
        if name != first[0] and gain.summary.half_width is not None:
            interval = f"± {gain.summary.half_width:.2f} ({gain.agreeing_seeds}/{gain.summary.count})"
        each = " ".join(f"{value / 100:.2%}" for value in percent.values())
        mean = statistics.mean(percent.values()) / 100
        shown_gain = round(gain.summary.mean, 2) + 0.0  # A gain that rounds to nothing prints +0.00, not -0.00.
        speed = statistics.median(row["images_per_second"] for row in found)
        print(f"{name:44} {each:>{each_width}} {mean:7.2%} {shown_gain:+6.2f} {interval:>13} {speed:6,.0f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage", required=True, choices=list(STAGES))
    parser.add_argument("--model", default="model1")
    parser.add_argument("--seeds", default="42,7", help="comma-separated seeds (default 42,7)")
    parser.add_argument("--only", help="comma-separated candidate names to run (default: all of the stage)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--summary", action="store_true", help="print the stage's table from the results file")
    args = parser.parse_args(argv)
    seeds = [int(seed) for seed in args.seeds.split(",")]
    if not args.summary:
        only = args.only.split(",") if args.only else None
        unknown = [name for name in only or [] if name not in STAGES[args.stage][1]]
        if unknown:
            valid = ", ".join(STAGES[args.stage][1])
            parser.error(f"no candidate {', '.join(map(repr, unknown))} in stage {args.stage}: {valid}")
        run_stage(args.stage, args.model, seeds, only, args.results)
    summary(args.stage, args.model, seeds, args.results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
