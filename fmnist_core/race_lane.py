"""One lane of the GPU-vs-CPU race: the timed workload a lane process runs, and the parent's handle on it.

Every lane repeat runs in a fresh Python process (`python -m fmnist_core race-lane …`), so its limits are
real and nothing is shared: the CPU affinity and TensorFlow's thread pools are set before TensorFlow
starts, CPU lanes cannot see a GPU (hidden by `CUDA_VISIBLE_DEVICES=""` and again inside TensorFlow),
GPU memory belongs to that process alone, and no traced function or warm allocator carries over.

The child writes one JSON object per line on its real stdout; anything a library prints goes to stderr:
  {"type": "event", "t": 4.21, "phase": "train", "fraction": 0.5}   t: seconds since the parent launched it
  {"type": "result", "repeat": {...}}                                the timed phases and the thread settings
  {"type": "error", "message": "..."}                                a problem the user can fix
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np

from fmnist_core.config import PRECISIONS, TrainConfig, seed_problem
from fmnist_core.errors import ConfigError, FmnistError
from fmnist_core.fashion_mnist import IMAGE_SIZE, NUM_CLASSES, TEST_SET_IMAGES, TRAIN_SET_IMAGES
from fmnist_core.models import MODEL_SPECS, ModelSpec
from fmnist_core.paths import PROJECT_ROOT

PHASES = ("setup", "warmup", "train", "inference", "done")
SCORED_PHASES = ("train", "inference")  # Setup and warm-up are shown but not scored.
EVENT_INTERVAL_SECONDS = 0.1  # At most ~10 progress events a second: plenty for a display refreshed every 0.5 s.
STOP_GRACE_SECONDS = 5.0  # A lane asked to stop gets this long to exit before it is killed.

Event = tuple[float, str, float]  # (seconds since the lane started, phase, fraction of that phase done)


class RaceCancelled(FmnistError):
    """The race was stopped; its lane process was ended and nothing was saved."""

    exit_code = 130


class LaneError(FmnistError):
    """A lane process failed; the message carries its own explanation or the end of its error output."""


@dataclass(frozen=True)
class Workload:
    """What every lane runs, identical by construction and recorded in the race file."""

    spec: ModelSpec = MODEL_SPECS["model1"]  # The network: Model 1 unless a test passes a tiny stand-in.
    precision: str = "mixed_bfloat16"  # One Keras dtype policy for every lane; fast on AVX512-BF16 CPUs.
    jit_compile: bool = False  # XLA, set explicitly: Keras' "auto" turns it on only where a GPU exists.
    batch_size: int = 256  # Training images per step.
    train_batches: int = 100  # Timed training steps (25,600 images at the defaults).
    warmup_batches: int = 3  # Untimed training steps first, so tracing and allocation are not scored.
    inference_images: int = TEST_SET_IMAGES  # Test images predicted in the timed inference phase.
    inference_batch_size: int = 1024  # Images per prediction batch.
    seed: int = 42  # Same weights, same images, same order on every lane.
    synthetic: bool = False  # Random images shaped like Fashion-MNIST instead of the real data (tests).

    def __post_init__(self) -> None:
        limits = {
            "batch_size": 8192,
            "train_batches": 10_000,
            "warmup_batches": 100,
            "inference_images": TEST_SET_IMAGES,
            "inference_batch_size": 8192,
        }
        problems = [
            f"{name.replace('_', ' ')} must be a whole number from 1 to {top:,} (got {getattr(self, name)!r})"
            for name, top in limits.items()
            if not isinstance(getattr(self, name), int) or not 1 <= getattr(self, name) <= top
        ]
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {', '.join(PRECISIONS)} (got {self.precision!r})")
        if seed_problem(self.seed):
            problems.append(seed_problem(self.seed))
        if not problems and not self.synthetic and self.train_images > TRAIN_SET_IMAGES:
            problems.append(
                f"training batches × batch size is {self.train_images:,} images, more than the "
                f"{TRAIN_SET_IMAGES:,} Fashion-MNIST has: lower the training batches or the batch size"
            )
        if problems:
            raise ConfigError("Invalid race settings: " + "; ".join(problems) + ".")

    @property
    def train_images(self) -> int:
        return self.train_batches * self.batch_size

    def train_config(self) -> TrainConfig:
        """The project's fast-path training settings for this workload (one epoch over the timed subset)."""
        return TrainConfig(
            epochs=1,
            batch_size=self.batch_size,
            seed=self.seed,
            train_limit=self.train_images,
            validation_split=0.0,
            precision=self.precision,
            jit_compile=self.jit_compile,
        )

    def to_dict(self) -> dict:
        return {**asdict(self), "train_images": self.train_images}

    @classmethod
    def from_dict(cls, values: dict) -> Workload:
        """Build from `to_dict` output (derived fields are ignored); field types are the caller's to check."""
        fields = {key: value for key, value in values.items() if key in cls.__dataclass_fields__}
        return cls(**{**fields, "spec": ModelSpec(**values["spec"])})

    @classmethod
    def from_json(cls, text: str) -> Workload:
        """The workload handed to a lane process; ConfigError (exit 2), never a traceback, when it is not one."""
        try:
            return cls.from_dict(json.loads(text))
        except ConfigError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            problem = f"{type(error).__name__}: {error}"
            raise ConfigError(f"The lane's workload is not a race workload ({problem}).") from None


