"""Links that open a view (fmnist_app/views.py): each page opened on a crafted address shows the view it names,
writes it back into the address, offers it to copy; a bad or stale value opens the defaults with one line.

Pages run on their own (AppTest), over a cache holding one tiny trained Model 1; those that show test images read
the real Fashion-MNIST files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from fmnist_core.data.fashion_mnist import CLASS_NAMES
from fmnist_core.paths import (
    PROJECT_ROOT,
    RECORDED_RACES_FOLDER,
    RECORDED_SWEEPS_FOLDER,
    recorded_sweeps_dir,
)
from fmnist_core.race.file import list_races
from fmnist_core.sweep.result import load_sweeps
from tests.conftest import require_real_data

PAGES = Path(__file__).resolve().parent.parent / "pages"
TIMEOUT = 300  # Inside's first run traces its explanation functions.
IGNORED = "The link asked for what this page cannot show"


def opened(page: str, address: dict[str, str]) -> AppTest:
    app = AppTest.from_file(str(PAGES / page), default_timeout=TIMEOUT)
    app.query_params.update(address)
    app.run()
    assert not app.exception, [error.value for error in app.exception]
    return app


def ignored_lines(app: AppTest) -> list[str]:
    return [info.value for info in app.info if info.value.startswith(IGNORED)]


def copied_link(app: AppTest) -> str:
    [code] = [code.value for code in app.code]
    return code


@pytest.fixture
def shipped(tmp_path, monkeypatch) -> Path:
    """What ships with the app, its recorded race and sweep only (no shipped models to load)."""
    folder = tmp_path / "shipped"
    for name in (RECORDED_RACES_FOLDER, RECORDED_SWEEPS_FOLDER):
        shutil.copytree(PROJECT_ROOT / name, folder / name)
    monkeypatch.setenv("FMNIST_SHIPPED_DIR", str(folder))
    return folder


def only_entry(cache: Path) -> str:
    return next(path.name for path in cache.iterdir() if path.name.startswith("model1-"))


@pytest.mark.realdata
def test_inside_opens_on_the_model_image_and_compared_class_a_link_names(trained_cache):
    require_real_data()
    address = {"model": "model1", "image": "test:123", "compare": "Shirt"}
    app = opened("inside.py", address)
    entry = only_entry(trained_cache)
    assert app.selectbox(key="inside_entry").value == entry
    assert app.number_input(key="inside_index").value == 123
    assert app.selectbox(key="inside_other").value == "Shirt"
    assert any(caption.startswith("Test image #123 ") for image in app.image for caption in image.captions)
    assert not ignored_lines(app)
    assert app.query_params == {"model": entry, "image": "test:123", "compare": "Shirt"}, "the address names it"
    assert copied_link(app) == f"?model={entry}&image=test%3A123&compare=Shirt"


@pytest.mark.realdata
def test_inside_opens_a_bad_link_on_its_defaults_with_one_line(trained_cache):
    require_real_data()
    app = opened("inside.py", {"model": "model3-0123456789ab", "image": "test:99999", "compare": "Hat"})
    [line] = ignored_lines(app)
    assert "model=model3-0123456789ab" in line and "image=test:99999" in line and "compare=Hat" in line
    assert app.number_input(key="inside_index").value == 0
    assert app.selectbox(key="inside_other").value == "—"


@pytest.mark.realdata
def test_evaluate_opens_on_the_model_and_cell_a_link_names(trained_cache):
    require_real_data()
    entry = only_entry(trained_cache)
    app = opened("evaluate.py", {"model": entry, "true": "Shirt", "predicted": "T-shirt/top"})
    assert app.selectbox(key="evaluate_entry").value == entry
    assert app.selectbox(key="mistakes_true_class").value == CLASS_NAMES.index("Shirt")
    assert app.selectbox(key="mistakes_predicted_class").value == CLASS_NAMES.index("T-shirt/top")
    assert not ignored_lines(app)
    assert copied_link(app) == f"?model={entry}&true=Shirt&predicted=T-shirt%2Ftop"

    stale = opened("evaluate.py", {"model": "model2-0123456789ab", "true": "Hat"})
    [line] = ignored_lines(stale)
    assert "model=model2-0123456789ab" in line and "true=Hat" in line
    assert stale.selectbox(key="evaluate_entry").value == entry, "the default model"


@pytest.mark.realdata
def test_predict_opens_on_the_test_image_a_link_names(trained_cache):
    require_real_data()
    app = opened("predict.py", {"example": "123"})
    assert app.number_input(key="test_index").value == 123
    assert any(caption.startswith("Test image #123 ") for image in app.image for caption in image.captions)
    assert copied_link(app) == "?example=123"
    bad = opened("predict.py", {"example": "99999"})
    assert len(ignored_lines(bad)) == 1 and not bad.code


def test_train_opens_on_the_model_and_preset_a_link_names(trained_cache):
    app = opened("train.py", {"model": "model2", "preset": "quick"})
    assert app.radio(key="train_model").value == "model2"
    assert app.radio(key="train_settings").value == "quick"
    assert copied_link(app) == "?model=model2&preset=quick"
    bad = opened("train.py", {"model": "model9", "preset": "huge"})
    [line] = ignored_lines(bad)
    assert "model=model9 (no model of that name)" in line and "preset=huge (no preset of that name)" in line
    assert bad.radio(key="train_model").value == "model1" and bad.radio(key="train_settings").value == "class"


@pytest.mark.realdata
def test_compare_opens_on_the_models_and_sweep_a_link_names(trained_cache, shipped):
    require_real_data()
    entry = only_entry(trained_cache)
    sweeps, _ = load_sweeps(trained_cache, recorded_sweeps_dir())
    sweep = sweeps[-1].sweep_id
    app = opened("compare.py", {"model1": entry, "sweep": sweep})
    assert app.selectbox(key="compare_model1").value == entry
    assert sweeps[app.selectbox(key="compare_sweep").value].sweep_id == sweep
    assert copied_link(app) == f"?model1={entry}&sweep={sweep}"
    bad = opened("compare.py", {"model1": "model1-0123456789ab", "sweep": "nope"})
    [line] = ignored_lines(bad)
    assert "model1=model1-0123456789ab" in line and "sweep=nope" in line


def test_race_opens_on_the_recorded_race_a_link_names(cache_dir, shipped):
    races = list_races()
    wanted = races[-1].path.name
    app = opened("race.py", {"race": wanted})
    assert races[app.selectbox(key="race_replayed").value].path.name == wanted
    assert copied_link(app) == f"?race={wanted}"
    bad = opened("race.py", {"race": "../../etc/passwd"})
    assert len(ignored_lines(bad)) == 1 and bad.selectbox(key="race_replayed").value == 0
