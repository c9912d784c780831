"""One lane of the GPU-vs-CPU race: the timed workload a lane process runs, and the parent's handle on it.

Every lane repeat runs in a fresh Python process (`python -m fmnist_core race-lane …`), so its limits are
real and nothing is shared: the lane's Keras backend (KERAS_BACKEND) and its device are chosen through the
environment before anything is imported, the CPU affinity and thread pools are set before the backend starts
(fmnist_core.race.lane_runtime), CPU lanes cannot see a GPU, GPU memory belongs to that process alone, and no
compiled function or warm allocator carries over. A lane on JAX or PyTorch never imports TensorFlow.

The workload is the same on every backend: Model 1's layers built through Keras, the same seed, the same images
in the same order fed from NumPy, the same batch size. The precision and `jit_compile` are set per lane (the
precision its device and backend compute fastest and the backend's own compilation, unless the race sets one for
every lane) and recorded, as is the batch-norm layer each backend got.

The child writes one JSON object per line on its real stdout; anything a library prints goes to stderr:
  {"type": "event", "t": 4.21, "phase": "train", "fraction": 0.5}   t: seconds since the parent launched it
  {"type": "result", "repeat": {...}}                                the timed phases and what the lane ran with
  {"type": "probe", "facts": {...}}                                  `race-probe`: a backend's version and GPUs
  {"type": "error", "message": "..."}                                a problem the user can fix
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from fmnist_core.config import PRECISIONS, TrainConfig, seed_problem
from fmnist_core.data.fashion_mnist import TEST_SET_IMAGES, TRAIN_SET_IMAGES
from fmnist_core.errors import ConfigError, FmnistError
from fmnist_core.models.registry import MODEL_SPECS, ModelSpec
from fmnist_core.race.backends import BACKENDS, fastest_precision
from fmnist_core.race.lane_runtime import LaneError

__all__ = ["LaneError"]  # Raised by lanes; defined with the backend start-up that raises most of them.

PHASES = ("setup", "warmup", "train", "inference", "done")
SCORED_PHASES = ("train", "inference")  # Setup and warm-up are shown but not scored.
LANE_KINDS = ("gpu", "cpu-all", "cpu-1")  # Every GPU the backend sees, all CPU cores, one CPU core.
EVENT_INTERVAL_SECONDS = 0.1  # At most ~10 progress events a second: plenty for a display refreshed every 0.5 s.
RACE_PARENT_VARIABLE = "FMNIST_RACE_PARENT_PID"  # Set by the race for its lane processes: who they die with.
PR_SET_PDEATHSIG = 1  # linux/prctl.h: the signal this process gets when its parent dies.

Event = tuple[float, str, float]  # (seconds since the lane started, phase, fraction of that phase done)


class RaceCancelled(FmnistError):
    """The race was stopped; its lane process was ended and nothing was saved."""

    exit_code = 130


@dataclass(frozen=True)
class Workload:
    """What every lane runs, identical by construction and recorded in the race file."""

    spec: ModelSpec = MODEL_SPECS["model1"]  # The network: Model 1 unless a test passes a smaller stand-in.
    # One Keras dtype policy for every lane, or None: each lane's fastest (backends.fastest_precision), recorded
    # with the lane.
    precision: str | None = None
    # XLA / compilation on every lane, or None: each backend's own setting (backends.Backend.jit_compile). What
    # each lane really ran with is recorded in its repeats.
    jit_compile: bool | None = None
    batch_size: int = 256  # Training images per step.
    train_batches: int = 100  # Timed training steps (25,600 images at the defaults).
    warmup_batches: int = 3  # Untimed training steps first, so compilation and allocation are not scored.
    inference_images: int = TEST_SET_IMAGES  # Test images predicted in the timed inference phase.
    inference_batch_size: int = 1024  # Images per prediction batch.
    seed: int = 42  # Same weights, same images, same order on every lane.

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
        if self.precision is not None and self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {', '.join(PRECISIONS)} (got {self.precision!r})")
        if seed_problem(self.seed):
            problems.append(seed_problem(self.seed))
        if not problems and self.train_images > TRAIN_SET_IMAGES:
            problems.append(
                f"training batches × batch size is {self.train_images:,} images, more than the "
                f"{TRAIN_SET_IMAGES:,} Fashion-MNIST has: lower the training batches or the batch size"
            )
        if problems:
            raise ConfigError("Invalid race settings: " + "; ".join(problems) + ".")

    @property
    def train_images(self) -> int:
        return self.train_batches * self.batch_size

    def jit_compile_for(self, backend: str) -> bool:
        return BACKENDS[backend].jit_compile if self.jit_compile is None else self.jit_compile

    def precision_for(self, backend: str, device: str) -> str:
        """The precision a lane of `backend` on `device` ("CPU", "GPU:<n>") runs: the race's, else its fastest."""
        return self.precision or fastest_precision(backend, device)

    @property
    def precision_text(self) -> str:
        """'float32 on every lane' or 'each lane in its fastest precision'."""
        if self.precision is not None:
            return f"{self.precision} on every lane"
        return "each lane in the precision its device computes fastest"

    @property
    def jit_text(self) -> str:
        """'XLA off', 'XLA on' or, per backend, 'XLA per backend (TensorFlow off, JAX on, PyTorch off)'."""
        if self.jit_compile is not None:
            return f"XLA {'on' if self.jit_compile else 'off'}"
        settings = ", ".join(f"{b.title} {'on' if b.jit_compile else 'off'}" for b in BACKENDS.values())
        return f"XLA per backend ({settings})"

    def train_config(self, backend: str, device: str = "CPU") -> TrainConfig:
        """The project's training settings for this workload on `backend` and `device` (one epoch over the timed
        subset)."""
        return TrainConfig(
            epochs=1,
            batch_size=self.batch_size,
            seed=self.seed,
            train_limit=self.train_images,
            validation_split=0.0,
            precision=self.precision_for(backend, device),
            jit_compile=self.jit_compile_for(backend),
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


class PhaseClock:
    """Times the scored phases: the device is synchronised before the clock is read, at the start and at the end.

    At the start, so that queued warm-up work is not scored; at the end, so that the clock cannot stop while the
    device is still working on the last step (asynchronous GPUs, and JAX even on the CPU). CPU time is read
    alongside: CPU seconds ÷ wall seconds is how many cores the phase really kept busy.
    """

    def __init__(self, recorder: _Recorder, synchronize: Callable[[], None]):
        self._recorder = recorder
        self._synchronize = synchronize
        self.started: dict[str, float] = {}  # Phase → when its clock started (lane clock).
        self._started_cpu: dict[str, float] = {}
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}

    def start(self, phase: str) -> float:
        self._synchronize()
        at = self._recorder.mark(phase, 0.0)
        self.started[phase], self._started_cpu[phase] = at, time.process_time()
        return at

    def stop(self, phase: str) -> float:
        self._synchronize()
        at = self._recorder.mark(phase, 1.0)
        self.seconds[phase] = at - self.started[phase]
        self.cpu_seconds[phase] = time.process_time() - self._started_cpu[phase]
        return at


