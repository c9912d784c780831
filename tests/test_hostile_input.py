"""Hostile input (issue 19), the fast cases: seeds out of range, a race file with NaN, learning rates shown as set,
model lists, file names shown inside Markdown, and the `train` command `evaluate` suggests.

The same cases through the real CLI, with exit codes and no tracebacks, are in tests/test_cli_contract.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

import pytest

from fmnist_app.common import plain_text
from fmnist_core.cli.arguments import model_names
from fmnist_core.cli.train_command import add_config_arguments, command_line, config_from_arguments
from fmnist_core.config import SEED_MAX, TrainConfig
from fmnist_core.display import LEARNING_RATE_FORMAT, format_learning_rate, format_size
from fmnist_core.errors import ConfigError
from fmnist_core.race.file import RaceFileError, parse_race, race_json
from fmnist_core.race.lane import Workload
from tests.race_support import make_result

PROJECT_ROOT = Path(__file__).resolve().parent.parent
OUT_OF_RANGE_SEEDS = [-1, SEED_MAX + 1, 2**64, True, 1.5, "42"]


@pytest.mark.parametrize("seed", OUT_OF_RANGE_SEEDS)
def test_a_seed_out_of_range_is_refused_where_the_settings_are_built(seed):
    for build in (lambda: TrainConfig(seed=seed), lambda: Workload(seed=seed)):
        with pytest.raises(ConfigError, match="seed must be a whole number from 0 to 4,294,967,295") as raised:
            build()
        assert raised.value.exit_code == 2


def test_the_ends_of_the_seed_range_are_accepted():
    for seed in (0, SEED_MAX):
        assert TrainConfig(seed=seed).seed == seed and Workload(seed=seed).seed == seed


def test_the_largest_seed_really_trains(tiny_data, tiny_spec, tiny_config):
    """The range is what NumPy, Keras and tf.data accept: a run at its top end trains (with augmentation too)."""
    from fmnist_core.training.loop import train

    result = train(tiny_spec, tiny_config.replace(epochs=1, seed=SEED_MAX, augment=True), data=tiny_data)
    assert all(math.isfinite(value) for value in result.history["loss"])


def with_field(values: dict, path: tuple, value) -> dict:
    target = values
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return values


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_race_file_with_nan_or_infinity_says_it_must_be_finite(value):
    values = with_field(json.loads(race_json(make_result())), ("lanes", 0, "repeats", 0, "train_seconds"), value)
    with pytest.raises(RaceFileError) as raised:
        parse_race(json.dumps(values), "race.json")
    message = str(raised.value)
    assert message == f"`lanes[0].repeats[0].train_seconds` should be a finite number, but it is the number {value}."
    assert "it is a number" not in message


@pytest.mark.parametrize(
    ("rate", "shown"), [(1e-5, "1e-05"), (2e-3, "0.002"), (0.0005, "0.0005"), (3e-4, "0.0003"), (1.0, "1")]
)
def test_learning_rates_read_as_set(rate, shown):
    assert format_learning_rate(rate) == shown
    assert float(shown) == rate


def test_the_train_page_field_shows_a_small_learning_rate_as_set(cache_dir):
    from streamlit.testing.v1 import AppTest

    page = AppTest.from_file(str(PROJECT_ROOT / "pages" / "train.py"), default_timeout=120).run()
    page.radio[1].set_value("custom").run()
    field = next(element for element in page.number_input if element.label == "Learning rate")
    field.set_value(1e-5).run()
    assert not page.exception and not page.error, [error.value for error in page.error]
    field = next(element for element in page.number_input if element.label == "Learning rate")
    assert field.value == 1e-5
    # The browser draws the field with this printf format (sprintf.js): '%g' shows 0.00001, '%.4f' showed 0.0000.
    assert field.proto.format == LEARNING_RATE_FORMAT == "%g"


def test_the_report_states_a_small_learning_rate_as_set(trained_cache):
    from fmnist_core.report import comparison as report
    from fmnist_core.store.cache import ModelCache

    [entry] = ModelCache(trained_cache).list()
    small = dataclasses.replace(
        entry, record=dataclasses.replace(entry.record, config=entry.record.config.replace(learning_rate=1e-5))
    )
    markdown = report.build_report(report.chosen_entries([small]), command_line).markdown
    assert "learning rate 1e-05" in markdown and "0.0000" not in markdown


@pytest.mark.parametrize("text", [",", "", " , ,", "model1,,model1", "model1,model9"])
def test_an_empty_repeated_or_unknown_model_list_is_refused(text):
    with pytest.raises(ConfigError) as raised:
        model_names(text)
    assert raised.value.exit_code == 2


def test_a_model_list_keeps_its_order():
    assert model_names(" model3, model1 ") == ["model3", "model1"]


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("trousers.png", r"trousers\.png"),
        ("[click](javascript:alert(1)).png", r"\[click\]\(javascript\:alert\(1\)\)\.png"),
        ("**bold** $x^2$ :red[hi].png", r"\*\*bold\*\* \$x\^2\$ \:red\[hi\]\.png"),
        ("two\nlines\r\t.png", r"two lines  \.png"),
        ("../../etc/passwd", r"\.\.\/\.\.\/etc\/passwd"),
    ],
)
def test_a_file_name_is_shown_as_typed_inside_markdown(name, shown):
    assert plain_text(name) == shown


@pytest.mark.parametrize(("size", "shown"), [(1, "1 byte"), (22, "22 bytes"), (12_345, "12 KB"), (3_565_158, "3.4 MB")])
def test_sizes_read_in_the_unit_that_fits(size, shown):
    assert format_size(size) == shown


def test_a_long_file_name_is_cut():
    assert plain_text("a" * 200) == "a" * 79 + "…"


def parse_train_command(command: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    add_config_arguments(parser)
    return parser.parse_args(command.removeprefix("python -m fmnist_core train").split())


@pytest.mark.parametrize(
    "overrides",
    [
        ["--epochs", "5", "--learning-rate", "1e-5", "--seed", "7"],
        ["--preset", "full", "--no-augment", "--train-limit", "512"],
        ["--batch-size", "64", "--schedule", "cosine", "--precision", "float32", "--validation-split", "0.2"],
    ],
)
def test_evaluate_suggests_a_train_command_that_keeps_the_overrides(overrides, cache_dir, capsys):
    from fmnist_core.cli import main

    assert main(["evaluate", "--model", "model2", *overrides]) == 4
    message = capsys.readouterr().err
    suggested = message[message.index("python -m fmnist_core train") :].strip()
    wanted = config_from_arguments(parse_train_command(" ".join(["--model", "model2", *overrides])))
    arguments = parse_train_command(suggested)
    assert arguments.model == "model2"
    assert config_from_arguments(arguments) == wanted
