"""Throughput benchmark: the project's training path against a plain Keras tutorial loop, same architecture.

Both paths train the same registry model for the same number of images, interleaved A B A B… in one
process so machine noise hits both alike. The plain way is what a Keras tutorial does: `model.fit` on
float32 NumPy arrays, batch size 32, default compile settings. The achieved FLOP rate (3 × forward FLOPs
per training image: forward, and backward for inputs and weights) is reported as a share of this
machine's matrix-multiply peak measured in the same run, for the precision the path uses.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from fmnist_core.config import TrainConfig, for_this_machine
from fmnist_core.data.loading import load_fashion_mnist
from fmnist_core.evaluate.evaluation import evaluate
from fmnist_core.machine import import_tensorflow, machine_info
from fmnist_core.models.registry import build_from_spec, forward_flops, get_spec
from fmnist_core.training.loop import compile_model, make_dataset, train

TRAINING_FLOPS_PER_FORWARD = 3  # Forward + gradient w.r.t. inputs + gradient w.r.t. weights.


def matmul_peak(dtype: str = "float32", size: int = 2048, seconds: float = 2.0) -> float:
    """Measured GFLOP/s of square matmuls in `dtype` (the best of several timed bursts)."""
    tf = import_tensorflow()
    a = tf.random.stateless_uniform((size, size), seed=(1, 2), dtype=tf.float32)
    a = tf.cast(a, dtype)
    b = tf.cast(tf.random.stateless_uniform((size, size), seed=(3, 4), dtype=tf.float32), dtype)
    matmul = tf.function(lambda x, y: tf.reduce_sum(tf.cast(tf.matmul(x, y)[0, :1], tf.float32)))
    matmul(a, b).numpy()
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        for _ in range(4):
            result = matmul(a, b)
        result.numpy()  # Wait for the device before reading the clock.
        best = max(best, 4 * 2 * size**3 / (time.perf_counter() - started) / 1e9)
    return best


@dataclass
class PathTiming:
    """Images per second of one training path over the repeats."""

    label: str
    precision: str
    batch_size: int
    runs: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.runs) if self.runs else 0.0


@dataclass
class ModelBench:
    """One model's comparison."""

    model: str
    forward_flops: int
    images: int
    fast: PathTiming
    plain: PathTiming
    peak_gflops: dict[str, float]

    @property
    def speedup(self) -> float:
        return self.fast.median / self.plain.median if self.plain.median else float("nan")

    def peak_share(self, timing: PathTiming) -> float:
        achieved = timing.median * self.forward_flops * TRAINING_FLOPS_PER_FORWARD / 1e9
        peak = self.peak_gflops["bfloat16" if "bfloat16" in timing.precision else "float32"]
        return achieved / peak if peak else float("nan")

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "speedup": self.speedup,
            "fast_peak_share": self.peak_share(self.fast),
            "plain_peak_share": self.peak_share(self.plain),
            "fast_median": self.fast.median,
            "plain_median": self.plain.median,
        }


