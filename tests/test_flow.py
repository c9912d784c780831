"""Small steps of the flow between pages: a link opens the tab it promises."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from fmnist_app.common import DRAW_TAB, TAB_PARAMETER
from tests.app_tabs import PREDICT_TABS
from tests.test_app_home_dataset_train import open_page, router  # noqa: F401  (the router fixture)

PAGES = Path(__file__).resolve().parent.parent / "pages"


def test_home_draw_a_garment_opens_predicts_draw_tab(router, trained_cache):  # noqa: F811
    home = open_page(router)
    (sketch,) = [link.proto for link in home.page_link if link.proto.label == "Try a sketch"]
    assert sketch.query_string == f"{TAB_PARAMETER}={DRAW_TAB}"
    predict = AppTest.from_file(str(PAGES / "predict.py"), default_timeout=120)
    predict.query_params[TAB_PARAMETER] = DRAW_TAB
    predict.run()
    assert not predict.exception, [error.value for error in predict.exception]
    assert "Draw" in predict.session_state[PREDICT_TABS]
    plain = AppTest.from_file(str(PAGES / "predict.py"), default_timeout=120).run()
    assert "Upload" in plain.session_state[PREDICT_TABS]  # Without the link: the first tab, as before.
