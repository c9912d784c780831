"""bfloat16 against float32 on this machine: is the presets' bfloat16 fast here, as `config.for_this_machine` assumes?

Prints the CPU's bfloat16 flags and what `machine.bfloat16_is_fast` answers, then measures, alternating the two
precisions so drift hits both alike:

  1. one convolution's gradient (a batch of 128 block-1 maps, 28×28×64, through a 3×3×64→64 kernel): the op
     that falls to a slow path in bfloat16 on CPUs without native support;
  2. Model 1 training through the CLI (`train --epochs 2 --train-limit 2048 --json` into an empty cache each time):
     training images per second, validation excluded.

Results are appended to benchmarks/results/precision_speed.jsonl with the machine. Run it alone on the machine:
    flock -x /work/cpu.lock python benchmarks/precision_speed.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from devtools.cli_training import train_through_cli
from devtools.results_lines import append_row
from fmnist_core.machine import bfloat16_is_fast, machine_info, native_bfloat16_flags

ROOT = Path(__file__).resolve().parents[1]

RESULTS = ROOT / "benchmarks" / "results" / "precision_speed.jsonl"
PRECISIONS = ("float32", "mixed_bfloat16")
TRAINING = ["--model", "model1", "--epochs", "2", "--train-limit", "2048"]


def conv_gradient_seconds(precision: str, repeats: int = 3) -> float:
    """Median seconds of one conv gradient (input and kernel) in `precision`'s compute dtype."""
    from fmnist_core.machine import import_tensorflow

    tf = import_tensorflow()
    dtype = tf.bfloat16 if "bfloat16" in precision else tf.float32
    maps = tf.cast(tf.random.stateless_normal([128, 28, 28, 64], seed=[1, 2]), dtype)
    kernel = tf.cast(tf.random.stateless_normal([3, 3, 64, 64], seed=[3, 4]), dtype)

    @tf.function
    def gradient(maps, kernel):
        with tf.GradientTape() as tape:
            tape.watch([maps, kernel])
            total = tf.reduce_sum(tf.cast(tf.nn.conv2d(maps, kernel, 1, "SAME"), tf.float32))
        return tape.gradient(total, [maps, kernel])

    [part.numpy() for part in gradient(maps, kernel)]  # Traced and warmed up.
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        [part.numpy() for part in gradient(maps, kernel)]
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def training_images_per_second(precision: str) -> float:
    """Model 1's training images/s over a short run in `precision`, trained through the CLI into an empty cache."""
    with tempfile.TemporaryDirectory(prefix="precision-speed-") as folder:
        return train_through_cli([*TRAINING, "--precision", precision], Path(folder)).output["images_per_second"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the two precisions (default 2)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    arguments = parser.parse_args(argv)
    native = list(native_bfloat16_flags())
    print(f"native bfloat16 flags: {', '.join(native) or 'none'}; bfloat16_is_fast: {bfloat16_is_fast()}")
    measured = {precision: {"conv_gradient_seconds": [], "training_images_per_second": []} for precision in PRECISIONS}
    for round_number in range(1, arguments.rounds + 1):
        for precision in PRECISIONS:
            seconds = conv_gradient_seconds(precision)
            speed = training_images_per_second(precision)
            measured[precision]["conv_gradient_seconds"].append(seconds)
            measured[precision]["training_images_per_second"].append(speed)
            print(f"round {round_number}, {precision}: conv gradient {seconds:.3f} s, Model 1 {speed:,.0f} img/s")
    medians = {
        precision: {key: statistics.median(values) for key, values in figures.items()}
        for precision, figures in measured.items()
    }
    float32, bfloat16 = medians["float32"], medians["mixed_bfloat16"]
    print(
        f"median: conv gradient {float32['conv_gradient_seconds']:.3f} s float32, "
        f"{bfloat16['conv_gradient_seconds']:.3f} s bfloat16; Model 1 {float32['training_images_per_second']:,.0f} "
        f"img/s float32, {bfloat16['training_images_per_second']:,.0f} img/s bfloat16 "
        f"(bfloat16 / float32 = {bfloat16['training_images_per_second'] / float32['training_images_per_second']:.2f})"
    )
    row = {
        "native_bfloat16_flags": native,
        "bfloat16_is_fast": bfloat16_is_fast(),
        "rounds": arguments.rounds,
        "training_command": "python -m fmnist_core train " + " ".join(TRAINING) + " --precision P --json",
        "measured": measured,
        "medians": medians,
        "machine": machine_info(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    append_row(arguments.results, row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
