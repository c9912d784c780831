"""The Evaluate and Compare pages, driven headless with Streamlit's AppTest over a temporary model cache.

The pages show real test images (the mistake gallery) and time predictions on one, so these tests read the
real Fashion-MNIST files, which exist wherever the suite runs (CI installs them).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from fmnist_core.data.fashion_mnist import CLASS_NAMES
from fmnist_core.display import format_accuracy
from fmnist_core.evaluate import confusion
from fmnist_core.report import comparison as report
from tests.conftest import require_real_data

PAGES = Path(__file__).resolve().parent.parent / "pages"
pytestmark = pytest.mark.realdata


@pytest.fixture(autouse=True)
def real_data():
    require_real_data()


def run_page(name: str) -> AppTest:
    app = AppTest.from_file(str(PAGES / name), default_timeout=60).run()
    assert not app.exception, [error.value for error in app.exception]
    return app


def only_entry(cache: Path) -> Path:
    return next(path for path in cache.iterdir() if path.name.startswith("model1-"))


def stored_evaluation(cache: Path) -> dict:
    return json.loads((only_entry(cache) / "meta.json").read_text(encoding="utf-8"))["evaluation"]


def chart_tables(app: AppTest) -> list:
    """The data behind every Altair chart on the page, as pandas tables."""
    return [
        pa.ipc.open_stream(dataset.data.data).read_all().to_pandas()
        for chart in app.get("vega_lite_chart")
        for dataset in chart.proto.datasets
    ]


@pytest.mark.parametrize("page", ["evaluate.py", "compare.py"])
def test_pages_without_models_point_to_training(cache_dir, page):
    app = run_page(page)
    assert "No trained model yet" in app.info[0].value
    assert any("Train" in caption.value for caption in app.caption) or len(app.get("page_link")) == 1
    assert not app.get("vega_lite_chart")


def test_evaluate_shows_metrics_and_the_confusion_matrix(trained_cache):
    app = run_page("evaluate.py")
    evaluation = stored_evaluation(trained_cache)
    assert app.selectbox(key="evaluate_entry").value == only_entry(trained_cache).name
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Test accuracy"] == format_accuracy(evaluation["test_accuracy"])
    assert metrics["Test loss"] == f"{evaluation['test_loss']:.3f}"
    cells = next(table for table in chart_tables(app) if "predicted_class" in table.columns)
    assert len(cells) == 100
    assert cells["count"].sum() == sum(map(sum, evaluation["confusion_matrix"]))
    assert set(cells["true_class"]) == set(CLASS_NAMES)
    assert len(app.dataframe[0].value) == 10  # The per-class precision / recall / F1 table.
    app.toggle(key="confusion_normalised").set_value(True).run()
    assert not app.exception


def test_choosing_a_pair_shows_the_mistaken_images(trained_cache):
    app = run_page("evaluate.py")
    evaluation = stored_evaluation(trained_cache)
    # Start from a pair other than the default (the most confused), so the choice visibly changes the gallery.
    pairs = confusion.most_confused(evaluation["confusion_matrix"], top=2)
    pair = pairs[-1]
    app.selectbox(key="mistakes_true_class").set_value(pair.true_class)
    app.selectbox(key="mistakes_predicted_class").set_value(pair.predicted_class).run()
    assert not app.exception
    captions = [caption for image in app.image for caption in image.captions]
    assert len(captions) == min(pair.count, 40)
    assert all(
        caption.startswith("confidence ") and caption.endswith(f"as {CLASS_NAMES[pair.predicted_class]}")
        for caption in captions
    )
    app.selectbox(key="mistakes_predicted_class").set_value(pair.true_class).run()
    assert not app.image and "got right" in app.info[0].value


def test_damaged_entry_is_listed_with_a_delete_button(trained_cache):
    entry = only_entry(trained_cache)
    with (entry / "model.keras").open("ab") as handle:
        handle.write(b"tampered")
    app = run_page("evaluate.py")
    assert entry.name in app.warning[0].value and "damaged" in app.warning[0].value
    assert "No trained model yet" in app.info[0].value  # Its only model is unusable.
    app.button(key=f"delete-{entry.name}").click().run()
    assert not app.exception
    assert not entry.exists() and not app.warning


def shown_values(app: AppTest, index: int = 0):
    """A page's table as the browser shows it: the display values of its Styler."""
    styler = app.dataframe[index].proto.arrow_data.styler
    return pa.ipc.open_stream(styler.display_values).read_all().to_pandas()


def test_compare_and_evaluate_show_the_same_accuracy_and_compare_puts_it_first(trained_cache):
    evaluation = stored_evaluation(trained_cache)
    compare = AppTest.from_file(str(PAGES / "compare.py"), default_timeout=60)
    compare.session_state["compare_latency"] = False
    compare.run()
    assert not compare.exception
    evaluate = run_page("evaluate.py")
    shown = shown_values(compare)
    metrics = {metric.label: metric.value for metric in evaluate.metric}
    assert shown.loc[0, "test_accuracy"] == metrics["Test accuracy"] == format_accuracy(evaluation["test_accuracy"])
    assert "." in shown.loc[0, "test_accuracy"]  # Not Streamlit's rounded '94%'.
    assert compare.dataframe[0].value.loc[0, "test_accuracy"] == evaluation["test_accuracy"]  # Still a number.
    order = list(compare.dataframe[0].proto.column_order)
    assert order == report.column_order() and order[:4] == ["model", "test_accuracy", "training_seconds", "latency_ms"]


def test_compare_shows_the_table_and_the_downloads(trained_cache):
    # No race at all: the recorded races shipped with the app are out of sight (tests/conftest.py).
    app = run_page("compare.py")
    table = app.dataframe[0].value
    assert list(table["status"]) == [report.TRAINED, report.NOT_TRAINED, report.NOT_TRAINED]
    assert table.loc[0, "entry_id"] == only_entry(trained_cache).name
    assert table.loc[0, "latency_ms"] > 0  # Timed on the page.
    assert [button.label for button in app.get("download_button")] == [
        "Download report (Markdown)",
        "Download table (CSV)",
    ]
    assert any("No races yet" in info.value for info in app.info)
    app.toggle(key="compare_latency").set_value(False).run()
    assert not app.exception and app.dataframe[0].value["latency_ms"].isna().all()


def test_compare_shows_a_stored_race(trained_cache):
    from fmnist_core.race.file import store_race
    from tests.test_race_summary import make_race

    store_race(make_race())
    app = AppTest.from_file(str(PAGES / "compare.py"), default_timeout=60)
    app.session_state["compare_latency"] = False  # Timing is not what this test is about.
    app.run()
    assert not app.exception
    assert "gpu-box" in app.selectbox(key="compare_race").options[0]
    assert set(app.dataframe[1].value["lane"]) == {"GPU 0", "CPU, all cores"}
    assert any("CPU, 1 core: did not run" in caption.value for caption in app.caption)
