"""The time-to-accuracy recipe's options on tiny data: schedule shape, label smoothing, weight averaging, erasing."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from fmnist_core.cli.train_command import add_config_arguments, config_from_arguments
from fmnist_core.config import TrainConfig
from fmnist_core.errors import ConfigError
from fmnist_core.training.loop import Augmentation, augment_batch, learning_rate_schedule, make_loss, train


def rates(config: TrainConfig, steps_per_epoch: int) -> np.ndarray:
    schedule = learning_rate_schedule(config, steps_per_epoch)
    return np.array([float(schedule(step)) for step in range(config.epochs * steps_per_epoch + 1)])


@pytest.mark.parametrize("shape", ["cosine", "linear"])
def test_warm_up_rises_linearly_to_the_peak_then_decays_to_zero(shape):
    config = TrainConfig(epochs=4, learning_rate=0.01, schedule=shape, warmup_fraction=0.25)
    lr = rates(config, steps_per_epoch=10)  # 40 steps, 10 of warm-up.
    np.testing.assert_allclose(lr[:11], np.linspace(0, 0.01, 11), rtol=1e-6, atol=1e-9)
    assert lr.argmax() == 10
    assert np.all(np.diff(lr[10:]) < 0)
    assert lr[-1] == pytest.approx(0.0, abs=1e-9)
    middle_of_decay = lr[25]
    # Halfway through the decay cosine still sits at half the peak, like the linear ramp.
    assert middle_of_decay == pytest.approx(0.005, rel=1e-5)
    if shape == "linear":
        np.testing.assert_allclose(np.diff(lr[10:]), -0.01 / 30, rtol=1e-4)


def test_cosine_without_warm_up_is_keras_cosine_decay_exactly():
    # Runs of the earlier recipe must learn the same weights, so the schedule must agree bit for bit where the
    # optimizer calls it: inside a compiled graph, whose rewrites once moved the last bit of 55 of 212 steps.
    import keras
    import tensorflow as tf

    config = TrainConfig(epochs=1, learning_rate=2e-3, schedule="cosine")
    ours = learning_rate_schedule(config, steps_per_epoch=211)
    reference = keras.optimizers.schedules.CosineDecay(2e-3, decay_steps=211)
    step = tf.Variable(0, dtype=tf.int64)
    both = tf.function(lambda: (ours(step), reference(step)))
    for value in range(213):
        step.assign(value)
        mine, keras_value = both()
        assert float(mine) == float(keras_value), value


def test_constant_schedule_holds_the_peak_after_warm_up():
    lr = rates(TrainConfig(epochs=2, learning_rate=1e-3, warmup_fraction=0.5), steps_per_epoch=5)
    assert lr[0] == 0.0 and lr[2] == pytest.approx(4e-4)
    np.testing.assert_allclose(lr[5:], 1e-3)


def test_label_smoothing_changes_the_loss_as_its_definition_says():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], np.float32)
    labels = np.array([0, 2])
    assert make_loss(0.0) == "sparse_categorical_crossentropy"  # no smoothing: Keras' own loss, as before
    smoothing = 0.3
    smoothed = float(make_loss(smoothing)(labels, probabilities))
    targets = np.eye(3)[labels] * (1 - smoothing) + smoothing / 3
    expected = float(np.mean(-(targets * np.log(probabilities)).sum(axis=1)))
    assert smoothed == pytest.approx(expected, rel=1e-5)
    unsmoothed = float(np.mean(-np.log(probabilities[np.arange(2), labels])))
    assert smoothed > unsmoothed


@pytest.mark.slow  # Trains two tiny models.
def test_label_smoothing_trains_a_different_model(tiny_data, tiny_spec, tiny_config):
    plain = train(tiny_spec, tiny_config, data=tiny_data)
    smoothed = train(tiny_spec, tiny_config.replace(label_smoothing=0.2), data=tiny_data)
    assert smoothed.history["loss"] != plain.history["loss"]
    # Smoothed targets can never be met exactly, so the loss stays further from zero.
    assert smoothed.history["loss"][-1] > plain.history["loss"][-1]


@pytest.mark.slow  # Trains two tiny models.
def test_weight_averaging_saves_the_average_and_leaves_training_alone(tiny_data, tiny_spec, tiny_config):
    raw = train(tiny_spec, tiny_config.replace(epochs=3), data=tiny_data)
    averaged = train(tiny_spec, tiny_config.replace(epochs=3, ema_momentum=0.9), data=tiny_data)
    # The raw weights follow the same path (training loss identical, so each validation's swap to the average
    # was undone before the next epoch), but the model kept is their average...
    assert averaged.history["loss"] == raw.history["loss"]
    raw_weights, averaged_weights = raw.model.trainable_weights, averaged.model.trainable_weights
    assert any(not np.allclose(a.numpy(), b.numpy()) for a, b in zip(raw_weights, averaged_weights, strict=True))
    stored = averaged.model.optimizer._model_variables_moving_average
    for weight, average in zip(averaged_weights, stored, strict=True):
        np.testing.assert_array_equal(weight.numpy(), average.numpy())
    # ...and each epoch's validation judged the average too, so the curve shows what is saved.
    assert averaged.history["val_loss"] != raw.history["val_loss"]


def test_shift_zero_means_flips_only():
    rng = np.random.default_rng(0)
    batch = rng.random((32, 28, 28, 1)).astype(np.float32)
    out = np.asarray(augment_batch(batch, step=3, seed=5, augmentation=Augmentation(shift_pixels=0)))
    flipped = batch[:, :, ::-1]
    same = [np.array_equal(out[i], batch[i]) for i in range(32)]
    mirrored = [np.array_equal(out[i], flipped[i]) for i in range(32)]
    assert all(a or b for a, b in zip(same, mirrored, strict=True))
    assert 0 < sum(mirrored) < 32


def test_random_erasing_replaces_one_rectangle_in_about_the_asked_share():
    batch = np.zeros((400, 28, 28, 1), np.float32)
    augmentation = Augmentation(shift_pixels=0, erase_probability=0.5)
    out = np.asarray(augment_batch(batch, step=0, seed=2, augmentation=augmentation))
    touched = out.reshape(400, -1).max(axis=1) > 0
    assert 0.4 < touched.mean() < 0.6
    for image in out[touched][:20, :, :, 0]:
        rows, columns = np.nonzero(image)
        # One axis-aligned rectangle: every pixel inside its bounding box is noise (noise is never exactly 0).
        box = image[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1]
        assert (box > 0).mean() > 0.99
        assert 0.02 * 784 * 0.5 <= box.size <= 0.4 * 784 * 1.5
    never = Augmentation(shift_pixels=0, erase_probability=0.0)
    assert np.asarray(augment_batch(batch, step=0, seed=2, augmentation=never)).max() == 0


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"warmup_fraction": 1.0}, "warm-up fraction"),
        ({"warmup_fraction": -0.1}, "warm-up fraction"),
        ({"label_smoothing": 1.0}, "label smoothing"),
        ({"ema_momentum": 1.0}, "EMA momentum"),
        ({"ema_momentum": 0.0}, "EMA momentum"),
        ({"adam_beta_2": 1.0}, "Adam beta 2"),
        ({"shift_pixels": -1}, "shift pixels"),
        ({"shift_pixels": 1.5}, "shift pixels"),
        ({"erase_probability": 1.5}, "erase probability"),
        ({"schedule": "one-cycle"}, "schedule must be one of constant, cosine, linear"),
    ],
)
def test_invalid_recipe_settings_give_specific_messages(changes, words):
    with pytest.raises(ConfigError, match=words):
        TrainConfig(**changes)


def test_command_line_sets_every_recipe_field_and_zero_turns_options_off():
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    flags = (
        "--preset full --warmup-fraction 0.2 --label-smoothing 0.1 --ema-momentum 0.995 --shift-pixels 1 "
        "--erase-probability 0.3 --schedule linear --weight-decay 0.05 --early-stopping-patience 0 --adam-beta-2 0.99"
    )
    arguments = parser.parse_args(flags.split(" "))
    config = config_from_arguments(arguments)
    assert (config.warmup_fraction, config.label_smoothing, config.ema_momentum) == (0.2, 0.1, 0.995)
    assert (config.shift_pixels, config.erase_probability, config.schedule) == (1, 0.3, "linear")
    assert config.weight_decay == 0.05 and config.early_stopping_patience is None and config.adam_beta_2 == 0.99
    off = config_from_arguments(parser.parse_args(["--ema-momentum", "0"]))
    assert off.ema_momentum is None


@pytest.mark.parametrize("preset", ["quick", "class", "full"])
def test_the_table_benchmark_trains_exactly_the_config_it_names(preset):
    # benchmarks/recipe_table.py trains each row through `train` flags; every setting must survive that trip.
    from benchmarks.recipe_table import OLD_RECIPES, train_arguments
    from fmnist_core.config import get_preset

    for config in (OLD_RECIPES[preset], get_preset(preset).replace(seed=7)):
        arguments = train_arguments("model1", config)
        assert arguments[:2] == ["--model", "model1"]


def test_time_to_accuracy_counts_whole_epochs_up_to_the_first_one_that_reaches_it():
    from benchmarks.recipe_table import seconds_to_reach

    accuracies, seconds = [0.88, 0.915, 0.905, 0.93], [10.0, 11.0, 12.0, 13.0]
    assert seconds_to_reach(accuracies, seconds, 0.90) == 21.0
    assert seconds_to_reach(accuracies, seconds, 0.93) == 46.0
    assert seconds_to_reach(accuracies, seconds, 0.95) is None


def test_the_throughput_comparison_alternates_the_recipes_each_into_an_empty_cache(tmp_path, monkeypatch, capsys):
    import benchmarks.recipe_table as table

    calls = []

    def fake_train_row(preset, recipe, model, config, cache_dir):
        assert list(cache_dir.iterdir()) == [], "each run starts from an empty cache, so nothing is reused"
        calls.append((recipe, config, cache_dir))
        return {"recipe": recipe, "images_per_second": {"old": 2000.0, "new": 1900.0 + 100 * len(calls)}[recipe]}

    monkeypatch.setattr(table, "train_row", fake_train_row)
    results = tmp_path / "throughput.jsonl"
    table.throughput(2, results)

    assert [recipe for recipe, _, _ in calls] == ["old", "new", "old", "new"]
    assert [config for _, config, _ in calls[:2]] == [
        table.OLD_RECIPES["full"].replace(epochs=table.THROUGHPUT_EPOCHS),
        table.PRESETS["full"].replace(epochs=table.THROUGHPUT_EPOCHS),
    ]
    assert len({cache for _, _, cache in calls}) == 4
    assert [row["round"] for row in table.read_rows(results)] == [1, 1, 2, 2]
    printed = capsys.readouterr().out
    assert "per round: 1.050, 1.150" in printed  # 2,100/2,000 and 2,300/2,000.
    assert "median 1.100" in printed


def test_more_throughput_rounds_follow_the_recorded_ones_and_the_verdict_covers_them_all(tmp_path, monkeypatch, capsys):
    import benchmarks.recipe_table as table

    results = tmp_path / "throughput.jsonl"
    earlier = [
        {"round": 1, "recipe": "old", "images_per_second": 1000.0},
        {"round": 1, "recipe": "new", "images_per_second": 950.0},
    ]
    for row in earlier:
        table.append_row(results, row)
    speeds = {"old": 1000.0, "new": 960.0}
    monkeypatch.setattr(
        table, "train_row", lambda preset, recipe, *_: {"recipe": recipe, "images_per_second": speeds[recipe]}
    )
    table.throughput(1, results)
    speeds["new"] = 970.0
    table.throughput(1, results)

    assert [row["round"] for row in table.read_rows(results)] == [1, 1, 2, 2, 3, 3]
    printed = capsys.readouterr().out.splitlines()
    # Changes −5, −4, −3 %: mean −4, sample deviation 1, t(2) = 4.303, half-width 4.303 / √3 = 2.48.
    assert printed[-3:] == [
        "new/old images per second, per round: 0.950, 0.960, 0.970",
        "median 0.960",
        "the new recipe trains slower per image: -4.0 % ± 2.5 % (95 % interval, 3 rounds)",
    ]


def test_the_throughput_verdict_says_not_distinguishable_when_the_interval_holds_zero_and_skips_half_rounds():
    from benchmarks.recipe_table import throughput_verdict

    rows = [
        {"round": 1, "recipe": "old", "images_per_second": 1000.0},
        {"round": 1, "recipe": "new", "images_per_second": 980.0},
        {"round": 2, "recipe": "new", "images_per_second": 1020.0},
        {"round": 2, "recipe": "old", "images_per_second": 1000.0},
        {"round": 3, "recipe": "old", "images_per_second": 1000.0},  # Stopped before its new run: not a pair.
    ]
    # Changes −2 and +2 %: mean 0, deviation 2.83, t(1) = 12.706, half-width 12.706 × 2.83 / √2 = 25.4.
    assert throughput_verdict(rows).splitlines()[-1] == (
        "not distinguishable: +0.0 % ± 25.4 % (95 % interval, 2 rounds), an interval that holds 0"
    )
    assert throughput_verdict(rows[:2]).splitlines()[-1] == "change -2.0 % on one round: one round cannot tell."
    assert throughput_verdict(rows[4:]) == "No round has trained both recipes yet."


def test_each_throughput_variant_is_the_new_recipe_with_only_old_settings_put_back():
    import dataclasses

    import benchmarks.recipe_table as table

    old, new = table.OLD_RECIPES["full"], table.PRESETS["full"]
    assert table.throughput_recipes(False) == {"old": old, "new": new}
    recipes = table.throughput_recipes(True)
    assert list(recipes)[:2] == ["old", "new"]
    variants = {name: config for name, config in recipes.items() if name not in ("old", "new")}
    assert len(variants) == 3
    for name, config in variants.items():
        changed = {f.name for f in dataclasses.fields(new) if getattr(config, f.name) != getattr(new, f.name)}
        assert changed, f"{name!r} trains the new recipe itself"
        assert all(getattr(config, field) == getattr(old, field) for field in changed), name


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--throughput", "0"], "rounds ≥ 1"),
        (["--throughput", "-2"], "rounds ≥ 1"),
        (["--variants"], "goes with"),
        (["--throughput", "2", "--throughput-summary"], "give one"),
    ],
)
def test_throughput_arguments_that_train_nothing_or_clash_are_refused(arguments, message, monkeypatch, capsys):
    import benchmarks.recipe_table as table

    monkeypatch.setattr(table, "train_row", lambda *_: pytest.fail("trained despite the refused arguments"))
    with pytest.raises(SystemExit) as stopped:
        table.main(arguments)
    assert stopped.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("variants", [False, True])
def test_the_throughput_summary_reads_the_recorded_rounds_without_training(variants, tmp_path, monkeypatch, capsys):
    import benchmarks.recipe_table as table

    rows = [
        {"round": 1, "recipe": "old", "images_per_second": 1000.0},
        {"round": 1, "recipe": "new", "images_per_second": 990.0},
    ]
    recorded = tmp_path / ("variants.jsonl" if variants else "plain.jsonl")
    for row in rows:
        table.append_row(recorded, row)
    monkeypatch.setattr(table, "THROUGHPUT_VARIANT_RESULTS" if variants else "THROUGHPUT_RESULTS", recorded)
    monkeypatch.setattr(table, "train_row", lambda *_: pytest.fail("trained for a summary"))
    assert table.main(["--throughput-summary", *(["--variants"] if variants else [])]) == 0
    assert "per round: 0.990" in capsys.readouterr().out


@pytest.mark.slow  # Trains a tiny model and loads it in a fresh Python.
def test_a_model_trained_with_every_recipe_option_loads_in_a_fresh_process(tmp_path, tiny_data, tiny_spec, tiny_config):
    # The saved network carries its schedule and loss; a fresh process (the app after a restart) must rebuild them.
    import subprocess
    import sys
    from pathlib import Path

    from fmnist_core.store.cache import ModelCache
    from fmnist_core.training.pipeline import train_and_cache

    config = tiny_config.replace(
        augment=True,
        shift_pixels=1,
        erase_probability=0.3,
        schedule="linear",
        warmup_fraction=0.2,
        label_smoothing=0.1,
        ema_momentum=0.9,
        adam_beta_2=0.99,
    )
    entry = train_and_cache(tiny_spec, config, cache=ModelCache(tmp_path), data=tiny_data).entry
    script = (
        "import sys; from fmnist_core.store.cache import ModelCache; "
        "model = ModelCache(sys.argv[1]).load_model(sys.argv[2]); print(model.count_params())"
    )
    root = Path(__file__).resolve().parent.parent
    finished = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), entry.entry_id], cwd=root, capture_output=True, text=True
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert int(finished.stdout.split()[-1]) > 0


def test_benchmark_results_files_round_trip_rows_and_make_their_folder(tmp_path):
    # One reader and one writer serve every benchmark that keeps JSON lines (recipe_table, recipe_search,
    # allocator_speed, precision_speed): rows come back in the order measured, the folder is made on the first
    # row, a file not written yet reads as no rows and blank lines are passed over.
    from devtools.results_lines import append_row, read_rows

    results = tmp_path / "not" / "yet" / "there.jsonl"
    assert read_rows(results) == []
    append_row(results, {"model": "model1", "accuracy": 0.9381})
    with results.open("a") as handle:
        handle.write("\n")
    append_row(results, {"model": "model3", "seeds": [42, 43]})

    assert read_rows(results) == [{"model": "model1", "accuracy": 0.9381}, {"model": "model3", "seeds": [42, 43]}]
    assert results.read_text().count("\n") == 3


@pytest.mark.slow  # Starts the CLI in a process of its own.
def test_a_benchmark_training_run_that_fails_stops_the_benchmark_with_the_command_and_its_message(tmp_path):
    from devtools.cli_training import train_through_cli

    with pytest.raises(SystemExit) as stopped:
        train_through_cli(["--model", "model9"], tmp_path / "cache")
    message = str(stopped.value)
    assert "-m fmnist_core train --model model9 --json failed (2)" in message
    assert "model9" in message.split("failed (2):", 1)[1]  # The CLI's own explanation follows the command.
    assert (tmp_path / "cache" / "no-shipped-models").is_dir()  # The shipped models were kept out of the run.
