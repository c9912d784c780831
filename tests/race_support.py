"""Test scaffolding for the race: a tiny workload and hand-made race results (never written to recorded_races/).

The tiny workload keeps Model 1's layers with 8 filters and a few small batches, so a real lane process runs in
seconds; the product itself has no such mode.
"""

from __future__ import annotations

from dataclasses import replace

from fmnist_core.models.registry import MODEL_SPECS
from fmnist_core.race.file import LaneResult, RaceResult, RepeatResult
from fmnist_core.race.lane import Workload

TINY = Workload(
    spec=replace(
        MODEL_SPECS["model1"],
        title="Model 1 (tiny)",
        first_filters=8,
        block2_filters=8,
        block3_filters=8,
        dense_units=16,
    ),
    batch_size=32,
    train_batches=4,
    warmup_batches=1,
    inference_images=96,
    inference_batch_size=64,
)
NO_GPU_MACHINE = {
    "hostname": "test-box",
    "cpu_model": "Test CPU",
    "cpu_cores": 2,
    "gpus": [],
    "nvidia_smi": [],
    "versions": {"tensorflow": "test", "jax": "test", "keras": "test"},
    "backends": {"tensorflow": {"version": "test", "gpus": []}, "jax": {"version": "test", "gpus": []}},
}
PAUSE = 0.5  # Unscored: the backend tearing down the training input pipeline before inference starts.


def make_repeat(
    setup: float, warmup: float, train: float, inference: float, runtime: dict | None = None
) -> RepeatResult:
    """A hand-made repeat whose events follow the lane protocol: setup, warm-up, the gun, train, inference."""
    gun = setup + warmup
    inference_start = gun + train + PAUSE
    end = inference_start + inference
    events = (
        (0.2, "setup", 0.0),
        (setup, "warmup", 0.0),
        (gun, "warmup", 1.0),
        (gun, "train", 0.0),
        (gun + train / 2, "train", 0.5),
        (gun + train, "train", 1.0),
        (inference_start, "inference", 0.0),
        (end, "inference", 1.0),
        (end + 0.25, "done", 1.0),
    )
    return RepeatResult(
        setup,
        warmup,
        train,
        TINY.train_images / train,
        inference,
        TINY.inference_images / inference,
        events,
        runtime or {"intra_op_threads": 1, "inter_op_threads": 1, "cpu_cores": 1, "device": "CPU:0"},
    )


def make_result() -> RaceResult:
    """Four lanes on two backends: a fast JAX 'GPU' with a slow start-up, TensorFlow's all cores and one core (two
    of them repeated 3 times), and a JAX one-core lane that kept 0.98 cores busy."""
    lanes = (
        LaneResult(
            "jax-gpu-0",
            "JAX · Test GPU",
            "GPU:0",
            2,
            True,
            None,
            (make_repeat(9.0, 3.0, 0.5, 0.1), make_repeat(8.0, 3.0, 0.4, 0.1), make_repeat(9.5, 3.0, 0.6, 0.1)),
            backend="jax",
            kind="gpu",
            precision="mixed_bfloat16",
        ),
        LaneResult(
            "tensorflow-cpu-all",
            "TensorFlow · CPU, 2 cores",
            "CPU",
            2,
            True,
            None,
            (make_repeat(4.0, 2.0, 6.0, 1.0), make_repeat(4.0, 2.0, 5.0, 1.0), make_repeat(4.0, 2.0, 7.0, 1.0)),
            backend="tensorflow",
            kind="cpu-all",
            precision="float32",
        ),
        LaneResult(
            "tensorflow-cpu-1",
            "TensorFlow · CPU, 1 core",
            "CPU",
            1,
            True,
            None,
            (make_repeat(5.0, 4.0, 10.0, 2.0),),
            backend="tensorflow",
            kind="cpu-1",
            precision="float32",
        ),
        LaneResult(
            "jax-cpu-1",
            "JAX · CPU, 1 core",
            "CPU",
            1,
            True,
            None,
            (make_repeat(3.0, 6.0, 20.0, 2.5, {"cpu_cores": 1, "device": "CPU:0", "train_cpu_seconds": 19.6}),),
            backend="jax",
            kind="cpu-1",
            precision="float32",
        ),
    )
    machine = dict(NO_GPU_MACHINE, gpus=[{"id": "GPU:0", "name": "Test GPU"}])
    return RaceResult("2026-01-02T03:04:05+00:00", machine, TINY, 3, lanes)
