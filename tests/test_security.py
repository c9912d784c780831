"""Security: only model files the cache wrote are loaded, and never with code in them; no raw HTML; uploads are
pictures or race files whose names are never paths; unusable environment variables give messages, not tracebacks.

Covered elsewhere, so not repeated here: XSRF protection and the upload limit in .streamlit/config.toml
(test_predict.py), a hostile upload name such as ../../etc/passwd.png (test_predict.py), decompression
bombs and 30-odd other bad uploads (test_sketch.py with devtools/bad_inputs.py), malformed race files
(test_race.py), and bad CLI arguments and `cache list` on a file (test_cli.py, test_race.py).
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from devtools.bad_inputs import BUILDERS
from fmnist_core.cli import main
from fmnist_core.errors import CacheError
from fmnist_core.evaluate.sketch import MAX_PIXELS, SketchError, prepare_image
from fmnist_core.race.file import RaceFileError, parse_race
from fmnist_core.store.cache import ModelCache
from tests.app_tabs import PREDICT_TABS, open_tab
from tests.records import make_record
from tests.test_race import make_result

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT / "pages"
APP_FILES = [ROOT / "streamlit_app.py", *sorted(PAGES.glob("*.py")), *sorted((ROOT / "fmnist_app").glob("*.py"))]
CODE_FILES = [
    *APP_FILES,
    *sorted((ROOT / "fmnist_core").rglob("*.py")),
    *sorted((ROOT / "benchmarks").glob("*.py")),
    *sorted((ROOT / "scripts").glob("*.py")),
]
# The pages the router runs (pages/ also holds modules the pages share).
PAGE_FILES = sorted(re.findall(r'page\("pages/(\w+\.py)"', (ROOT / "streamlit_app.py").read_text(encoding="utf-8")))
PICTURE_TYPES = {"png", "jpg", "jpeg", "webp", "bmp", "gif"}
PLANTED_ENTRY = "model1-0123456789ab"
PAGE_TIMEOUT = 60


def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def calls(tree: ast.AST, name: str) -> list[ast.Call]:
    """Calls of a function or method called `name` (st.file_uploader and file_uploader alike)."""
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and name in (getattr(node.func, "attr", None), getattr(node.func, "id", None))
    ]


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((item.value for item in call.keywords if item.arg == name), None)


def where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{node.lineno}"


# Model files -----------------------------------------------------------------------------------------------


def plant_entry(cache: Path, model_file: Path, meta: dict | None) -> Path:
    """A cache folder made by hand: a model file and, optionally, a meta.json written by someone else."""
    folder = cache / PLANTED_ENTRY
    folder.mkdir(parents=True)
    shutil.copy(model_file, folder / "model.keras")
    if meta is not None:
        (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return folder


@pytest.mark.parametrize("meta", ["none", "copied from another entry", "wrong checksum"])
def test_a_model_file_placed_by_hand_is_listed_damaged_and_never_loaded(trained_cache, meta):
    cache = ModelCache()
    [trained] = cache.list()
    planted_meta = {
        "none": None,
        "copied from another entry": trained.record.to_dict(),
        "wrong checksum": dict(trained.record.to_dict(), entry_id=PLANTED_ENTRY, model_sha256="0" * 64),
    }[meta]
    # A perfectly loadable Keras file: only the missing or foreign bookkeeping gives it away.
    plant_entry(trained_cache, trained.path / "model.keras", planted_meta)
    planted = next(entry for entry in cache.list() if entry.entry_id == PLANTED_ENTRY)
    assert not planted.ok and "damaged" in planted.label
    with pytest.raises(CacheError, match="is damaged"):
        cache.load_model(PLANTED_ENTRY)


@pytest.fixture
def lambda_model_file(tmp_path) -> tuple[Path, Path]:
    """A .keras file whose Lambda layer writes a file when the model runs; returns (model file, that file)."""
    import keras

    witness = tmp_path / "code-ran.txt"
    # eval makes the path a constant inside the lambda's own code, so it survives Keras' serialisation.
    payload = eval(f"lambda images: (open({str(witness)!r}, 'w').write('ran'), images)[1]")
    inputs = keras.Input((28, 28, 1))
    hidden = keras.layers.Lambda(payload, output_shape=(28, 28, 1))(inputs)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(hidden))
    model_file = tmp_path / "model.keras"
    keras.Model(inputs, outputs).save(model_file)
    return model_file, witness


def test_the_lambda_payload_really_runs_code_when_safe_mode_is_off(lambda_model_file):
    """The control for the test below: the crafted file is hostile, so refusing it matters."""
    import keras

    model_file, witness = lambda_model_file
    model = keras.saving.load_model(model_file, compile=False, safe_mode=False)
    model(np.zeros((1, 28, 28, 1), np.float32))
    assert witness.read_text() == "ran"


def test_a_lambda_model_with_a_valid_checksum_is_refused_by_safe_mode(
    cache_dir, lambda_model_file, tiny_data, monkeypatch
):
    model_file, witness = lambda_model_file
    digest = hashlib.sha256(model_file.read_bytes()).hexdigest()
    # A complete, valid record, as someone who knows the format would forge it.
    forged = dataclasses.replace(make_record(), entry_id=PLANTED_ENTRY, model_sha256=digest)
    plant_entry(cache_dir, model_file, forged.to_dict())
    cache = ModelCache()
    assert cache.inspect(PLANTED_ENTRY).ok, "the record and the checksum pass, so only safe mode stands in the way"
    with pytest.raises(CacheError, match=r"could not be loaded \(.*Lambda"):
        cache.load_model(PLANTED_ENTRY)

    import fmnist_app.common

    monkeypatch.setattr(fmnist_app.common, "dataset_or_stop", lambda: tiny_data)
    app = AppTest.from_file(str(PAGES / "predict.py"), default_timeout=PAGE_TIMEOUT).run()
    assert not app.exception, [error.value for error in app.exception]
    assert any(PLANTED_ENTRY in error.value and "could not be loaded" in error.value for error in app.error)
    assert not witness.exists(), "no code from the model file ran"


def test_only_the_cache_loads_models_and_always_in_safe_mode():
    loaders = []
    for path in CODE_FILES:
        tree = parsed(path)
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg in ("safe_mode", "allow_pickle"):
                assert isinstance(node.value, ast.Constant), f"{node.arg} must be a literal ({path.name})"
                assert node.value.value is (node.arg == "safe_mode"), f"{node.arg}={node.value.value} in {path.name}"
        loaders += [
            (path, call)
            for call in calls(tree, "load_model")
            if isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Attribute)
        ]
    # keras.saving.load_model / keras.models.load_model: the only call is the cache's, after the checksum.
    assert [(path.relative_to(ROOT).as_posix(), ast.unparse(call.func)) for path, call in loaders] == [
        ("fmnist_core/store/cache.py", "keras.saving.load_model")
    ]
    assert keyword(loaders[0][1], "safe_mode") is not None, "safe mode is asked for, not left to a default"


# Pages: uploads and HTML -----------------------------------------------------------------------------------


def accepted_types(path: Path, tree: ast.Module, call: ast.Call) -> set[str]:
    """The `type=` of a file_uploader call, following a module-level constant such as UPLOAD_TYPES."""
    value = keyword(call, "type") or (call.args[1] if len(call.args) > 1 else None)
    assert value is not None, f"{where(path, call)}: a file_uploader without type= accepts any file"
    if isinstance(value, ast.Name):
        value = next(
            node.value
            for node in tree.body
            if isinstance(node, ast.Assign) and any(getattr(target, "id", None) == value.id for target in node.targets)
        )
    accepted = ast.literal_eval(value)
    return {accepted} if isinstance(accepted, str) else set(accepted)


def test_uploads_are_pictures_or_race_files_never_models():
    accepted = {}
    for path in APP_FILES:
        tree = parsed(path)
        for call in calls(tree, "file_uploader"):
            accepted[where(path, call)] = accepted_types(path, tree, call)
    assert len(accepted) == 3, accepted  # Pictures on Predict and Inside the model, the race page's recorded race.
    for place, types in accepted.items():
        assert types <= PICTURE_TYPES or types == {"json"}, (place, types)


def is_the_visitor_cookie(path: Path, call: ast.Call) -> bool:
    """The one raw HTML the app sends: fmnist_app/visitor.py's script that keeps the visitor id in a cookie, whose
    only variable part is an id checked by `cookie_script` (test_the_cookie_script_carries_only_a_visitor_id)."""
    [body] = call.args
    return (
        path == ROOT / "fmnist_app" / "visitor.py"
        and isinstance(body, ast.Call)
        and ast.unparse(body.func) == "cookie_script"
    )


def test_no_page_renders_raw_html():
    for path in APP_FILES:
        for node in ast.walk(parsed(path)):
            if isinstance(node, ast.keyword) and node.arg == "unsafe_allow_html":
                assert isinstance(node.value, ast.Constant) and node.value.value is False, (
                    f"{where(path, node.value)}: unsafe_allow_html lets text (possibly a user's) become HTML"
                )
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", None) == "html"
                and not is_the_visitor_cookie(path, node)
            ):
                pytest.fail(f"{where(path, node)}: {ast.unparse(node.func)} renders raw HTML")


def test_uploaded_file_names_are_never_used_as_paths():
    """An upload's .name may only label messages (parse_race's `source`, the Predict page's `plain_text` label), never
    reach open, Path or the like."""
    users = set()
    for path in APP_FILES:
        tree = parsed(path)
        uploads = {
            target.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and calls(node.value, "file_uploader")
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "name"
                and isinstance(node.value, ast.Name)
                and node.value.id in uploads
            ):
                call = parents[node]
                assert isinstance(call, ast.Call) and node in call.args, (
                    f"{where(path, node)}: an upload's name is used outside a plain function argument"
                )
                users.add(ast.unparse(call.func))
    assert users <= {"parse_race", "plain_text"}, users


def test_a_race_file_name_only_labels_messages():
    payload = json.dumps(make_result().to_dict()).encode()
    assert parse_race(payload, "../../../etc/passwd").to_dict() == parse_race(payload, "race.json").to_dict()
    with pytest.raises(RaceFileError, match=r"^/etc/shadow is not valid JSON"):
        parse_race(b"{", "/etc/shadow")


def test_decompression_bombs_are_refused_from_their_header_in_well_under_a_second():
    # Stricter than Pillow's own limit on purpose: 40 million pixels is already 160 MB as RGBA.
    assert MAX_PIXELS < Image.MAX_IMAGE_PIXELS
    bombs = [(case, build()) for case, build in BUILDERS if case.filename.startswith("bomb")]
    assert len(bombs) == 2
    for case, data in bombs:
        started = time.perf_counter()
        with pytest.raises(SketchError, match="too large"):
            prepare_image(data)
        assert time.perf_counter() - started < 0.5, case.name


# Environment variables pointing nowhere --------------------------------------------------------------------


def run_page(name: str) -> AppTest:
    app = AppTest.from_file(str(PAGES / name), default_timeout=PAGE_TIMEOUT).run()
    assert not app.exception, [error.value for error in app.exception]
    return app


@pytest.mark.parametrize("name", PAGE_FILES)
def test_a_cache_path_that_is_a_file_gives_every_page_a_clear_message(name, tmp_path, monkeypatch):
    target = tmp_path / "not-a-folder"
    target.write_text("")
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(target))
    app = run_page(name)
    assert [f"{target} is a file, not a folder" in error.value for error in app.error].count(True) == 1, (
        "said once, clearly, not repeated by every part of the page"
    )


@pytest.mark.parametrize("name", PAGE_FILES)
def test_a_data_dir_pointing_nowhere_gives_every_page_a_clear_message(name, trained_cache, tmp_path, monkeypatch):
    nowhere = tmp_path / "nowhere"
    monkeypatch.setenv("FMNIST_DATA_DIR", str(nowhere))
    app = run_page(name)
    # The pages that show real images (Predict in its test-image tab: uploads and drawings need no dataset).
    if name == "predict.py":
        assert not app.code, "the closed test-image tab does not load the dataset"
        open_tab(app, PREDICT_TABS, "test image")
    if name in ("dataset.py", "evaluate.py", "compare.py", "predict.py", "inside.py"):
        assert any(f"FMNIST_DATA_DIR={nowhere} is not a folder" in code.value for code in app.code)


@pytest.mark.parametrize("arguments", [["train", "--model", "model1"], ["race"], ["report"], ["data", "--check"]])
def test_every_command_refuses_a_cache_path_that_is_a_file_before_working(arguments, tmp_path, monkeypatch, capsys):
    target = tmp_path / "not-a-folder"
    target.write_text("")
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(target))
    started = time.perf_counter()
    assert main(arguments) == 4
    assert time.perf_counter() - started < 5, "refused at once, not after training or racing"
    assert f"{target} is a file, not a folder" in capsys.readouterr().err
