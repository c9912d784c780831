"""Train a registry model: the project's fast path, used by the CLI, the app, the race and the benchmark.

What makes it fast on a CPU (each measured, docs/results/throughput.md): bfloat16 mixed precision with a float32
softmax, batches of 256, a `tf.data` pipeline that keeps uint8 images in memory and scales them on the fly, and
XLA left off (slower on this CPU). What makes it repeatable: one seed drives weights, the validation
split, shuffling and augmentation (stateless random ops keyed by seed and image index).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fmnist_core.config import TrainConfig
from fmnist_core.errors import FmnistError
from fmnist_core.jobs.queue import seconds_to_go
from fmnist_core.machine import cpu_allocator, import_tensorflow, usable_cores
from fmnist_core.models.registry import ModelSpec, build_from_spec, get_spec


class TrainingCancelled(FmnistError):
    """The user pressed Stop; nothing was saved."""

    exit_code = 130


PACE_BATCHES = 30  # Batches before a training's own pace gives its time left (Progress.seconds_left).
LIVE_CHECKS = 10  # Checks on the fixed validation slice per run (every ~10 % of its batches), when asked for.


@dataclass(frozen=True)
class Progress:
    """One progress report, sent after every batch and every epoch."""

    kind: str  # "batch", "epoch", "start" or "check" (the validation slice's accuracy: metrics["slice_accuracy"]).
    epoch: int  # 1-based epoch number.
    epochs: int  # Planned epochs.
    batch: int  # 1-based batch within the epoch.
    batches: int  # Batches per epoch.
    elapsed_seconds: float  # Since training started (after the data was ready).
    images_per_second: float  # Training images per second so far in this epoch.
    metrics: dict = field(default_factory=dict)  # Latest loss/accuracy (and val_* at epoch end).

    @property
    def batches_done(self) -> int:
        return (self.epoch - 1) * self.batches + self.batch

    @property
    def fraction(self) -> float:
        """Share of all planned batches done, 0..1."""
        if self.epochs * self.batches == 0:
            return 0.0
        return self.batches_done / (self.epochs * self.batches)

    @property
    def seconds_left(self) -> float | None:
        """Training seconds still to go at the pace so far (validation included, data loading not); None until
        PACE_BATCHES batches have run, so the first batch's one-off tracing cannot inflate it much."""
        if self.kind == "start" or self.batches_done < min(PACE_BATCHES, self.epochs * self.batches):
            return None
        return seconds_to_go(self.elapsed_seconds, self.fraction)


ProgressCallback = Callable[[Progress], None]
StopCheck = Callable[[], bool]


@dataclass
class TrainResult:
    """A trained model and what happened while training it."""

    spec: ModelSpec
    config: TrainConfig
    model: object  # keras.Model
    history: dict[str, list[float]]  # loss, accuracy, val_loss, val_accuracy per epoch.
    epoch_seconds: list[float]  # Wall time of each epoch (validation included).
    images_per_second: float  # Training images per second, all epochs, validation excluded.
    train_images: int  # Images in the training split actually used.
    validation_images: int
    speed_settings: dict  # precision, jit_compile, threads, batch_size, device.
    best_epoch: int  # 1-based epoch whose weights the model holds.

    @property
    def wall_seconds(self) -> float:
        return float(sum(self.epoch_seconds))


