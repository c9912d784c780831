"""Where TensorFlow's CPU memory comes from, measured alone: malloc against TensorFlow's pooling BFC allocator.

`fmnist_core.machine` turns the pool on before TensorFlow's import (TF_CPU_ALLOCATOR_USE_BFC=true) unless the
user chose. This script trains the same model with the same settings through the CLI, into an empty cache each
time, alternating the two allocators so drift on a shared machine hits both alike, and prints for each run the
seconds of every epoch, training images/s, the final losses (the maths is the same, so they must agree) and the
training process's peak memory. Lines go to benchmarks/results/allocator_speed.jsonl with the machine.

    flock -x /work/cpu.lock python benchmarks/allocator_speed.py --model model3 --preset full --epochs 3 \\
        --train-limit 8000 --precision float32 [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from devtools.cli_training import train_through_cli
from devtools.results_lines import append_row
from fmnist_core.config import PRESETS
from fmnist_core.machine import CPU_ALLOCATOR_VARIABLE, machine_info
from fmnist_core.models.registry import MODEL_NAMES

ROOT = Path(__file__).resolve().parents[1]

RESULTS = ROOT / "benchmarks" / "results" / "allocator_speed.jsonl"
ALLOCATORS = {"malloc": "false", "bfc": "true"}


def train_once(allocator: str, training: list[str]) -> dict:
    """One CLI training run with `allocator`, into an empty cache: its record's figures and its peak memory."""
    with tempfile.TemporaryDirectory(prefix="allocator-speed-") as folder:
        run = train_through_cli(training, Path(folder), {CPU_ALLOCATOR_VARIABLE: ALLOCATORS[allocator]})
        result = run.output
        meta = json.loads((Path(result["path"]) / "meta.json").read_text())
    return {
        "allocator": allocator,
        "recorded_allocator": result["speed_settings"].get("cpu_allocator"),
        "epoch_seconds": meta["epoch_seconds"],
        "images_per_second": result["images_per_second"],
        "wall_seconds": result["wall_seconds"],
        "final_loss": meta["history"]["loss"][-1],
        "final_val_accuracy": meta["history"]["val_accuracy"][-1],
        "test_accuracy": result["test_accuracy"],
        "peak_memory_gb": run.peak_memory_gb,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="model3", choices=MODEL_NAMES)
    parser.add_argument("--preset", default="full", choices=list(PRESETS))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-limit", type=int, default=8000, help="training images (0 = all)")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the two allocators (default 2)")
    parser.add_argument("--note", default="", help="a sentence stored with the line")
    parser.add_argument("--results", type=Path, default=RESULTS)
    arguments = parser.parse_args(argv)
    if arguments.rounds < 1 or arguments.epochs < 1 or arguments.train_limit < 0:
        parser.error("--rounds and --epochs must be ≥ 1 and --train-limit ≥ 0")
    training = [
        "--model", arguments.model, "--preset", arguments.preset, "--epochs", str(arguments.epochs),
        "--train-limit", str(arguments.train_limit), "--precision", arguments.precision,
    ]  # fmt: skip
    runs = []
    for round_number in range(1, arguments.rounds + 1):
        for allocator in ALLOCATORS:
            run = train_once(allocator, training)
            runs.append({"round": round_number, **run})
            print(
                f"round {round_number}, {allocator:>6}: epochs {', '.join(f'{s:.1f}' for s in run['epoch_seconds'])} s,"
                f" {run['images_per_second']:,.0f} img/s, final loss {run['final_loss']:.6f}, validation"
                f" {run['final_val_accuracy']:.2%}, test {run['test_accuracy']:.2%},"
                f" peak {run['peak_memory_gb']:.2f} GB",
                flush=True,
            )
    summary = {}
    for allocator in ALLOCATORS:
        mine = [run for run in runs if run["allocator"] == allocator]
        summary[allocator] = {
            # The first epoch also traces the graph: the later ones are the steady pace.
            "median_later_epoch_seconds": statistics.median(
                seconds for run in mine for seconds in (run["epoch_seconds"][1:] or run["epoch_seconds"])
            ),
            "median_images_per_second": statistics.median(run["images_per_second"] for run in mine),
            "max_peak_memory_gb": max(run["peak_memory_gb"] for run in mine),
        }
    malloc, bfc = summary["malloc"], summary["bfc"]
    same = len({(run["final_loss"], run["final_val_accuracy"]) for run in runs}) == 1
    print(
        f"median: {malloc['median_images_per_second']:,.0f} img/s malloc, {bfc['median_images_per_second']:,.0f} img/s"
        f" bfc ({bfc['median_images_per_second'] / malloc['median_images_per_second']:.2f}×); later epochs "
        f"{malloc['median_later_epoch_seconds']:.1f} s against {bfc['median_later_epoch_seconds']:.1f} s; peak memory "
        f"{malloc['max_peak_memory_gb']:.2f} GB against {bfc['max_peak_memory_gb']:.2f} GB; final losses "
        + ("identical in every run" if same else "DIFFER between runs")
    )
    row = {
        "training_command": "python -m fmnist_core train " + " ".join(training) + f" (with {CPU_ALLOCATOR_VARIABLE})",
        "runs": runs,
        "summary": summary,
        "identical_losses": same,
        "note": arguments.note,
        "machine": machine_info(include_gpus=False),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    append_row(arguments.results, row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