# A stand-in for Model 1 with the same layers but 8 filters, and a workload that runs in seconds (tests).
TINY_WORKLOAD = Workload(
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


# The child: one timed run --------------------------------------------------------------------------------


class _Recorder:
    """Timestamps on the lane's clock (0 = when the parent launched the process), sent and kept."""

    def __init__(self, started_at: float, send: Callable[[dict], None]):
        # perf_counter is monotonic and precise; the launch time only sets where zero is.
        self._origin = time.perf_counter() - (time.time() - started_at)
        self._send = send
        self.events: list[Event] = []

    def now(self) -> float:
        return time.perf_counter() - self._origin

    def mark(self, phase: str, fraction: float) -> float:
        """Record that `phase` is `fraction` done now; in-between marks closer than the interval are dropped."""
        seconds = self.now()
        last = self.events[-1] if self.events else None
        if 0 < fraction < 1 and last and last[1] == phase and seconds - last[0] < EVENT_INTERVAL_SECONDS:
            return seconds
        self.events.append((round(seconds, 4), phase, round(fraction, 4)))
        self._send({"type": "event", "t": round(seconds, 4), "phase": phase, "fraction": round(fraction, 4)})
        return seconds


def _pin_cores(threads: int) -> int:
    """Restrict this process to `threads` cores before TensorFlow starts its pools; returns the core count."""
    allowed = sorted(os.sched_getaffinity(0))
    if threads < len(allowed):
        os.sched_setaffinity(0, allowed[:threads])
    return len(os.sched_getaffinity(0))


def _use_device(tf, device: str) -> None:
    """Make `device` ("CPU" or "GPU:<n>") the only accelerator TensorFlow will use in this process."""
    gpus = tf.config.list_physical_devices("GPU")
    if device == "CPU":
        tf.config.set_visible_devices([], "GPU")
        return
    index = int(device.split(":")[1])
    if index >= len(gpus):
        raise LaneError(f"TensorFlow sees no {device} in the lane process ({len(gpus)} GPU(s) visible).")
    tf.config.set_visible_devices([gpus[index]], "GPU")
    # Growing on demand keeps another process's memory use from making this lane fail at start-up.
    tf.config.experimental.set_memory_growth(gpus[index], True)


def _lane_data(workload: Workload):
    """((x_train, y_train), (x_test, y_test)): Fashion-MNIST, or seeded random images of its shape."""
    if not workload.synthetic:
        from fmnist_core.data import load_fashion_mnist

        return load_fashion_mnist()
    generator = np.random.default_rng(workload.seed)

    def split(count: int):
        return (
            generator.integers(0, 256, size=(count, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8),
            generator.integers(0, NUM_CLASSES, size=count).astype(np.uint8),
        )

    return split(workload.train_images), split(workload.inference_images)


def _batch_shapes_sample(count: int, batch_size: int) -> np.ndarray:
    """Indices giving one batch of each size the timed prediction will see, so warm-up traces them all."""
    indices = np.arange(min(count, batch_size))
    remainder = count % batch_size
    if count > batch_size and remainder:
        indices = np.concatenate([indices, np.arange(remainder)])
    return indices


def run_lane(workload: Workload, device: str, threads: int, started_at: float, send: Callable[[dict], None]) -> None:
    """Run one timed repeat in this (fresh) process; progress events and the result go to `send`.

    Every Keras step ends by turning its loss into a Python float (Keras does so for callbacks), so a
    batch's end time is when the device finished it, not when the work was queued.
    """
    recorder = _Recorder(started_at, send)
    recorder.mark("setup", 0.0)
    cores = _pin_cores(threads)
    from fmnist_core.machine import import_tensorflow

    tf = import_tensorflow(threads)
    _use_device(tf, device)
    import keras

    from fmnist_core.models import build_from_spec
    from fmnist_core.training import compile_model, make_dataset, split_indices

    (x_train, y_train), (x_test, y_test) = _lane_data(workload)
    config = workload.train_config()
    train_index, _ = split_indices(len(x_train), config)
    options = tf.data.Options()
    options.threading.private_threadpool_size = threads  # The input pipeline gets the lane's threads too.
    train_data = (
        make_dataset(x_train[train_index], y_train[train_index], workload.batch_size, shuffle_seed=workload.seed)
        .repeat()
        .with_options(options)
    )
    x_test, y_test = x_test[: workload.inference_images], y_test[: workload.inference_images]
    test_data = make_dataset(x_test, y_test, workload.inference_batch_size).with_options(options)
    sample = _batch_shapes_sample(len(x_test), workload.inference_batch_size)
    warmup_test_data = make_dataset(x_test[sample], y_test[sample], workload.inference_batch_size)

    warmup_started = recorder.mark("warmup", 0.0)
    model = build_from_spec(workload.spec, seed=workload.seed, precision=workload.precision)
    compile_model(model, config, workload.warmup_batches + workload.train_batches)
    model.predict(warmup_test_data, verbose=0)
    recorder.mark("warmup", 0.2)  # The progress bar gives tracing prediction a fifth, the warm-up steps the rest.
    clock: dict[str, float] = {}

    class TrainClock(keras.callbacks.Callback):
        """Fires the starting gun after the warm-up steps and stops the clock after the last step."""

        def on_train_batch_end(self, batch, logs=None):
            timed = batch + 1 - workload.warmup_batches
            if timed < 0:
                recorder.mark("warmup", 0.2 + 0.8 * (batch + 1) / workload.warmup_batches)
            elif timed == 0:
                recorder.mark("warmup", 1.0)
                clock["train_started"] = recorder.mark("train", 0.0)
            else:
                clock["train_ended"] = recorder.mark("train", timed / workload.train_batches)

    class InferenceClock(keras.callbacks.Callback):
        """Stops the inference clock when the last batch's predictions are on the host."""

        def on_predict_batch_end(self, batch, logs=None):
            done = min((batch + 1) * workload.inference_batch_size, workload.inference_images)
            clock["inference_ended"] = recorder.mark("inference", done / workload.inference_images)

    model.fit(
        train_data,
        epochs=1,
        steps_per_epoch=workload.warmup_batches + workload.train_batches,
        callbacks=[TrainClock()],
        verbose=0,
    )
    inference_started = recorder.mark("inference", 0.0)
    model.predict(test_data, verbose=0, callbacks=[InferenceClock()])
    # Between the phases and after the last one TensorFlow tears down input pipelines: shown, not scored.
    recorder.mark("done", 1.0)

    train_seconds = clock["train_ended"] - clock["train_started"]
    inference_seconds = clock["inference_ended"] - inference_started
    send(
        {
            "type": "result",
            "repeat": {
                "setup_seconds": round(warmup_started, 4),
                "warmup_seconds": round(clock["train_started"] - warmup_started, 4),
                "train_seconds": round(train_seconds, 4),
                "train_images_per_second": round(workload.train_images / train_seconds, 2),
                "inference_seconds": round(inference_seconds, 4),
                "inference_images_per_second": round(workload.inference_images / inference_seconds, 2),
                "events": [list(event) for event in recorder.events],
                "runtime": {
                    "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
                    "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
                    "cpu_cores": cores,
                    "visible_gpus": len(tf.config.get_visible_devices("GPU")),
                    # Where the weights live, e.g. "GPU:0": proof the lane used the device it claims.
                    "device": model.weights[0].value.device.rsplit("device:", 1)[-1],
                    "pid": os.getpid(),
                },
            },
        }
    )


def lane_main(workload_json: str, device: str, threads: int, started_at: float) -> int:
    """Entry point of `race-lane`: run one repeat, speaking the line protocol on the real stdout."""
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # Stray prints from libraries cannot corrupt the protocol.

    def send(message: dict) -> None:
        protocol.write(json.dumps(message) + "\n")

    try:
        run_lane(Workload.from_json(workload_json), device, threads, started_at, send)
    except FmnistError as error:
        send({"type": "error", "message": str(error)})
        return error.exit_code
    return 0


# The parent: launch, follow and stop a lane process -------------------------------------------------------


def _lane_environment(device: str, threads: int) -> dict[str, str]:
    env = dict(
        os.environ,
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONUNBUFFERED="1",
        OMP_NUM_THREADS=str(threads),
        TF_NUM_INTRAOP_THREADS=str(threads),
        TF_NUM_INTEROP_THREADS=str(threads),
    )
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(PROJECT_ROOT), os.environ.get("PYTHONPATH"))))
    if device == "CPU":
        env["CUDA_VISIBLE_DEVICES"] = ""  # CUDA never initialises, so the CPU lane pays no GPU start-up.
    return env


