"""Damaged cache entries (issue 19): a hand-edited or half-restored meta.json, flipped or missing bytes in either file.

Whatever the damage, the entry is either valid or listed as damaged with the reason; `cache list`, `cache delete
--damaged`, the report and the Compare page never crash on it; it stays deletable; nothing else in the cache is lost.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from fmnist_core.cli import main
from fmnist_core.cli.train_command import command_line
from fmnist_core.report import comparison as report
from fmnist_core.store.cache import ModelCache
from fmnist_core.store.record import ModelRecord
from tests.records import StandInModel, make_record

PAGES = Path(__file__).resolve().parent.parent / "pages"


def stand_in_cache(folder: Path) -> tuple[str, str]:
    """A cache with a Model 1 entry (the one the tests damage) and a Model 2 bystander; returns their ids."""
    cache = ModelCache(folder)
    damaged = cache.save(StandInModel(), make_record("model1", accuracy_seed=1))
    bystander = cache.save(StandInModel(), make_record("model2", accuracy_seed=2))
    return damaged.entry_id, bystander.entry_id


def edit_meta(folder: Path, entry_id: str, change) -> None:
    meta = folder / entry_id / "meta.json"
    values = json.loads(meta.read_text(encoding="utf-8"))
    change(values)
    meta.write_text(json.dumps(values), encoding="utf-8")


# The hand edits issue 19 found breaking `cache list`, `cache delete --damaged`, the report and the Compare page.
ISSUE_EDITS = {
    "evaluation null": (lambda values: values.update(evaluation=None), "evaluation"),
    "history null": (lambda values: values.update(history=None), "history"),
    "accuracy as text": (lambda values: values["evaluation"].update(test_accuracy="0.9"), "evaluation.test_accuracy"),
    "created as a number": (lambda values: values.update(created=5), "created"),
    "zero epochs": (lambda values: values["config"].update(epochs=0), "config"),
}


@pytest.mark.parametrize("case", ISSUE_EDITS)
def test_a_hand_edited_record_is_listed_damaged_reported_and_deletable(case, cache_dir, capsys):
    change, field = ISSUE_EDITS[case]
    damaged, bystander = stand_in_cache(cache_dir)
    edit_meta(cache_dir, damaged, change)

    entry = ModelCache().inspect(damaged)
    assert not entry.ok and entry.record is None
    assert entry.problem.startswith("meta.json is not valid:") and f"`{field}" in entry.problem

    assert main(["cache", "list"]) == 0
    listing = capsys.readouterr().out
    assert f"DAMAGED {damaged}  meta.json is not valid: `{field}" in listing and f"ok      {bystander}" in listing

    assert main(["report", "--no-latency"]) == 0
    markdown = capsys.readouterr().out
    assert (
        f"Damaged: cache entry `{damaged}`" in markdown and "python -m fmnist_core cache delete --damaged" in markdown
    )

    assert main(["cache", "delete", "--damaged"]) == 0
    assert capsys.readouterr().out == f"deleted {damaged}\n"
    assert [(entry.entry_id, entry.ok) for entry in ModelCache().list()] == [(bystander, True)]


def test_the_compare_page_shows_a_damaged_model_as_damaged(cache_dir):
    damaged, bystander = stand_in_cache(cache_dir)
    edit_meta(cache_dir, damaged, ISSUE_EDITS["evaluation null"][0])
    app = AppTest.from_file(str(PAGES / "compare.py"), default_timeout=60)
    app.session_state["compare_latency"] = False  # Timing would load the (stand-in) models.
    app.run()
    assert not app.exception, [error.value for error in app.exception]
    assert any(damaged in warning.value and "`evaluation`" in warning.value for warning in app.warning)
    table = app.dataframe[0].value
    assert list(table["status"]) == [report.DAMAGED, report.TRAINED, report.NOT_TRAINED]
    app.button(key=f"delete-{damaged}").click().run()
    assert not app.exception
    assert [entry.entry_id for entry in ModelCache().list()] == [bystander]


def test_a_damaged_model_is_not_reported_as_not_cached_by_evaluate(cache_dir, capsys):
    from fmnist_core.config import PRESETS
    from fmnist_core.models.registry import get_spec

    cache = ModelCache()
    entry = cache.save(StandInModel(), make_record(get_spec("model1"), PRESETS["quick"]))
    (entry.path / "model.keras").write_bytes(b"changed")
    assert main(["evaluate", "--model", "model1"]) == 4
    error = capsys.readouterr().err
    assert "is damaged (model.keras does not match its checksum" in error and "not cached" not in error
    assert "python -m fmnist_core cache delete --damaged" in error


# Random damage, on a real tiny trained entry --------------------------------------------------------------------


def json_paths(value, prefix=()) -> list[tuple]:
    """Every place in a JSON document: object keys and list positions, containers included."""
    paths = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            paths += json_paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            paths += json_paths(child, (*prefix, index))
    return paths


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)


@st.composite
def json_edits(draw, document: dict):
    """(path, action, value): replace or delete the value at a path, or add a key to an object there."""
    paths = json_paths(document)
    # Half the time near the top, where the structure is; otherwise anywhere (most paths are in the evaluation).
    shallow = [path for path in paths if len(path) <= 2]
    path = draw(st.sampled_from(shallow) | st.sampled_from(paths))
    return path, draw(st.sampled_from(["replace", "delete", "add"])), draw(JSON_VALUES)


def apply_edit(document, path: tuple, action: str, value):
    if not path:
        return value if action == "replace" else document
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if action == "replace":
        parent[key] = value
    elif action == "delete":
        del parent[key]
    elif isinstance(parent[key], dict):
        parent[key]["added"] = value
    return document


def check_the_cache_holds_up(cache_folder: Path, entry_id: str, bystander: str, capsys) -> None:
    """No traceback anywhere; the entry is valid or damaged with a reason; the bystander is never touched."""
    cache = ModelCache(cache_folder)
    entry = cache.inspect(entry_id)
    if entry.ok:
        # A harmless edit: the record must still read back as what it says.
        again = ModelRecord.from_dict(json.loads(json.dumps(entry.record.to_dict())))
        assert json.dumps(again.to_dict()) == json.dumps(entry.record.to_dict())
        assert entry.label
    else:
        assert entry.record is None and isinstance(entry.problem, str) and entry.problem.strip()
    entries = cache.list()
    assert sorted(entry.entry_id for entry in entries) == sorted([entry_id, bystander])
    report.build_report(report.chosen_entries(entries), command_line)
    for command in (["cache", "list"], ["cache", "list", "--json"], ["cache", "delete", "--damaged"]):
        assert main(command) == 0, capsys.readouterr().err
    capsys.readouterr()
    left = {entry.entry_id: entry.ok for entry in cache.list()}
    assert left == ({entry_id: True, bystander: True} if entry.ok else {bystander: True})


@pytest.fixture
def template(trained_cache_dir, tmp_path) -> tuple[Path, str, str]:
    """A copy of the tiny trained cache plus a stand-in bystander entry; the examples copy it again."""
    folder = tmp_path / "template"
    shutil.copytree(trained_cache_dir, folder)
    (entry_id,) = [path.name for path in folder.iterdir() if path.name.startswith("model1-")]
    bystander = ModelCache(folder).save(StandInModel(), make_record("model2", accuracy_seed=2)).entry_id
    return folder, entry_id, bystander


def fresh_copy(template_folder: Path, parent: Path, monkeypatch) -> Path:
    folder = Path(tempfile.mkdtemp(dir=parent)) / "cache"
    shutil.copytree(template_folder, folder)
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(folder))
    return folder


EXAMPLES = settings(
    max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@EXAMPLES
@given(data=st.data())
def test_random_json_edits_never_crash_and_lose_nothing_else(data, template, tmp_path, monkeypatch, capsys):
    template_folder, entry_id, bystander = template
    folder = fresh_copy(template_folder, tmp_path, monkeypatch)
    meta = folder / entry_id / "meta.json"
    document = json.loads(meta.read_text(encoding="utf-8"))
    path, action, value = data.draw(json_edits(document))
    meta.write_text(json.dumps(apply_edit(document, path, action, value)), encoding="utf-8")
    check_the_cache_holds_up(folder, entry_id, bystander, capsys)


@EXAMPLES
@given(
    target=st.sampled_from(["meta.json", "model.keras"]),
    cut=st.booleans(),
    position=st.floats(min_value=0, max_value=1, exclude_max=True),
    mask=st.integers(min_value=1, max_value=255),
)
def test_random_byte_flips_and_truncations_never_crash_and_lose_nothing_else(
    target, cut, position, mask, template, tmp_path, monkeypatch, capsys
):
    template_folder, entry_id, bystander = template
    folder = fresh_copy(template_folder, tmp_path, monkeypatch)
    damaged = folder / entry_id / target
    payload = bytearray(damaged.read_bytes())
    index = math.floor(position * len(payload))
    if cut:
        del payload[index:]
    else:
        payload[index] ^= mask
    damaged.write_bytes(bytes(payload))
    if target == "model.keras":
        assert not ModelCache(folder).inspect(entry_id).ok, "a changed model file is never trusted"
    check_the_cache_holds_up(folder, entry_id, bystander, capsys)
