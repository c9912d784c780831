"""The "Inside the model" page, driven headless with Streamlit's AppTest, and the links to it from Predict and
Evaluate. Pages showing test images read the real Fashion-MNIST files (CI installs them): those are realdata.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from fmnist_app.common import LAST_SKETCH
from fmnist_core.data.fashion_mnist import CLASS_NAMES
from fmnist_core.display import format_accuracy
from tests.app_tabs import PREDICT_TABS, open_tab
from tests.conftest import require_real_data
from tests.test_app_home_dataset_train import router  # noqa: F401  (the router fixture: pages as the app runs them)
from tests.test_predict import garment_png

PAGES = Path(__file__).resolve().parent.parent / "pages"
TIMEOUT = 300  # The first run loads the model, traces its explanation functions, maps 2,000 images; later: seconds.


@pytest.fixture(scope="module")
def shared_cache(trained_cache_dir, tmp_path_factory) -> Path:
    """One copy of the trained cache for the tests that only read it: the app loads its model once for all."""
    import shutil

    folder = tmp_path_factory.mktemp("inside") / "cache"
    shutil.copytree(trained_cache_dir, folder)
    return folder


@pytest.fixture
def cached_model(shared_cache, monkeypatch) -> Path:
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(shared_cache))
    return shared_cache


def page(name: str = "inside.py", query: dict | None = None, state: dict | None = None) -> AppTest:
    app = AppTest.from_file(str(PAGES / name), default_timeout=TIMEOUT)
    app.query_params.update(query or {})
    for key, value in (state or {}).items():
        app.session_state[key] = value
    app.run()
    assert not app.exception, [error.value for error in app.exception]
    return app


def captions(app: AppTest) -> list[str]:
    return [caption for image in app.image for caption in image.captions]


def chart_tables(app: AppTest) -> list:
    return [
        pa.ipc.open_stream(dataset.data.data).read_all().to_pandas()
        for chart in app.get("vega_lite_chart")
        for dataset in chart.proto.datasets
    ]


def only_entry(cache: Path) -> str:
    return next(path.name for path in cache.iterdir() if path.name.startswith("model1-"))


def test_without_models_the_page_points_to_training(cache_dir):
    app = page()
    assert "No trained model yet" in app.info[0].value
    assert not app.image and not app.get("vega_lite_chart")


def test_a_damaged_entry_is_listed_and_never_explained(trained_cache):
    model_file = trained_cache / only_entry(trained_cache) / "model.keras"
    model_file.write_bytes(model_file.read_bytes()[:-10])
    app = page()
    assert "is damaged" in app.warning[0].value and "No trained model yet" in app.info[0].value
    assert not app.image


@pytest.mark.realdata
def test_every_view_is_shown_for_a_test_image(cached_model):
    require_real_data()
    app = page()
    assert app.selectbox(key="inside_entry").value == only_entry(cached_model)
    shown = captions(app)
    assert shown[0].startswith("Test image #0 · true label: ")
    assert any(caption.startswith("Evidence for ") and caption.endswith("(its top guess)") for caption in shown)
    assert "Model 1: 8 filters" in shown
    block_captions = [caption.value for caption in app.caption if "each pixel sees" in caption.value]
    assert block_captions == [
        "Model 1 · 14×14×8 · each pixel sees 4×4 pixels of the picture",
        "Model 1 · 14×14×8 · each pixel sees 8×8 pixels of the picture",
        "Model 1 · 14×14×8 · each pixel sees 12×12 pixels of the picture",
        "Model 1 · 7×7×8 · each pixel sees 22×22 pixels of the picture",
    ]
    redundancy = app.dataframe[0].value
    assert list(redundancy["model"]) == ["Model 1"] and redundancy.loc[0, "filters"] == 8
    assert redundancy.loc[0, "distinct groups"] + redundancy.loc[0, "nearly dead"] <= 8
    mapped = next(table for table in chart_tables(app) if "mistake" in table.columns)
    assert len(mapped) == 2000 and set(mapped["class_name"]) == set(CLASS_NAMES)
    assert (mapped["mistake"] == (mapped["predicted_name"] != mapped["class_name"])).all()
    right = format_accuracy(float((~mapped["mistake"]).mean()))
    assert f"Model 1: {right} right on these 2,000 of the 10,000 test images" in " ".join(c.value for c in app.caption)


@pytest.mark.realdata
def test_a_second_class_adds_its_evidence(cached_model):
    require_real_data()
    app = page()
    app.selectbox(key="inside_other").set_value("Shirt").run()
    assert not app.exception
    assert "Evidence for Shirt" in captions(app)


@pytest.mark.realdata
def test_a_link_from_evaluate_opens_that_model_and_test_image(cached_model):
    require_real_data()
    entry = only_entry(cached_model)
    app = page(query={"model": entry, "image": "test:42"})
    assert app.selectbox(key="inside_entry").value == entry
    assert app.number_input(key="inside_index").value == 42
    assert captions(app)[0].startswith("Test image #42 ")
    assert app.query_params == {"model": entry, "image": "test:42"}, "the address names the view shown"
    app.number_input(key="inside_index").set_value(7).run()
    assert app.query_params["image"] == "test:7", "then the pickers are the user's, and the address follows them"


@pytest.mark.realdata
def test_a_link_to_a_missing_model_or_image_says_so_and_shows_another(cached_model):
    require_real_data()
    app = page(query={"model": "model3-0123456789ab", "image": "test:99999"})
    [said] = [info.value for info in app.info if "model=model3-0123456789ab" in info.value]
    assert "image=test:99999 (no such test image" in said
    assert captions(app)[0].startswith("Test image #0 ")
    # A model deleted while this session showed it: the page says so and shows the most accurate one.
    stale = page(state={"inside_entry": "model3-0123456789ab"})
    assert any("That model is no longer cached" in warning.value for warning in stale.warning)


@pytest.mark.realdata
def test_the_last_sketch_from_predict_is_explained(cached_model):
    require_real_data()
    app = page(query={"image": "sketch"})
    assert "No sketch yet" in app.info[0].value
    sketch = np.zeros((28, 28), np.float32)
    sketch[4:24, 8:20] = 1.0
    app = page(query={"image": "sketch"}, state={LAST_SKETCH: sketch})
    assert captions(app)[0] == "Your last sketch from Predict, as the models see it"
    assert any(caption.startswith("Evidence for ") for caption in captions(app))


@pytest.mark.realdata
def test_an_upload_is_prepared_and_a_bad_one_explained(cached_model):
    require_real_data()
    app = page()
    app.radio(key="inside_source").set_value("Upload a picture").run()
    app.file_uploader(key="inside_upload").upload("trousers.png", garment_png(), "image/png").run()
    assert not app.exception
    assert captions(app)[0] == "Your upload, prepared like Fashion-MNIST"
    app.file_uploader(key="inside_upload").upload("notes.png", b"Buy milk.\n", "image/png").run()
    assert not app.exception
    assert "This file is not an image" in app.error[0].value
    assert not any(caption.startswith("Evidence for ") for caption in captions(app))


@pytest.mark.realdata
def test_predict_and_evaluate_link_here_with_the_picture(router, cached_model):  # noqa: F811
    require_real_data()
    app = AppTest.from_file(str(router), default_timeout=TIMEOUT).run()
    app.switch_page("pages/predict.py").run()
    open_tab(app, PREDICT_TABS, "test image")
    index = app.number_input(key="test_index").value
    links = [link.proto for link in app.get("page_link") if link.proto.label == "See what the model looked at"]
    assert [(link.page, link.query_string) for link in links] == [("inside", "image=sketch")] * 0 + [
        ("inside", f"image=test%3A{index}")
    ]
    app.switch_page("pages/evaluate.py").run()
    assert not app.exception, [error.value for error in app.exception]
    why = [link.proto for link in app.get("page_link") if link.proto.label == "Why?"]
    shown = [caption for image in app.image for caption in image.captions]
    assert why and len(why) == len(shown), "one link under each mistaken picture"
    entry = only_entry(cached_model)
    assert all(link.query_string.startswith(f"model={entry}&image=test%3A") for link in why)
