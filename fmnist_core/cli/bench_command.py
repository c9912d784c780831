"""`bench`: training throughput of the project's path vs a plain Keras loop, and the precision check."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fmnist_core.cli.arguments import model_names
from fmnist_core.cli.output import print_json
from fmnist_core.config import (
    PRECISIONS,
    PRESETS,
    TrainConfig,
    for_this_machine,
    machine_precision_reason,
    whole_number,
)
from fmnist_core.errors import ConfigError
from fmnist_core.files import check_output_file, write_output
from fmnist_core.models.registry import MODEL_NAMES
from fmnist_core.training.bench import precision_accuracy_check, run_bench


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="training throughput vs plain Keras (and precision check)",
        description="Train each model for a fixed number of images two ways, "
        "interleaved, and report images/s, speed-up and FLOP-rate share.",
    )
    parser.add_argument("--models", default=",".join(MODEL_NAMES), help="comma-separated (default all three)")
    parser.add_argument("--images", type=whole_number, default=12800, help="training images per timed run")
    parser.add_argument("--repeats", type=whole_number, default=2, help="interleaved repeats per path")
    parser.add_argument(
        "--precision", choices=PRECISIONS, help="the fast path's precision (default: the one this machine trains in)"
    )
    parser.add_argument(
        "--accuracy",
        action="store_true",
        help="also train the quick preset in mixed bfloat16 and in float32 and compare test accuracy",
    )
    parser.add_argument("--out", type=Path, help="write the JSON result here")
    parser.add_argument("--json", action="store_true", help="print the JSON result")
    parser.set_defaults(handler=run)


PLAIN_PRECISION_REASON = "what a Keras tutorial trains in"


def fast_path_config(precision: str | None) -> tuple[TrainConfig, str]:
    """The fast path's settings and why it runs in its precision: as chosen, else as this machine trains."""
    if precision is not None:
        return TrainConfig(precision=precision), "chosen with --precision"
    return for_this_machine(TrainConfig()), machine_precision_reason()


def run(arguments: argparse.Namespace) -> int:
    names = model_names(arguments.models)
    if arguments.images < 256 or arguments.repeats < 1:
        raise ConfigError("--images must be ≥ 256 and --repeats ≥ 1.")
    if arguments.out:
        check_output_file(arguments.out, "--out")
    log = (lambda text: None) if arguments.json else print
    config, reason = fast_path_config(arguments.precision)
    log(f"Fast path in {config.precision}: {reason}.")
    result = run_bench(names, images=arguments.images, repeats=arguments.repeats, config=config, log=log)
    result["fast_path"]["precision_reason"] = reason
    result["plain_path"] = {"precision": "float32", "precision_reason": PLAIN_PRECISION_REASON}
    if arguments.accuracy:
        log("Precision check (quick preset):")
        result["precision_check"] = [precision_accuracy_check(name, PRESETS["quick"], log=log) for name in names]
    if arguments.out:
        write_output(arguments.out, json.dumps(result, indent=2, default=str), "--out")
    if arguments.json:
        print_json(result)
        return 0
    print()
    print(f"{'model':<8}{'fast img/s':>12}{'plain img/s':>13}{'speed-up':>10}{'fast % peak':>13}{'plain % peak':>14}")
    for row in result["models"]:
        print(
            f"{row['model']:<8}{row['fast_median']:>12,.0f}{row['plain_median']:>13,.0f}{row['speedup']:>9.2f}×"
            f"{row['fast_peak_share']:>12.0%}{row['plain_peak_share']:>14.0%}"
        )
    fast = result["fast_path"]
    print(
        f"fast path: {fast['precision']} ({fast['precision_reason']}), batch {fast['batch_size']}, "
        f"jit_compile={fast['jit_compile']}."
    )
    print(f"plain: float32 ({PLAIN_PRECISION_REASON}), NumPy arrays, batch 32, Keras defaults.")
    print(f"Peaks: {result['peak_gflops']['float32']:.0f} GFLOP/s fp32, {result['peak_gflops']['bfloat16']:.0f} bf16.")
    for check in result.get("precision_check", []):
        print(
            f"{check['model']}: {' vs '.join(check['results'])} test accuracy difference "
            f"{check['difference_points']:+.2f} points"
        )
    return 0
