"""Training on tiny synthetic data: learning happens, progress is reported, stop works, seeds repeat."""

from __future__ import annotations

import numpy as np
import pytest

from fmnist_core.config import PRESETS, TrainConfig, get_preset
from fmnist_core.errors import ConfigError
from fmnist_core.machine import cpu_allocator, import_tensorflow
from fmnist_core.training.loop import (
    PACE_BATCHES,
    Augmentation,
    Progress,
    TrainingCancelled,
    augment_batch,
    make_dataset,
    split_indices,
    train,
)


@pytest.mark.slow  # Trains a model (besides the session's shared tiny one).
def test_training_learns_and_reports_progress(tiny_data, tiny_spec, tiny_config):
    events = []
    result = train(tiny_spec, tiny_config, progress=events.append, data=tiny_data)
    assert result.history["loss"][-1] < result.history["loss"][0]
    assert set(result.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(result.epoch_seconds) == tiny_config.epochs
    assert result.images_per_second > 0
    assert result.speed_settings["precision"] == "float32"
    assert result.speed_settings["jit_compile"] is False
    # Keras trains on the first GPU when TensorFlow sees one (a CI machine may have one), else on the CPU.
    gpus = import_tensorflow().config.list_physical_devices("GPU")
    assert result.speed_settings["device"] == ("GPU:0" if gpus else "CPU")
    assert result.speed_settings["cpu_allocator"] == cpu_allocator()
    kinds = [event.kind for event in events]
    assert kinds[0] == "start" and kinds.count("epoch") == tiny_config.epochs
    batches = [event for event in events if event.kind == "batch"]
    assert batches[-1].fraction == pytest.approx(1.0)
    assert all(a.fraction <= b.fraction for a, b in zip(batches, batches[1:], strict=False))


@pytest.mark.slow  # Trains a model (besides the session's shared tiny one).
def test_same_seed_gives_identical_history(tiny_data, tiny_spec, tiny_config):
    first = train(tiny_spec, tiny_config, data=tiny_data)
    second = train(tiny_spec, tiny_config, data=tiny_data)
    assert first.history == second.history


@pytest.mark.slow  # Trains a model (besides the session's shared tiny one).
def test_should_stop_cancels_between_batches(tiny_data, tiny_spec, tiny_config):
    seen = []

    def stop_after_three() -> bool:
        seen.append(1)
        return len(seen) >= 3

    with pytest.raises(TrainingCancelled, match="nothing was saved"):
        train(tiny_spec, tiny_config.replace(epochs=5), should_stop=stop_after_three, data=tiny_data)
    assert len(seen) == 3


def test_split_is_seeded_disjoint_and_limited():
    config = TrainConfig(seed=3, validation_split=0.2, train_limit=50)
    train_index, validation_index = split_indices(200, config)
    assert len(validation_index) == 40 and len(train_index) == 50
    assert not set(train_index) & set(validation_index)
    again = split_indices(200, config)
    np.testing.assert_array_equal(again[0], train_index)
    other = split_indices(200, config.replace(seed=4))
    assert not np.array_equal(other[1], validation_index)


def test_augmentation_flips_and_shifts_but_keeps_content():
    image = np.zeros((1, 28, 28, 1), np.float32)
    image[0, 10:18, 4:8] = 1.0
    batch = np.repeat(image, 64, axis=0)
    out = np.asarray(augment_batch(batch, step=0, seed=1))
    assert out.shape == batch.shape
    # A shift of at most 2 px never pushes this block off the canvas, so every pixel survives.
    np.testing.assert_allclose(out.sum(axis=(1, 2, 3)), batch.sum(axis=(1, 2, 3)))
    assert len({out[i].tobytes() for i in range(64)}) > 5
    np.testing.assert_array_equal(out, np.asarray(augment_batch(batch, step=0, seed=1)))


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"epochs": -1}, "epochs"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch size"),
        ({"learning_rate": 0}, "learning rate"),
        ({"train_limit": 0}, "train limit"),
        ({"validation_split": 0.9}, "validation split"),
        ({"precision": "int8"}, "precision"),
        ({"schedule": "steps"}, "schedule"),
    ],
)
def test_invalid_settings_give_specific_messages(changes, words):
    with pytest.raises(ConfigError, match=words):
        TrainConfig(**changes)


def test_presets_exist_and_unknown_preset_lists_valid_ones():
    assert set(PRESETS) == {"quick", "class", "full"}
    assert get_preset("full").augment and get_preset("full").train_limit is None
    # The class preset is a two-epoch live demo on every training image (issue 13).
    assert get_preset("class").epochs <= 2 and get_preset("class").train_limit is None
    with pytest.raises(ConfigError, match="quick, class, full"):
        get_preset("turbo")


@pytest.mark.parametrize("augment", [None, Augmentation(erase_probability=0.5)])
def test_the_pipeline_runs_without_the_tf_data_autotuner(augment):
    # With the autotuner on, destroying an iterator waited for the tuner's next wake-up: every epoch and every
    # fit() ended up to ~20 s late here (benchmarks/tf_data_stall.py shows it). The pipeline must keep it off
    # and still deliver scaled float batches in a seeded order.
    images = np.arange(10 * 28 * 28, dtype=np.uint8).reshape(10, 28, 28)
    labels = np.arange(10)
    dataset = make_dataset(images, labels, 4, shuffle_seed=3, augment=augment)
    assert dataset.options().autotune.enabled is False
    batches = list(dataset.as_numpy_iterator())
    assert [len(batch_labels) for _, batch_labels in batches] == [4, 4, 2]
    assert all(
        batch.dtype == np.float32 and batch.shape[1:] == (28, 28, 1) and batch.max() <= 1.0 for batch, _ in batches
    )
    again = [
        batch_labels.tolist()
        for _, batch_labels in make_dataset(images, labels, 4, shuffle_seed=3, augment=augment).as_numpy_iterator()
    ]
    assert again == [batch_labels.tolist() for _, batch_labels in batches]


def test_a_trainings_time_left_comes_from_its_pace_once_enough_batches_ran():
    # 2 epochs of 100 batches; 60 s so far.
    def at(epoch: int, batch: int, kind: str = "batch") -> Progress:
        return Progress(kind, epoch, 2, batch, 100, 60.0, 500.0)

    assert at(1, 0, "start").seconds_left is None
    assert at(1, PACE_BATCHES - 1).seconds_left is None  # The first batch's tracing would still weigh too much.
    assert at(1, 50).seconds_left == pytest.approx(60.0 * 150 / 50)  # A quarter done in 60 s: 180 s to go.
    assert at(2, 100, "epoch").seconds_left == 0.0
    short = Progress("batch", 1, 1, 10, 10, 5.0, 500.0)  # A run shorter than PACE_BATCHES: known at its end.
    assert short.seconds_left == 0.0
