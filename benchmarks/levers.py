"""Which levers make the training path fast? Each one measured on its own, on this machine, in one run.

1. Batch norm + ReLU, forward and backward, on one batch of 256 maps: Keras' layer against the fused kernel
   (`fmnist_core.models.fused_norm`), in bfloat16 and float32.
2. Block 1's order: convolution → batch norm → ReLU → pool (architecture 1) against convolution → pool →
   batch norm → ReLU (architecture 2, the registry's), forward and backward, fused batch norm, bfloat16.
3. Whole models, one fit() each over the same images, interleaved: the fast path in this machine's precision
   (`config.for_this_machine`: mixed bfloat16 where the CPU computes it natively, else float32), then the fast
   path with one lever changed — Keras' batch norm instead of the fused one; the other precision; other batch
   sizes; XLA on.

    .venv/bin/python benchmarks/levers.py [--models model1,model3] [--images 7680] [--repeats 2] [--models-only]

Settings of the whole process (TF_ENABLE_ONEDNN_OPTS, thread pools) are levers too: run `--models-only` once per
setting, e.g. `TF_ENABLE_ONEDNN_OPTS=0 .venv/bin/python benchmarks/levers.py --models-only`, or `--threads 1`.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

# Lets the script run as a plain file from any folder, without installing the package.
from fmnist_core.config import TrainConfig, for_this_machine
from fmnist_core.data.loading import load_fashion_mnist
from fmnist_core.machine import import_tensorflow, machine_info
from fmnist_core.models.registry import get_spec
from fmnist_core.training.bench import time_fast_path, time_plain_keras

BATCH = 256


def _milliseconds(function, argument, repeats: int = 10) -> float:
    """Median wall time of `function(argument)` in ms, after two warm-up calls (tracing, kernel choice)."""
    function(argument)
    function(argument)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        np.asarray(function(argument)[0])  # Forces the result, so the work is really done.
        times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times)


def _forward_backward(block, variables):
    """A tf.function returning (loss, gradients w.r.t. the input and `variables`) of sum(block(x)²)."""
    tf = import_tensorflow()

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.cast(block(x), tf.float32) ** 2)
        return [loss, *tape.gradient(loss, [x, *variables])]

    return step


def batch_norm_table() -> None:
    tf = import_tensorflow()
    import keras

    from fmnist_core.models.fused_norm import FusedBatchNormalization

    print("\n1. Batch norm + ReLU, forward + backward, one batch (median of 10)")
    print(f"{'maps':>16}  {'dtype':9} {'Keras layer':>12} {'fused':>9} {'ratio':>6}")
    for shape in [(BATCH, 14, 14, 64), (BATCH, 14, 14, 256), (BATCH, 28, 28, 256)]:
        for policy, dtype in [("mixed_bfloat16", tf.bfloat16), ("float32", tf.float32)]:
            x = tf.cast(tf.random.normal(shape, seed=1), dtype)
            times = []
            for layer_class in (keras.layers.BatchNormalization, FusedBatchNormalization):
                layer = layer_class(momentum=0.9, dtype=policy)
                layer.build(shape)
                step = _forward_backward(
                    lambda x, layer=layer: tf.nn.relu(layer(x, training=True)), layer.trainable_weights
                )
                times.append(_milliseconds(step, x))
            print(
                f"{'×'.join(map(str, shape[1:])):>16}  {dtype.name:9} {times[0]:9.1f} ms {times[1]:6.1f} ms "
                f"{times[0] / times[1]:5.1f}×"
            )


def block1_order_table() -> None:
    tf = import_tensorflow()
    import keras

    from fmnist_core.models.fused_norm import FusedBatchNormalization

    print("\n2. Block 1, forward + backward, one batch of 28×28×1 images, bfloat16, fused batch norm (median of 10)")
    print(f"{'filters':>8} {'conv→BN→ReLU→pool':>18} {'conv→pool→BN→ReLU':>18} {'ratio':>6}")
    x = tf.cast(tf.random.uniform((BATCH, 28, 28, 1), seed=1), tf.bfloat16)
    for filters in (64, 128, 256):
        times = []
        for pool_first in (False, True):
            conv = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, dtype="mixed_bfloat16")
            norm = FusedBatchNormalization(momentum=0.9, dtype="mixed_bfloat16")
            pool = keras.layers.MaxPooling2D(dtype="mixed_bfloat16")

            def block(x, conv=conv, norm=norm, pool=pool, pool_first=pool_first):
                if pool_first:
                    return tf.nn.relu(norm(pool(conv(x)), training=True))
                return pool(tf.nn.relu(norm(conv(x), training=True)))

            block(x)  # Builds the layers so their weights exist.
            step = _forward_backward(block, [*conv.trainable_weights, *norm.trainable_weights])
            times.append(_milliseconds(step, x))
        print(f"{filters:>8} {times[0]:15.1f} ms {times[1]:15.1f} ms {times[0] / times[1]:5.1f}×")


def model_table(model_names: list[str], images: int, repeats: int) -> None:
    (x_train, y_train), _ = load_fashion_mnist()
    x, y = x_train[:images], y_train[:images].astype(np.int32)
    fast = for_this_machine(TrainConfig())
    variants = [
        ("fast path", fast, True),
        ("Keras batch norm", fast, False),
        # Only where bfloat16 is the fast path: without native bfloat16 it trains 5-10x slower
        # (benchmarks/precision_speed.py measures that), which would make this table take many minutes.
        *([("float32", fast.replace(precision="float32"), True)] if fast.precision != "float32" else []),
        *((f"batch {size}", fast.replace(batch_size=size), True) for size in (32, 64, 128, 512)),
        ("XLA on", fast.replace(jit_compile=True), True),
    ]
    print(
        f"\n3. Training img/s, {images:,} images per fit, median of {repeats} interleaved runs "
        f"(fast path: {fast.precision}, batch {fast.batch_size}, fused batch norm, XLA off)"
    )
    print(f"{'model':8} " + " ".join(f"{label:>17}" for label, _, _ in variants) + f" {'plain Keras fit':>17}")
    for name in model_names:
        spec = get_spec(name)
        runs: dict[str, list[float]] = {label: [] for label, _, _ in [*variants, ("plain Keras fit", None, None)]}
        for _ in range(repeats):
            for label, config, fused in variants:
                runs[label].append(time_fast_path(spec, config, x, y, fused_norm=fused))
            runs["plain Keras fit"].append(time_plain_keras(spec, x, y))
        medians = {label: statistics.median(values) for label, values in runs.items()}
        base = medians["fast path"]
        cells = [f"{medians[label]:>8,.0f} ({medians[label] / base:4.2f}×)" for label in runs]
        print(f"{name:8} " + " ".join(f"{cell:>17}" for cell in cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="model1,model3")
    parser.add_argument("--images", type=int, default=7680)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--models-only", action="store_true", help="only table 3 (whole models)")
    parser.add_argument("--threads", type=int, help="cap TensorFlow's intra- and inter-op thread pools")
    args = parser.parse_args()
    import_tensorflow(threads=args.threads)
    machine = machine_info()
    versions = machine.get("versions", {})
    print(f"{machine.get('cpu_model')}, {machine.get('cpu_cores')} cores; TensorFlow {versions.get('tensorflow')}")
    if not args.models_only:
        batch_norm_table()
        block1_order_table()
    model_table([name.strip() for name in args.models.split(",")], args.images, args.repeats)


if __name__ == "__main__":
    main()