def time_fast_path(
    spec, config: TrainConfig, images: np.ndarray, labels: np.ndarray, warmup_batches: int = 3, fused_norm: bool = True
) -> float:
    """Images/s of one fit() over `images` on the project's training path (`fused_norm=False`: Keras' batch norm)."""
    model = build_from_spec(spec, seed=config.seed, precision=config.precision, fused_norm=fused_norm)
    compile_model(model, config, steps_per_epoch=len(images) // config.batch_size)
    warmup = make_dataset(
        images[: warmup_batches * config.batch_size],
        labels[: warmup_batches * config.batch_size],
        config.batch_size,
        shuffle_seed=config.seed,
    )
    model.fit(warmup, epochs=1, verbose=0, shuffle=False)
    dataset = make_dataset(images, labels, config.batch_size, shuffle_seed=config.seed)
    return _images_per_second(model, len(images), dataset, epochs=1, verbose=0, shuffle=False)


def _images_per_second(model, images: int, *fit_args, **fit_kwargs) -> float:
    """Run `model.fit(*fit_args, **fit_kwargs)` once; images/s from calling fit() to the end of its last batch."""
    clock = last_batch_clock()
    started = time.perf_counter()
    model.fit(*fit_args, callbacks=[clock], **fit_kwargs)
    return images / (clock.at - started)


def last_batch_clock():
    """A callback holding the time its last training batch ended.

    Both paths are timed from calling fit() to the end of the last batch: Keras builds a tf.data pipeline with
    the autotuner on for NumPy input, and tearing it down waits for the tuner's next wake-up (fits ending at
    exactly 20.48 s or 40.95 s here). That wait is real for a tutorial's fit(), but it is a fixed cost per fit,
    not a training speed, and it would make the ratio depend on the benchmark's length.
    """
    import keras

    class LastBatchClock(keras.callbacks.Callback):
        at = float("nan")

        def on_train_batch_end(self, batch, logs=None):
            self.at = time.perf_counter()

    return LastBatchClock()


def time_plain_keras(spec, images: np.ndarray, labels: np.ndarray, warmup_batches: int = 10) -> float:
    """Images/s of one tutorial `model.fit` over `images`: float32 NumPy arrays, batch 32, Keras' defaults."""
    import keras

    # Exactly the tutorial way: float32 arrays scaled in NumPy, default Adam, default jit_compile, batch 32.
    model = build_from_spec(spec, seed=0, precision="float32", fused_norm=False)  # Keras' stock layers.
    model.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = images.astype("float32")[..., None] / 255.0
    model.fit(x[: warmup_batches * 32], labels[: warmup_batches * 32], batch_size=32, epochs=1, verbose=0)
    return _images_per_second(model, len(images), x, labels, batch_size=32, epochs=1, verbose=0)


def run_bench(
    model_names: list[str],
    images: int = 12800,
    repeats: int = 2,
    config: TrainConfig | None = None,
    data=None,
    log=print,
) -> dict:
    """Benchmark each model; returns a JSON-ready dict (machine, peaks, per-model timings).

    config: the fast path's settings; by default `TrainConfig()` in the precision this machine trains fast in
    (`config.for_this_machine`), as `train` and the app would use.
    """
    config = config or for_this_machine(TrainConfig())
    if data is None:
        data = load_fashion_mnist()
    (x_train, y_train), _ = data
    x, y = x_train[:images], y_train[:images].astype(np.int32)
    log("Measuring matrix-multiply peak (float32, bfloat16)…")
    peaks = {"float32": matmul_peak("float32"), "bfloat16": matmul_peak("bfloat16")}
    log(f"  peak float32 {peaks['float32']:.0f} GFLOP/s, bfloat16 {peaks['bfloat16']:.0f} GFLOP/s")
    results = []
    for name in model_names:
        spec = get_spec(name)
        flops = forward_flops(build_from_spec(spec))
        bench = ModelBench(
            name,
            flops,
            len(x),
            PathTiming("project fast path", config.precision, config.batch_size),
            PathTiming("plain Keras fit", "float32", 32),
            peaks,
        )
        for repeat in range(repeats):
            # Interleaved A B A B so slow phases of a shared machine hit both paths.
            bench.fast.runs.append(time_fast_path(spec, config, x, y, warmup_batches=3))
            bench.plain.runs.append(time_plain_keras(spec, x, y, warmup_batches=10))
            log(
                f"  {name} run {repeat + 1}/{repeats}: fast {bench.fast.runs[-1]:,.0f} img/s, "
                f"plain {bench.plain.runs[-1]:,.0f} img/s"
            )
        results.append(bench)
    return {
        "benchmark": "training-throughput",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": machine_info(),
        "images_per_run": len(x),
        "repeats": repeats,
        "fast_path": {
            "precision": config.precision,
            "batch_size": config.batch_size,
            "jit_compile": config.jit_compile,
        },
        "peak_gflops": peaks,
        "models": [bench.to_dict() for bench in results],
    }


def precision_accuracy_check(name: str, config: TrainConfig, data=None, log=print) -> dict:
    """Train the same settings in the fast path's precision and in float32; compare test accuracy."""
    if data is None:
        data = load_fashion_mnist()
    _, (x_test, y_test) = data
    outcome = {}
    for precision in (config.precision, "float32"):
        result = train(name, config.replace(precision=precision), data=data)
        accuracy = evaluate(result.model, x_test, y_test).test_accuracy
        outcome[precision] = {
            "test_accuracy": accuracy,
            "wall_seconds": result.wall_seconds,
            "images_per_second": result.images_per_second,
        }
        log(f"  {name} {precision}: test accuracy {accuracy:.2%}, {result.images_per_second:,.0f} img/s")
    difference = outcome[config.precision]["test_accuracy"] - outcome["float32"]["test_accuracy"]
    return {"model": name, "config": config.to_dict(), "results": outcome, "difference_points": 100 * difference}