def split_indices(total: int, config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, validation) index split of the training set; validation is never trained on."""
    order = np.random.default_rng(config.seed).permutation(total)
    validation_count = int(round(total * config.validation_split))
    validation, train = order[:validation_count], order[validation_count:]
    if config.train_limit is not None:
        train = train[: config.train_limit]
    return np.sort(train), np.sort(validation)


def scale_images(images):
    """uint8 (N, 28, 28) → float32 (N, 28, 28, 1) in [0, 1], inside the TF graph."""
    import tensorflow as tf

    return tf.cast(images, tf.float32)[..., None] / 255.0


@dataclass(frozen=True)
class Augmentation:
    """What happens to each training image besides a random horizontal flip."""

    shift_pixels: int = 2  # Random translation of up to ± this many pixels (Fashion-MNIST items are centred).
    erase_probability: float = 0.0  # Share of images given one rectangle of random noise (random erasing).

    @classmethod
    def of(cls, config: TrainConfig) -> Augmentation | None:
        """The augmentation `config` asks for, or None when it trains on the pictures as they are."""
        return cls(config.shift_pixels, config.erase_probability) if config.augment else None


# Random erasing draws the rectangle's area and aspect ratio from the ranges of Zhong et al. (2017).
ERASE_AREA = (0.02, 0.4)
ERASE_ASPECT = (0.3, 1 / 0.3)


def augment_batch(images, step, seed: int, augmentation: Augmentation = Augmentation()):
    """Random horizontal flip, shift and (optionally) erasing per image of a float batch (N, 28, 28, 1).

    Vectorised (gathers and masks instead of a per-image loop) and stateless: the draws depend only on
    (seed, batch step), so a run is repeatable whatever the thread scheduling.
    """
    import tensorflow as tf

    count = tf.shape(images)[0]
    size = images.shape[1]
    key = tf.stack([tf.cast(seed, tf.int64), tf.cast(step, tf.int64)])

    def uniform(offset: int, shape, low=0.0, high=1.0):
        return tf.random.stateless_uniform(shape, seed=key + offset, minval=low, maxval=high)

    flip = uniform(0, [count]) < 0.5
    images = tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)
    shift = augmentation.shift_pixels
    if shift:
        shifts = tf.random.stateless_uniform([count, 2], seed=key + 1, minval=0, maxval=2 * shift + 1, dtype=tf.int32)
        padded = tf.pad(images, [[0, 0], [shift, shift], [shift, shift], [0, 0]])
        offsets = tf.range(size)[None, :]
        rows = tf.gather(padded, shifts[:, :1] + offsets, axis=1, batch_dims=1)
        images = tf.gather(rows, shifts[:, 1:] + offsets, axis=2, batch_dims=1)
    if augmentation.erase_probability:
        area = uniform(2, [count], *ERASE_AREA) * size * size
        aspect = tf.exp(uniform(3, [count], math.log(ERASE_ASPECT[0]), math.log(ERASE_ASPECT[1])))
        height = tf.clip_by_value(tf.round(tf.sqrt(area * aspect)), 1, size)
        width = tf.clip_by_value(tf.round(tf.sqrt(area / aspect)), 1, size)
        top = tf.floor(uniform(4, [count]) * (size - height + 1))
        left = tf.floor(uniform(5, [count]) * (size - width + 1))
        positions = tf.range(size, dtype=tf.float32)[None, :]
        in_rows = (positions >= top[:, None]) & (positions < (top + height)[:, None])
        in_columns = (positions >= left[:, None]) & (positions < (left + width)[:, None])
        erased = uniform(6, [count]) < augmentation.erase_probability
        mask = in_rows[:, :, None] & in_columns[:, None, :] & erased[:, None, None]
        images = tf.where(mask[..., None], uniform(7, tf.shape(images)), images)
    return images


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    *,
    shuffle_seed: int | None = None,
    augment: Augmentation | None = None,
):
    """A `tf.data` pipeline over uint8 arrays: shuffle (seeded) → batch → scale (→ augment) → prefetch."""
    tf = import_tensorflow()
    dataset = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int32)))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(images), seed=shuffle_seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if augment is not None:
        # The batch counter restarts every epoch, but the shuffle order does not repeat, so each image
        # still meets a different flip and shift every epoch.
        seed = shuffle_seed or 0
        dataset = dataset.enumerate().map(
            lambda step, pair: (augment_batch(scale_images(pair[0]), step, seed, augment), pair[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    else:
        dataset = dataset.map(lambda x, y: (scale_images(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    # tf.data's autotuner thread sleeps in doubling periods (10 ms, 20 ms, … so it wakes 10.23 s, 20.47 s, 40.95 s
    # after the iterator starts), and destroying an iterator waits for its next wake-up: measured here, every fit()
    # and every epoch ended up to ~20 s late (a 10.5 s fit took exactly 20.48 s). Without the autotuner the map and
    # prefetch still run in parallel (TF picks the sizes) and the wait is gone (benchmarks/tf_data_stall.py).
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)


def learning_rate_schedule(config: TrainConfig, steps_per_epoch: int):
    """The configured schedule over all planned steps: linear warm-up from 0, then constant or decay to 0."""
    from fmnist_core.models.recipe_objects import WarmupThenDecay

    total_steps = max(1, config.epochs * steps_per_epoch)
    warmup_steps = int(round(config.warmup_fraction * total_steps))
    return WarmupThenDecay(config.learning_rate, total_steps, warmup_steps, config.schedule)


def make_optimizer(config: TrainConfig, steps_per_epoch: int):
    """Adam (AdamW when weight decay is set) on the configured schedule, averaging the weights if asked."""
    import keras

    settings = {
        "beta_2": config.adam_beta_2,
        "use_ema": config.ema_momentum is not None,
        "ema_momentum": config.ema_momentum or 0.99,
    }
    schedule = learning_rate_schedule(config, steps_per_epoch)
    if config.weight_decay > 0:
        return keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay, **settings)
    return keras.optimizers.Adam(schedule, **settings)


def make_loss(label_smoothing: float):
    """Cross-entropy on integer labels; with smoothing, each target keeps 1 − s and spreads s over all classes."""
    if not label_smoothing:
        return "sparse_categorical_crossentropy"
    from fmnist_core.models.recipe_objects import SmoothedSparseCrossentropy

    return SmoothedSparseCrossentropy(label_smoothing)


def compile_model(model, config: TrainConfig, steps_per_epoch: int) -> None:
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch),
        loss=make_loss(config.label_smoothing),
        metrics=["accuracy"],
        # Set explicitly: Keras' "auto" would switch XLA on whenever a GPU exists.
        jit_compile=config.jit_compile,
    )


def _validate_averaged_weights():
    """A callback that puts the weight average in place for each validation; training resumes on the raw weights.

    Keras swaps the average in only once, after the last epoch, so without this the per-epoch validation
    curve (and early stopping) would judge weights that are never saved.
    """
    import keras

    class ValidateAveragedWeights(keras.callbacks.Callback):
        raw_weights = None

        def on_test_begin(self, logs=None):
            self.raw_weights = [variable.numpy() for variable in self.model.trainable_weights]
            self.model.optimizer.finalize_variable_values(self.model.trainable_weights)

        def on_epoch_begin(self, epoch, logs=None):
            # The averaged weights stay in place through on_epoch_end, so early stopping keeps those.
            if self.raw_weights is not None:
                for variable, value in zip(self.model.trainable_weights, self.raw_weights, strict=True):
                    variable.assign(value)
                self.raw_weights = None

    return ValidateAveragedWeights()


def slice_accuracy(model, images, labels: np.ndarray) -> float:
    """Accuracy of `model` (inference mode: no weight, statistic or random state changes) on scaled images."""
    predictions = np.asarray(model(images, training=False))
    return float(np.mean(predictions.argmax(axis=1) == labels))


def _progress_callback(
    config: TrainConfig,
    batches: int,
    progress: ProgressCallback | None,
    should_stop: StopCheck | None,
    clock: dict,
    live_slice: tuple | None = None,
):
    import keras

    total_batches = config.epochs * batches
    check_every = max(1, round(total_batches / LIVE_CHECKS))

    class Reporter(keras.callbacks.Callback):
        """Forwards Keras' batch/epoch events as `Progress` and honours the stop request; with `live_slice`
        ((scaled images, labels) of the fixed validation slice) it also reports that slice's accuracy every
        ~10 % of the run, so a two-epoch run draws a validation curve long before its first epoch ends."""

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch + 1
            clock["epoch_started"] = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if should_stop is not None and should_stop():
                # Raised here rather than `stop_training`: Keras would still validate the epoch first, which took
                # 13 s of a stopped run on a loaded 2-core machine (tracing the test step); Stop must land in ~1 s.
                raise TrainingCancelled("Training was stopped; nothing was saved.")
            now = time.perf_counter()
            clock["last_batch_end"] = now
            if progress is not None:
                seconds = max(now - clock["epoch_started"], 1e-9)
                images = min((batch + 1) * config.batch_size, clock["train_images"])
                progress(
                    Progress(
                        "batch",
                        self.epoch,
                        config.epochs,
                        batch + 1,
                        batches,
                        now - clock["started"],
                        images / seconds,
                        _floats(logs),
                    )
                )
                done = (self.epoch - 1) * batches + batch + 1
                if live_slice is not None and (done % check_every == 0 or done == total_batches):
                    accuracy = slice_accuracy(self.model, *live_slice)
                    progress(
                        Progress(
                            "check",
                            self.epoch,
                            config.epochs,
                            batch + 1,
                            batches,
                            time.perf_counter() - clock["started"],
                            images / seconds,
                            {"slice_accuracy": accuracy},
                        )
                    )

        def on_epoch_end(self, epoch, logs=None):
            now = time.perf_counter()
            clock["epoch_seconds"].append(now - clock["epoch_started"])
            clock["train_seconds"] += clock["last_batch_end"] - clock["epoch_started"]
            if progress is not None:
                progress(
                    Progress(
                        "epoch",
                        epoch + 1,
                        config.epochs,
                        batches,
                        batches,
                        now - clock["started"],
                        clock["train_images"] / max(clock["epoch_seconds"][-1], 1e-9),
                        _floats(logs),
                    )
                )

    return Reporter()


def _floats(logs) -> dict:
    return {key: float(value) for key, value in (logs or {}).items()}


def device_name() -> str:
    """The device Keras will train on: the first GPU when TensorFlow sees one, else the CPU."""
    tf = import_tensorflow()
    return "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU"


def train(
    name: str | ModelSpec,
    config: TrainConfig,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    data=None,
    live_check_images: int = 0,
) -> TrainResult:
    """Train registry model `name` with `config`; raises TrainingCancelled when `should_stop()` turns true.

    data: ((x_train, y_train), (x_test, y_test)) uint8 arrays; loaded from disk when omitted.
    live_check_images: when > 0 (and `progress` is given), the first that many validation images are the fixed
    slice whose accuracy is reported as "check" progress every ~10 % of the run. The run itself is unchanged:
    the checks run the model in inference mode and the history and final figures are computed as without them.
    """
    tf = import_tensorflow()
    import keras

    spec = name if isinstance(name, ModelSpec) else get_spec(name)
    if data is None:
        from fmnist_core.data.loading import load_fashion_mnist

        data = load_fashion_mnist()
    (x_train, y_train), _ = data
    train_index, validation_index = split_indices(len(x_train), config)
    batches = math.ceil(len(train_index) / config.batch_size)

    keras.utils.set_random_seed(config.seed)
    model = build_from_spec(spec, seed=config.seed, precision=config.precision)
    compile_model(model, config, batches)
    train_data = make_dataset(
        x_train[train_index],
        y_train[train_index],
        config.batch_size,
        shuffle_seed=config.seed,
        augment=Augmentation.of(config),
    )
    validation_data = None
    if len(validation_index):
        validation_data = make_dataset(x_train[validation_index], y_train[validation_index], 1024)

    callbacks = []
    clock = {
        "started": time.perf_counter(),
        "epoch_seconds": [],
        "train_images": len(train_index),
        "epoch_started": time.perf_counter(),
        "train_seconds": 0.0,
    }
    live_slice = None
    if live_check_images > 0 and progress is not None and len(validation_index):
        chosen = validation_index[:live_check_images]
        live_slice = (scale_images(x_train[chosen]), y_train[chosen].astype(np.int64))
    callbacks.append(_progress_callback(config, batches, progress, should_stop, clock, live_slice))
    if config.ema_momentum is not None:
        callbacks.append(_validate_averaged_weights())
    if config.early_stopping_patience and validation_data is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy", patience=config.early_stopping_patience, restore_best_weights=True
            )
        )
    if progress is not None:
        progress(Progress("start", 1, config.epochs, 0, batches, 0.0, 0.0))
    keras_history = model.fit(
        train_data, validation_data=validation_data, epochs=config.epochs, callbacks=callbacks, verbose=0, shuffle=False
    )

    history = {
        key: [float(v) for v in values]
        for key, values in keras_history.history.items()
        if key in ("loss", "accuracy", "val_loss", "val_accuracy")
    }
    best_epoch = len(history["loss"])
    if config.early_stopping_patience and "val_accuracy" in history:
        best_epoch = int(np.argmax(history["val_accuracy"])) + 1
    return TrainResult(
        spec=spec,
        config=config,
        model=model,
        history=history,
        epoch_seconds=[float(s) for s in clock["epoch_seconds"]],
        images_per_second=len(train_index) * len(clock["epoch_seconds"]) / max(clock["train_seconds"], 1e-9),
        train_images=len(train_index),
        validation_images=len(validation_index),
        speed_settings={
            "precision": config.precision,
            "jit_compile": config.jit_compile,
            "threads": tf.config.threading.get_intra_op_parallelism_threads() or usable_cores(),
            "batch_size": config.batch_size,
            "device": device_name(),
            "cpu_allocator": cpu_allocator(),
        },
        best_epoch=best_epoch,
    )
