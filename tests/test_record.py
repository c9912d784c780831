"""The model record: JSON round trip, the old meta.json layout, and a clear error naming the field for bad content."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from pathlib import Path

import pytest

from fmnist_core.config import RECIPE_VERSION, TrainConfig
from fmnist_core.errors import CacheError, RecordError
from fmnist_core.store.record import RECORD_FORMAT, ModelRecord
from tests.records import make_record

OLD_LAYOUT = Path(__file__).parent / "fixtures" / "meta-format-1.json"


def stamped(record: ModelRecord) -> ModelRecord:
    """The record as the cache saves it (with its entry id and model checksum)."""
    return dataclasses.replace(record, entry_id="model1-0123456789ab", model_sha256="a" * 64)


def valid_values() -> dict:
    return json.loads(json.dumps(stamped(make_record()).to_dict()))


def test_a_record_survives_json_unchanged():
    record = stamped(make_record(single_view_accuracy=0.91))
    values = json.loads(json.dumps(record.to_dict()))
    assert values["format"] == RECORD_FORMAT and values["recipe_version"] == RECIPE_VERSION
    assert ModelRecord.from_dict(values) == record
    assert record.test_accuracy == record.evaluation.test_accuracy and record.epochs_run == 3


def test_the_old_layout_reads_through_its_reader():
    """meta.json as the app wrote it before the typed record (format 1), kept as it was written."""
    values = json.loads(OLD_LAYOUT.read_text(encoding="utf-8"))
    assert values["format"] == 1 and "recipe_version" not in values
    record = ModelRecord.from_dict(values)
    assert record.format == RECORD_FORMAT and record.recipe_version == 1
    assert record.entry_id == values["entry_id"] and record.model_sha256 == values["model_sha256"]
    assert record.evaluation.test_accuracy == values["evaluation"]["test_accuracy"]
    assert [row.name for row in record.evaluation.per_class] == [
        row["name"] for row in values["evaluation"]["per_class"]
    ]
    assert record.history["loss"] == tuple(values["history"]["loss"])
    # Settings added since (recipe 2) read as their defaults, which is how those runs trained.
    assert record.config == TrainConfig(**values["config"]) and record.spec.to_dict() == values["spec"]
    # Written again, it is the current layout, and reads back the same.
    assert ModelRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    # Entries saved before mirror averaging (architecture 3) have no single-view score: they answered from one view.
    older = {key: value for key, value in values.items() if key != "single_view_accuracy"}
    assert ModelRecord.from_dict(older).single_view_accuracy is None


def test_the_command_that_trained_a_model_is_kept_and_older_records_have_none():
    command = "python -m fmnist_core train --model model1 --preset full"
    record = stamped(dataclasses.replace(make_record(), command=command))
    assert ModelRecord.from_dict(json.loads(json.dumps(record.to_dict()))).command == command
    written_before = {key: value for key, value in valid_values().items() if key != "command"}
    assert ModelRecord.from_dict(written_before).command is None


def test_the_visitor_who_asked_is_kept_and_records_without_one_have_none():
    visitor = "0123456789abcdef0123456789abcdef"
    record = stamped(dataclasses.replace(make_record(), owner=visitor))
    values = json.loads(json.dumps(record.to_dict()))
    assert values["owner"] == visitor
    assert ModelRecord.from_dict(values) == record and ModelRecord.from_dict(values).owner == visitor
    # Written before the training queue (and by the CLI, and shipped): no owner.
    written_before = {key: value for key, value in valid_values().items() if key != "owner"}
    assert ModelRecord.from_dict(written_before).owner is None
    assert ModelRecord.from_dict(json.loads(OLD_LAYOUT.read_text(encoding="utf-8"))).owner is None


def edited(change) -> dict:
    values = valid_values()
    change(values)
    return values


# Each case: an edit of a valid meta.json, and the field the error must name. The first five are issue 19's.
BAD_EDITS = {
    "evaluation null": (lambda v: v.update(evaluation=None), "`evaluation` should be an object, but it is null"),
    "history null": (lambda v: v.update(history=None), "`history` should be an object, but it is null"),
    "accuracy as text": (
        lambda v: v["evaluation"].update(test_accuracy="0.9"),
        "`evaluation.test_accuracy` should be a finite number from 0 to 1, but it is text ('0.9')",
    ),
    "created as a number": (lambda v: v.update(created=5), "`created` should be a date and time"),
    "zero epochs": (lambda v: v["config"].update(epochs=0), "`config` is not valid: Invalid training settings: epochs"),
    "accuracy NaN": (lambda v: v["evaluation"].update(test_accuracy=math.nan), "should be a finite number"),
    "accuracy above 1": (lambda v: v["evaluation"].update(test_accuracy=1.5), "`evaluation.test_accuracy`"),
    "missing field": (lambda v: v.pop("train_images"), "`train_images` is missing"),
    "negative count": (lambda v: v.update(train_images=-5), "`train_images` should be a whole number ≥ 1"),
    "count as true": (lambda v: v.update(parameters=True), "`parameters` should be a whole number"),
    "newer format": (lambda v: v.update(format=RECORD_FORMAT + 1), "written by a newer version of this app"),
    "no format": (lambda v: v.pop("format"), "`format` is missing"),
    "checksum not hex": (lambda v: v.update(model_sha256="xyz"), "`model_sha256` should be 64 hexadecimal digits"),
    "entry id a path": (lambda v: v.update(entry_id="../../etc"), "`entry_id` should be a cache entry id"),
    "best epoch after the last": (
        lambda v: v.update(best_epoch=9),
        "`best_epoch` should be a whole number from 1 to 3",
    ),
    "curves of different lengths": (lambda v: v["history"]["accuracy"].pop(), "`history.accuracy` has 2 value(s)"),
    "empty curves": (lambda v: v["history"].update(loss=[]), "`history.loss` should hold at least 1 item(s)"),
    "confusion matrix row short": (
        lambda v: v["evaluation"]["confusion_matrix"][3].pop(),
        "`evaluation.confusion_matrix[3]` should be a list of 10 counts",
    ),
    "negative count in the matrix": (
        lambda v: v["evaluation"]["confusion_matrix"][0].__setitem__(0, -1),
        "`evaluation.confusion_matrix[0][0]` should be a whole number ≥ 0",
    ),
    "per-class row odd": (lambda v: v["evaluation"]["per_class"].__setitem__(2, "x"), "`evaluation.per_class[2]`"),
    "mistake key odd": (
        lambda v: v["evaluation"]["mistakes"].update({"6;0": []}),
        "`evaluation.mistakes.6;0` is not a pair of class numbers",
    ),
    "unknown evaluation shape": (
        lambda v: v.update(evaluation={"unknown_field": 1}),
        "`evaluation.confusion_matrix` is missing",
    ),
    "speed settings without device": (
        lambda v: v["speed_settings"].pop("device"),
        "`speed_settings.device` is missing",
    ),
    "spec name odd": (lambda v: v["spec"].update(name="Model One"), "`spec.name` should be a model name"),
    "single view as text": (lambda v: v.update(single_view_accuracy="high"), "`single_view_accuracy` should be"),
    "command as a list": (lambda v: v.update(command=["python"]), "`command` should be text"),
    "owner not a visitor id": (lambda v: v.update(owner="../teacher"), "`owner` should be a visitor id"),
    "not an object": (lambda v: v.clear() or v.update(format=[1]), "`format` should be a whole number"),
}


@pytest.mark.parametrize("case", BAD_EDITS, ids=list(BAD_EDITS))
def test_bad_content_raises_a_record_error_naming_the_field(case):
    change, words = BAD_EDITS[case]
    with pytest.raises(RecordError) as caught:
        ModelRecord.from_dict(edited(change))
    assert words in str(caught.value)
    # A project error (exit code 4, a cache problem) that is also a ValueError.
    assert isinstance(caught.value, CacheError) and isinstance(caught.value, ValueError)


@pytest.mark.parametrize("content", [None, [], "meta", 3])
def test_content_that_is_not_an_object_is_a_record_error(content):
    with pytest.raises(RecordError, match="`meta.json` should be an object"):
        ModelRecord.from_dict(content)


def test_a_diverged_run_may_record_non_finite_losses():
    values = valid_values()
    values["history"]["loss"] = [1.2, math.nan, math.inf]
    values["evaluation"]["test_loss"] = math.nan
    record = ModelRecord.from_dict(json.loads(json.dumps(values)))
    assert math.isnan(record.history["loss"][1]) and math.isnan(record.evaluation.test_loss)


def test_fields_a_newer_version_adds_are_ignored_and_missing_settings_take_their_defaults():
    values = valid_values()
    values["a_field_from_the_future"] = {"anything": 1}
    values["evaluation"]["another_one"] = 2
    values["config"]["future_setting"] = "on"
    del values["config"]["jit_compile"]  # A setting older entries did not have reads as its default.
    record = ModelRecord.from_dict(values)
    assert record == ModelRecord.from_dict(valid_values())


def test_the_record_does_not_change_the_values_it_reads():
    values = valid_values()
    before = copy.deepcopy(values)
    ModelRecord.from_dict(values)
    assert values == before