def _end_process(process: subprocess.Popen) -> None:
    """Terminate, then kill if it has not exited within the grace period; always reaps it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _error_tail(stderr, lines: int = 6) -> str:
    stderr.seek(0)
    text = stderr.read().decode("utf-8", errors="replace").strip().splitlines()
    return "\n".join(text[-lines:]) or "no error output"


def run_lane_process(
    workload: Workload,
    device: str,
    threads: int,
    started_at: float,
    on_update: Callable[[tuple[Event, ...]], None],
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """Run one repeat of a lane in a fresh process and return its result record (a dict).

    on_update(events) gets every event so far whenever one arrives, and about ten times a second
    meanwhile, so live timers keep ticking while TensorFlow starts. Raises RaceCancelled (after ending
    the process) when `should_stop()` turns true, and LaneError when the lane fails.
    """
    command = [
        sys.executable,
        "-m",
        "fmnist_core",
        "race-lane",
        "--workload",
        json.dumps(workload.to_dict()),
        "--device",
        device,
        "--threads",
        str(threads),
        "--started-at",
        repr(started_at),
    ]
    events: list[Event] = []
    result, failure = None, None
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            env=_lane_environment(device, threads),
            text=True,
            encoding="utf-8",
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            for line in process.stdout:
                lines.put(line)
            lines.put(None)

        reader = threading.Thread(target=read, name="race-lane-reader", daemon=True)
        reader.start()
        try:
            while True:
                if should_stop is not None and should_stop():
                    raise RaceCancelled("The race was stopped; nothing was saved.")
                try:
                    line = lines.get(timeout=0.1)
                except queue.Empty:
                    on_update(tuple(events))
                    continue
                if line is None:
                    break
                message = json.loads(line)
                if message["type"] == "event":
                    events.append((message["t"], message["phase"], message["fraction"]))
                    on_update(tuple(events))
                elif message["type"] == "result":
                    result = message["repeat"]
                else:
                    failure = message["message"]
            process.wait()
        finally:
            _end_process(process)
            reader.join(timeout=STOP_GRACE_SECONDS)
            process.stdout.close()
        if failure is not None:
            raise LaneError(failure)
        if result is None or process.returncode != 0:
            raise LaneError(f"The lane process exited with code {process.returncode}: {_error_tail(stderr)}")
    return result
