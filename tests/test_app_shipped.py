"""A fresh clone's app: the models and the race shipped with it, and nothing trained on this machine yet.

The Home page's quick start links to a sketch, to the widest model's mistakes and to the recorded race, and those
links open Evaluate on that model and the Race page's replay tab on that race; the pages say where each model came
from. The shipped models are stand-in entries installed by `make models`' own installing step.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from fmnist_core.config import PRESETS
from fmnist_core.race.file import race_json, store_race
from fmnist_core.store.shipping import install_shipped
from tests.conftest import require_real_data
from tests.test_app_home_dataset_train import all_text, button, open_page, router  # noqa: F401  (router: fixture)
from tests.test_race_summary import make_race
from tests.test_shipping import trained_in

PAGES = Path(__file__).resolve().parent.parent / "pages"
RECORDED_RACE = "2026-11-25-gpu-box.json"
SHIPPED_BY = "shipped with the app (trained on Test CPU, 2 cores, 2026-11-25)"


def opened_tab(app: AppTest) -> str:
    """The label of the tab the page's (only) tab container opens on."""

    def blocks(node):
        yield node
        for child in getattr(node, "children", {}).values():
            yield from blocks(child)

    container = next(node for node in blocks(app.main) if app.tabs[0] in getattr(node, "children", {}).values())
    return list(container.children.values())[container.proto.tab_container.default_tab_index].label


@pytest.fixture
def fresh_clone(tmp_path, cache_dir, monkeypatch) -> dict[str, str]:
    """A repository with Model 1, 2, 3 in cached_models/ and one race in recorded_races/, and an empty user cache;
    returns model name → shipped entry id."""
    repository = tmp_path / "repository"
    trained = trained_in(tmp_path / "trained")
    install_shipped(tmp_path / "trained", repository / "cached_models", PRESETS["full"])
    (repository / "recorded_races").mkdir(parents=True)
    (repository / "recorded_races" / RECORDED_RACE).write_text(race_json(make_race()), encoding="utf-8")
    monkeypatch.setenv("FMNIST_SHIPPED_DIR", str(repository))
    return trained


def test_home_quick_start_offers_the_shipped_models_and_the_recorded_race(router, fresh_clone):  # noqa: F811
    app = open_page(router)
    links = {link.proto.label: link.proto for link in app.page_link}
    assert links["Try a sketch"].page == "predict"
    assert links["See what Model 3 gets wrong"].query_string == f"model={fresh_clone['model3']}"
    assert links["Open the race recorded on 2026-11-25"].query_string == f"race={RECORDED_RACE}"
    text = all_text(app)
    assert "Model 1, Model 2 and Model 3 answer at once" in text and "recorded on gpu-box" in text
    assert text.count(SHIPPED_BY) == 3 and "No trained models yet" not in text
    assert "Or watch a model learn" in text and button(app, "Quick-train Model 1")


def test_home_offers_only_what_exists(router, fresh_clone, tmp_path):  # noqa: F811
    (tmp_path / "repository" / "recorded_races" / RECORDED_RACE).unlink()
    labels = {link.proto.label for link in open_page(router).page_link}
    assert {"Try a sketch", "See what Model 3 gets wrong"} <= labels
    assert not [label for label in labels if label.startswith("Open the race")]


@pytest.mark.realdata  # Evaluate shows the real test pictures behind each mistake.
def test_the_link_opens_evaluate_on_the_shipped_model_and_says_where_it_came_from(fresh_clone):
    require_real_data()
    app = AppTest.from_file(str(PAGES / "evaluate.py"), default_timeout=60)
    app.query_params["model"] = fresh_clone["model3"]
    app.run()
    assert not app.exception
    assert app.selectbox(key="evaluate_entry").value == fresh_clone["model3"]
    assert f"Model 3: {SHIPPED_BY}." in [caption.value for caption in app.caption]


def test_the_link_opens_the_replay_tab_on_the_recorded_race_listed_as_recorded(fresh_clone):
    store_race(make_race())  # A race of this machine too: listed first, so the link must pick the recorded one.
    app = AppTest.from_file(str(PAGES / "race.py"), default_timeout=60)
    app.query_params["race"] = RECORDED_RACE
    app.run()
    assert not app.exception
    assert opened_tab(app) == "Replay a recorded race"
    race = app.selectbox[0]
    assert race.format_func(race.value).startswith("[recorded] recorded on gpu-box")
    assert [label for label in race.options if label.startswith("[this machine]")]
    assert any("Recorded race: recorded on gpu-box" in info.value for info in app.info)
    next(button for button in app.button if button.label == "Jump to the finish").click().run()
    assert not app.exception and [header.value for header in app.header] == ["Finish order"]


def test_training_a_shipped_model_again_queues_the_visitors_own_copy_and_leaves_the_shipped_one(
    router,  # noqa: F811
    fresh_clone,
    tmp_path,
):
    from fmnist_core.store.cache import ModelCache
    from tests.test_app_home_dataset_train import ALICE, BOB, blocking_job, job_manager, stop_everything

    shipped = tmp_path / "repository" / "cached_models" / fresh_clone["model1"]
    before = sorted((path.name, path.stat().st_mtime_ns) for path in shipped.iterdir())
    blocking_job(owner=ALICE)  # The request waits in the queue, so nothing trains in this test.
    try:
        app = open_page(router, "train.py", visitor=BOB)
        app.radio[1].set_value("full").run()
        assert any("already trained" in message and SHIPPED_BY in message for message in (m.value for m in app.success))
        assert not [element for element in app.button if element.label == "Delete the cached model and train again"]
        button(app, "Train my own copy").click().run()
        assert not app.exception
        [waiting] = job_manager().queue()
        assert (waiting.owner, waiting.title) == (BOB, "Retraining Model 1 (full)")
        assert waiting.details == {"model": "model1", "config": PRESETS["full"].to_dict()}
        button(app, "Cancel my request").click().run()
        assert "You cancelled Retraining Model 1 (full) before it started." in [info.value for info in app.info]
    finally:
        stop_everything()
    assert sorted((path.name, path.stat().st_mtime_ns) for path in shipped.iterdir()) == before
    assert [entry.shipped for entry in ModelCache().list()] == [True, True, True], "nothing of the user's yet"


def test_in_classroom_mode_a_shipped_model_is_read_only(router, fresh_clone, monkeypatch):  # noqa: F811
    monkeypatch.setenv("FMNIST_CLASSROOM", "1")
    app = open_page(router, "train.py")
    app.radio[1].set_value("full").run()
    assert not [element for element in app.button if element.label in ("Train my own copy", "Train again")]
    assert any("read-only" in text.value and "--retrain" in text.value for text in app.markdown)
