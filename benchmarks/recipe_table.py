"""Old recipe against new, side by side: test accuracy, epochs, wall time, images/s and time to accuracy.

Every row is one `python -m fmnist_core train --model MODEL <every setting as a flag> --json` into a fresh
cache folder (so each model is really trained, and the new-recipe entries can be shipped with the app).
Time to 90 / 92 / 93 % is read from the entry's epoch history: the training wall time (validation included)
up to the end of the first epoch whose validation accuracy reached it. Rows go to a JSON-lines file as
they finish, so a long table resumes where it stopped. Run it with the machine to itself, e.g.
`flock -x /work/cpu.lock python benchmarks/recipe_table.py`.

    python benchmarks/recipe_table.py [--rows model1,model3] [--presets quick,class,full] [--cache DIR]
    python benchmarks/recipe_table.py --presets class --rows model1 --seeds 1,2,3,7 --results FILE   # other seeds
    python benchmarks/recipe_table.py --summary     # print the table from the results file
    python benchmarks/recipe_table.py --throughput 3  # full preset's speed: old and new recipe, alternating
    python benchmarks/recipe_table.py --throughput-summary  # its verdict over every round recorded

`--throughput ROUNDS` answers one question only: does the new full recipe train slower per image than the old
one? One run each, hours apart, cannot tell a 7 % difference from a shared machine's drift, so it trains Model 1
for THROUGHPUT_EPOCHS epochs with each recipe, old, new, old, new…, each into its own empty cache, and prints
every run's training images/s (validation excluded), the median of the per-round ratios new/old and the mean
change with its 95 % interval over every round recorded (new rounds are numbered after the file's last). With
`--variants` each round also trains the new recipe with one of the settings that differ put back to the old
recipe's (peak learning rate, shifts, schedule), to see whether any of them carries the difference.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import tempfile
from pathlib import Path

from devtools.cli_training import train_through_cli
from devtools.results_lines import append_row, read_rows
from fmnist_core.cli.train_command import add_config_arguments, command_line, config_from_arguments
from fmnist_core.config import PRESETS, TrainConfig
from fmnist_core.models.registry import MODEL_NAMES
from fmnist_core.statistics import summarize
from fmnist_core.store.cache import ModelCache

ROOT = Path(__file__).resolve().parents[1]

RESULTS = ROOT / "benchmarks" / "results" / "recipe_table.jsonl"
THROUGHPUT_RESULTS = ROOT / "benchmarks" / "results" / "recipe_throughput.jsonl"
THROUGHPUT_VARIANT_RESULTS = ROOT / "benchmarks" / "results" / "recipe_throughput_variants.jsonl"
THROUGHPUT_EPOCHS = 3  # The first epoch carries the graph's warm-up in both recipes alike.
THRESHOLDS = (0.90, 0.92, 0.93)

# What each preset was before issue 13; `class` had no preset, so its "old" is the floor the issue measured
# with the flags of the day (`train --epochs 2 --train-limit 0 --no-augment --schedule cosine`).
OLD_RECIPES: dict[str, TrainConfig] = {
    "quick": TrainConfig(),
    "class": TrainConfig(epochs=2, train_limit=None, schedule="cosine"),
    "full": TrainConfig(
        epochs=30, train_limit=None, augment=True, schedule="cosine", weight_decay=1e-4, early_stopping_patience=5
    ),
}
# Extra rows: the precision bound is checked on the new full preset (Model 1) in float32.
EXTRA_ROWS = {("full", "new, float32"): {"precision": "float32"}}


def train_arguments(model: str, config: TrainConfig) -> list[str]:
    """The arguments after `train` that give exactly `config`: the closest preset plus a flag per other setting."""
    arguments = shlex.split(command_line(model, config), comments=True)[4:]  # Drops "python -m fmnist_core train".
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    parser.add_argument("--model")
    if config_from_arguments(parser.parse_args(arguments)) != config:
        raise SystemExit(f"The command line cannot express {config}: add a flag for the missing setting.")
    return arguments


def seconds_to_reach(val_accuracy: list[float], epoch_seconds: list[float], threshold: float) -> float | None:
    """Wall time from the start of training to the end of the first epoch at or above `threshold`."""
    elapsed = 0.0
    for accuracy, seconds in zip(val_accuracy, epoch_seconds, strict=False):
        elapsed += seconds
        if accuracy >= threshold:
            return elapsed
    return None


def train_row(preset: str, recipe: str, model: str, config: TrainConfig, cache_dir: Path) -> dict:
    """Train one row through the command line into `cache_dir` and read its figures back from the cache entry."""
    run = train_through_cli(train_arguments(model, config), cache_dir)
    output = run.output
    record = ModelCache(cache_dir).inspect(output["entry_id"]).record
    val_accuracy, epoch_seconds = list(record.history.get("val_accuracy", ())), list(record.epoch_seconds)
    return {
        "preset": preset,
        "recipe": recipe,
        "model": model,
        "seed": config.seed,
        "command": command_line(model, config) + " --json",
        "test_accuracy": output["test_accuracy"],
        "single_view_accuracy": output["single_view_accuracy"],
        "epochs_run": output["epochs_run"],
        "best_epoch": record.best_epoch,
        "wall_seconds": output["wall_seconds"],
        "command_seconds": run.seconds,
        "images_per_second": output["images_per_second"],
        "val_accuracy": val_accuracy,
        "epoch_seconds": epoch_seconds,
        "seconds_to": {
            f"{threshold:.0%}": seconds_to_reach(val_accuracy, epoch_seconds, threshold) for threshold in THRESHOLDS
        },
        # What really trained: without a chosen precision `train` picks this machine's (config.for_this_machine).
        "config": record.config.to_dict(),
        "entry_id": output["entry_id"],
        "recipe_version": record.recipe_version,
        "machine": dict(record.machine),
    }


def planned_rows(presets: list[str], models: list[str], seeds: list[int]) -> list[tuple[str, str, str, TrainConfig]]:
    """(preset, recipe, model, config) for every row, in the order they are trained: model by model."""
    rows = []
    for seed in seeds:
        for model in models:
            for preset in presets:
                rows.append((preset, "old", model, OLD_RECIPES[preset].replace(seed=seed)))
                rows.append((preset, "new", model, PRESETS[preset].replace(seed=seed)))
                for (extra_preset, recipe), changes in EXTRA_ROWS.items():
                    if extra_preset == preset and model == "model1":
                        rows.append((preset, recipe, model, PRESETS[preset].replace(**changes, seed=seed)))
    return rows


def summary(path: Path) -> None:
    def seconds(value: float | None) -> str:
        return "—" if value is None else f"{value:,.0f} s"

    print(
        "| Preset | Model | Recipe | Seed | Epochs (best) | Test accuracy | Picture alone | Training wall time | img/s "
        "| to 90 % | to 92 % | to 93 % |"
    )
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in read_rows(path):
        alone = row["single_view_accuracy"]
        reach = row["seconds_to"]
        print(
            f"| {row['preset']} | {row['model']} | {row['recipe']} | {row['seed']} "
            f"| {row['epochs_run']} ({row['best_epoch']}) "
            f"| {row['test_accuracy']:.2%} | {'(same)' if alone is None else f'{alone:.2%}'} "
            f"| {seconds(row['wall_seconds'])} | {row['images_per_second']:,.0f} "
            f"| {seconds(reach['90%'])} | {seconds(reach['92%'])} | {seconds(reach['93%'])} |"
        )


def throughput_recipes(variants: bool) -> dict[str, TrainConfig]:
    """What each round of --throughput trains: old and new full recipe, and with `variants` the new one with one of
    the settings that differ set as the old recipe has it."""
    old, new = OLD_RECIPES["full"], PRESETS["full"]
    recipes = {"old": old, "new": new}
    if variants:
        recipes |= {
            "new, peak lr as old": new.replace(learning_rate=old.learning_rate),
            "new, shifts as old": new.replace(shift_pixels=old.shift_pixels),
            "new, schedule and beta 2 as old": new.replace(
                schedule=old.schedule, warmup_fraction=old.warmup_fraction, adam_beta_2=old.adam_beta_2
            ),
        }
    return recipes


def throughput(rounds: int, path: Path, variants: bool = False) -> None:
    """Old and new full recipe (Model 1, THROUGHPUT_EPOCHS epochs), alternating; rows appended to `path`, numbered
    after the rounds already there, then the verdict over every round in `path`."""
    first = max((row.get("round", 0) for row in read_rows(path)), default=0) + 1
    for round_number in range(first, first + rounds):
        for recipe, config in throughput_recipes(variants).items():
            with tempfile.TemporaryDirectory(prefix="recipe-throughput-") as folder:  # Nothing to reuse.
                row = train_row("full", recipe, "model1", config.replace(epochs=THROUGHPUT_EPOCHS), Path(folder))
            row["round"] = round_number
            append_row(path, row)
            print(f"round {round_number}, {recipe} recipe: {row['images_per_second']:,.0f} img/s", flush=True)
    print(throughput_verdict(read_rows(path)))


def throughput_verdict(rows: list[dict]) -> str:
    """New against old images/s over every round that trained both: the ratio per round, their median, and the
    mean change in % with its 95 % t interval over the rounds (a round's two runs share the machine's state of
    the moment, so the per-round change removes the drift they share); slower or faster only when the interval
    excludes 0."""
    speeds: dict[int, dict[str, float]] = {}
    for row in rows:
        speeds.setdefault(row["round"], {})[row["recipe"]] = row["images_per_second"]
    ratios = [pair["new"] / pair["old"] for _, pair in sorted(speeds.items()) if {"old", "new"} <= set(pair)]
    if not ratios:
        return "No round has trained both recipes yet."
    lines = [
        f"new/old images per second, per round: {', '.join(f'{ratio:.3f}' for ratio in ratios)}",
        f"median {statistics.median(ratios):.3f}",
    ]
    change = summarize([100 * (ratio - 1) for ratio in ratios])
    if change.half_width is None:
        return "\n".join([*lines, f"change {change.mean:+.1f} % on one round: one round cannot tell."])
    interval = f"{change.mean:+.1f} % ± {change.half_width:.1f} % (95 % interval, {change.count} rounds)"
    if change.excludes_zero:
        verdict = f"the new recipe trains {'slower' if change.mean < 0 else 'faster'} per image: {interval}"
    else:
        verdict = f"not distinguishable: {interval}, an interval that holds 0"
    return "\n".join([*lines, verdict])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default=",".join(MODEL_NAMES), help="models, comma-separated, in order")
    parser.add_argument("--presets", default="quick,class,full")
    parser.add_argument("--cache", type=Path, default=ROOT / "artifacts" / "recipe-table-cache")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--seeds", default="42", help="comma-separated seeds (default 42, the presets' own)")
    parser.add_argument("--summary", action="store_true")
    parser.add_argument("--throughput", type=int, metavar="ROUNDS", help="old against new full recipe, speed only")
    parser.add_argument(
        "--variants",
        action="store_true",
        help="with --throughput: also the new recipe with one old setting (their own results file)",
    )
    parser.add_argument(
        "--throughput-summary", action="store_true", help="the speed verdict over the rounds recorded (no training)"
    )
    args = parser.parse_args(argv)
    if args.throughput is not None and args.throughput < 1:
        parser.error(f"--throughput takes a number of rounds ≥ 1 (got {args.throughput})")
    if args.throughput and args.throughput_summary:
        parser.error("--throughput trains rounds and --throughput-summary only reads them: give one")
    if args.variants and not (args.throughput or args.throughput_summary):
        parser.error("--variants goes with --throughput ROUNDS or --throughput-summary")
    throughput_results = THROUGHPUT_VARIANT_RESULTS if args.variants else THROUGHPUT_RESULTS
    if args.throughput_summary:
        print(throughput_verdict(read_rows(throughput_results)))
        return 0
    if args.throughput:
        throughput(args.throughput, throughput_results, args.variants)
        return 0
    if not args.summary:
        done = {(row["preset"], row["recipe"], row["model"], row["seed"]) for row in read_rows(args.results)}
        seeds = [int(seed) for seed in args.seeds.split(",")]
        for preset, recipe, model, config in planned_rows(args.presets.split(","), args.rows.split(","), seeds):
            if (preset, recipe, model, config.seed) in done:
                continue
            print(f"training {model} {preset} ({recipe} recipe, seed {config.seed})…", flush=True)
            row = train_row(preset, recipe, model, config, args.cache)
            append_row(args.results, row)
            print(f"  {row['test_accuracy']:.2%} in {row['wall_seconds']:.0f} s", flush=True)
    summary(args.results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
