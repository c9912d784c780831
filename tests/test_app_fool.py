"""The Fool page, headless (AppTest) over the session's tiny cached model and the real test images: the smallest
change for the chosen image, the three widths side by side, and the curves read from a recorded robustness file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from fmnist_core.paths import PROJECT_ROOT, RECORDED_ROBUSTNESS_FOLDER
from tests.conftest import require_real_data

PAGE = Path(__file__).resolve().parent.parent / "pages" / "fool.py"
pytestmark = pytest.mark.realdata


@pytest.fixture(autouse=True)
def real_data():
    require_real_data()


def run_page(**query) -> AppTest:
    app = AppTest.from_file(str(PAGE), default_timeout=180)
    app.query_params.update(query)
    app.run()
    assert not app.exception, [error.value for error in app.exception]
    return app


def test_without_models_the_page_points_to_training(cache_dir):
    app = run_page()
    assert "No trained model yet" in app.info[0].value


def test_the_page_fools_the_model_on_the_linked_image_and_draws_the_recorded_curves(
    trained_cache, tmp_path, monkeypatch
):
    shipped = tmp_path / "shipped"
    shutil.copytree(PROJECT_ROOT / RECORDED_ROBUSTNESS_FOLDER, shipped / RECORDED_ROBUSTNESS_FOLDER)
    monkeypatch.setenv("FMNIST_SHIPPED_DIR", str(shipped))
    app = run_page(image="test:5")
    assert app.number_input[0].value == 5
    verdict = next(block.value for block in app.markdown if "→" in block.value)
    assert "of 255 grey levels" in verdict
    assert len(app.dataframe) == 2  # Top 3 before and after.
    assert len(app.get("vega_lite_chart")) == 1
    assert any("At ε = 8/255 the models keep" in block.value for block in app.markdown)
    app.toggle(key="fool_all").set_value(True).run()
    assert not app.exception, [error.value for error in app.exception]
    assert {"Model 2: not trained yet.", "Model 3: not trained yet."} <= {caption.value for caption in app.caption}


def test_the_evaluate_page_ranks_confident_mistakes_and_links_them_to_fool(trained_cache):
    app = AppTest.from_file(str(PAGE.parent / "evaluate.py"), default_timeout=180).run()
    app.toggle(key="evaluate_ranked").set_value(True).run()
    assert not app.exception, [error.value for error in app.exception]
    assert any("Fool" in str(link.proto.label) for link in app.get("page_link")) or any(
        "Open **Fool**" in caption.value for caption in app.caption
    )
    app.radio(key="evaluate_gallery").set_value("ambiguous").run()
    assert not app.exception, [error.value for error in app.exception]