def lane_data(workload: Workload) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(fit images, fit labels, test images, test labels) as NumPy float32 NHWC in [0, 1] and int32.

    The fit arrays are the warm-up batches, then the timed ones: a seeded choice of `train_images` training
    images in a seeded order, the same on every lane; the warm-up re-uses the first of them.
    """
    from fmnist_core.data.loading import load_fashion_mnist

    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    order = np.random.default_rng(workload.seed).permutation(len(x_train))[: workload.train_images]
    order = np.concatenate([np.resize(order, workload.warmup_batches * workload.batch_size), order])
    x_test, y_test = x_test[: workload.inference_images], y_test[: workload.inference_images]

    def scaled(images: np.ndarray) -> np.ndarray:
        return (images.astype(np.float32) / 255.0)[..., None]

    return scaled(x_train[order]), y_train[order].astype(np.int32), scaled(x_test), y_test.astype(np.int32)


def _batch_shapes_sample(count: int, batch_size: int) -> np.ndarray:
    """Indices giving one batch of each size the timed prediction will see, so warm-up compiles them all."""
    indices = np.arange(min(count, batch_size))
    remainder = count % batch_size
    if count > batch_size and remainder:
        indices = np.concatenate([indices, np.arange(remainder)])
    return indices


def run_lane(
    workload: Workload, backend: str, device: str, threads: int, started_at: float, send: Callable[[dict], None]
) -> None:
    """Run one timed repeat in this (fresh) process; progress events and the result go to `send`.

    Every step's loss reaches the host as a Python float (our batch callbacks make Keras convert the logs each
    step), and the clock additionally waits for the device (PhaseClock, lane_runtime): a phase's end time is
    when the device finished it, not when the work was queued.
    """
    from fmnist_core.race import lane_runtime

    recorder = _Recorder(started_at, send)
    recorder.mark("setup", 0.0)
    lane = lane_runtime.start(backend, device, threads)
    from fmnist_core.machine import import_keras

    keras = import_keras()
    from fmnist_core.models.registry import batch_norm_kind, build_from_spec
    from fmnist_core.training.loop import compile_model

    x_fit, y_fit, x_test, y_test = lane_data(workload)
    warmup_started = recorder.mark("warmup", 0.0)
    config = workload.train_config(backend, device)
    model = build_from_spec(workload.spec, seed=workload.seed, precision=config.precision)
    compile_model(model, config, workload.warmup_batches + workload.train_batches)
    sample = _batch_shapes_sample(len(x_test), workload.inference_batch_size)
    model.predict(x_test[sample], batch_size=workload.inference_batch_size, verbose=0)
    recorder.mark("warmup", 0.2)  # The progress bar gives compiling prediction a fifth, the warm-up steps the rest.
    # JAX keeps the training state outside the model during fit(); Keras exposes it to callbacks.
    clock = PhaseClock(recorder, lambda: lane.synchronize(getattr(model, "_jax_state", None)))

    class TrainClock(keras.callbacks.Callback):
        """Fires the starting gun after the warm-up steps and stops the clock after the last step."""

        def on_train_batch_end(self, batch, logs=None):
            timed = batch + 1 - workload.warmup_batches
            if timed < 0:
                recorder.mark("warmup", 0.2 + 0.8 * (batch + 1) / workload.warmup_batches)
            elif timed == 0:
                recorder.mark("warmup", 1.0)
                clock.start("train")
            elif timed < workload.train_batches:
                recorder.mark("train", timed / workload.train_batches)
            else:
                clock.stop("train")

    class InferenceProgress(keras.callbacks.Callback):
        def on_predict_batch_end(self, batch, logs=None):
            done = (batch + 1) * workload.inference_batch_size
            if done < workload.inference_images:
                recorder.mark("inference", done / workload.inference_images)

    model.fit(
        x_fit, y_fit, batch_size=workload.batch_size, epochs=1, shuffle=False, callbacks=[TrainClock()], verbose=0
    )
    clock.start("inference")
    predictions = model.predict(
        x_test, batch_size=workload.inference_batch_size, verbose=0, callbacks=[InferenceProgress()]
    )
    clock.stop("inference")  # predict() returns NumPy: the predictions are on the host.
    recorder.mark("done", 1.0)
    accuracy = float(np.mean(np.argmax(predictions, axis=1) == y_test))

    train_seconds, inference_seconds = clock.seconds["train"], clock.seconds["inference"]
    send(
        {
            "type": "result",
            "repeat": {
                "setup_seconds": round(warmup_started, 4),
                "warmup_seconds": round(clock.started["train"] - warmup_started, 4),
                "train_seconds": round(train_seconds, 4),
                "train_images_per_second": round(workload.train_images / train_seconds, 2),
                "inference_seconds": round(inference_seconds, 4),
                "inference_images_per_second": round(workload.inference_images / inference_seconds, 2),
                "events": [list(event) for event in recorder.events],
                "runtime": {
                    **lane.facts,
                    "backend": backend,
                    "keras_version": keras.__version__,
                    "jit_compile": bool(model.jit_compile),
                    "precision": model.dtype_policy.name,
                    "batch_norm": batch_norm_kind(model),
                    "sync": lane.sync_method,
                    # Where the weights live, e.g. "GPU:0": proof the lane used the device it claims.
                    "device": lane_runtime.weights_device(backend, model.weights[0].value),
                    "train_cpu_seconds": round(clock.cpu_seconds["train"], 4),
                    "inference_cpu_seconds": round(clock.cpu_seconds["inference"], 4),
                    "test_accuracy": round(accuracy, 4),  # A sanity check that the lane computed something real.
                    "tensorflow_imported": sys.modules.get("tensorflow") is not None,
                    "pid": os.getpid(),
                },
            },
        }
    )


def _protocol() -> Callable[[dict], None]:
    """A sender of JSON lines on the real stdout; library prints are moved to stderr so they cannot corrupt it."""
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return lambda message: protocol.write(json.dumps(message) + "\n")


def die_with_parent() -> None:
    """End this lane process when the race that started it ends, however it ends.

    A `race` killed by SIGTERM or SIGKILL (not its whole process group) left its lane training, re-parented to init,
    for up to 20 s, on a machine the next race needs alone. On Linux the kernel sends SIGKILL when the parent dies
    (PR_SET_PDEATHSIG); elsewhere a thread checks the parent once a second. Either way a parent already gone before
    this ran (its pid is in RACE_PARENT_VARIABLE) ends the lane at once.
    """
    parent = os.environ.get(RACE_PARENT_VARIABLE)
    if parent is None:  # Started by hand, not by a race: nothing to follow.
        return
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    else:

        def watch() -> None:
            while os.getppid() == int(parent):
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, name="race-lane-parent-watch", daemon=True).start()
    if os.getppid() != int(parent):
        os._exit(1)


def lane_main(workload_json: str, backend: str, device: str, threads: int, started_at: float) -> int:
    """Entry point of `race-lane`: run one repeat, speaking the line protocol on the real stdout."""
    die_with_parent()
    send = _protocol()
    try:
        run_lane(Workload.from_json(workload_json), backend, device, threads, started_at, send)
    except FmnistError as error:
        send({"type": "error", "message": str(error)})
        return error.exit_code
    return 0


def probe_main(backend: str) -> int:
    """Entry point of `race-probe`: report the backend's version and GPUs."""
    from fmnist_core.race.lane_runtime import probe

    die_with_parent()
    send = _protocol()
    send({"type": "probe", "facts": probe(backend)})
    return 0
