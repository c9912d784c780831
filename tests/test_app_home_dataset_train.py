"""AppTest runs of the Home, Dataset and Train pages, with an empty model cache and with one tiny trained model.

The pages run through the app's own router (st.page_link only accepts pages registered with st.navigation).
The router is copied into a temporary folder whose pages/ links to the real page files; a page the router lists
but the repository lacks makes these tests fail, as it would break the app.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from fmnist_app import visitor as visitor_module
from fmnist_core.data.fashion_mnist import CLASS_NAMES
from fmnist_core.display import format_accuracy
from fmnist_core.store.cache import ModelCache
from fmnist_core.training.loop import TrainingCancelled
from tests.app_tabs import DATASET_TABS, open_tab
from tests.records import StandInModel, make_record
from tests.visitors import browser_of

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60
ALICE, BOB = "a" * 32, "b" * 32


@pytest.fixture(scope="session")
def router(tmp_path_factory) -> Path:
    """A copy of streamlit_app.py beside a pages/ folder of links to the real pages."""
    folder = tmp_path_factory.mktemp("app")
    source = (PROJECT_ROOT / "streamlit_app.py").read_text(encoding="utf-8")
    (folder / "streamlit_app.py").write_text(source, encoding="utf-8")
    pages = folder / "pages"
    pages.mkdir()
    for page in (PROJECT_ROOT / "pages").glob("*.py"):
        (pages / page.name).symlink_to(page)
    listed = re.findall(r'page\("pages/(\w+\.py)"', source)
    assert listed and all((pages / name).exists() for name in listed), f"the router lists a missing page: {listed}"
    return folder / "streamlit_app.py"


def open_page(
    router: Path, page: str | None = None, visitor: str | None = None, address: dict[str, str] | None = None
) -> AppTest:
    """Run the app (then switch to `page`); `visitor` opens it as a reloaded page of a browser whose cookie names
    that visitor; `address` is the query string it is opened with."""
    app = AppTest.from_file(str(router), default_timeout=TIMEOUT)
    app.query_params.update(address or {})
    with browser_of(visitor):
        app.run()
    if page is not None:
        app.switch_page(f"pages/{page}").run()
    assert not app.exception, [error.value for error in app.exception]
    return app


def open_quick_training(router: Path, visitor: str | None = None) -> AppTest:
    """The Train page with the quick preset chosen (the page opens on the class demo)."""
    app = open_page(router, "train.py", visitor=visitor)
    app.radio[1].set_value("quick").run()
    assert not app.exception, [error.value for error in app.exception]
    return app


def texts(app: AppTest, kind: str) -> list[str]:
    return [str(element.value) for element in getattr(app, kind)]


def all_text(app: AppTest) -> str:
    kinds = ("title", "header", "markdown", "caption", "info", "success", "warning", "error")
    return "\n".join(text for kind in kinds for text in texts(app, kind))


def button(app: AppTest, label_start: str):
    matches = [element for element in app.button if element.label.startswith(label_start)]
    assert matches, f"no button starting {label_start!r}; buttons: {[b.label for b in app.button]}"
    return matches[0]


def job_manager():
    from fmnist_app.common import job_manager

    return job_manager()


def finish_job(timeout: float = 240) -> None:
    status = job_manager().current()
    assert status is not None
    ended = job_manager().wait(status.job_id, timeout=timeout)
    assert not ended.running, f"job still running after {timeout} s: {ended.message}"


def stop_any_job():
    status = job_manager().current()
    if status is not None and status.running:
        job_manager().cancel()
        job_manager().wait(status.job_id, timeout=120)


@pytest.fixture(params=["cache_dir", "trained_cache"])
def any_cache(request) -> Path:
    """Each test runs once with an empty cache and once with one tiny trained model."""
    return request.getfixturevalue(request.param)


# Home ----------------------------------------------------------------------------------------------------


def test_home_renders_with_page_map_and_quick_train(router, any_cache):
    app = open_page(router)
    assert "Fashion-MNIST CNN Explorer" in texts(app, "title")[0]
    links = {link.proto.label for link in app.page_link}
    assert {"Dataset", "Train", "Evaluate", "Compare & report", "GPU vs CPU race", "Predict a sketch"} <= links
    assert button(app, "Quick-train Model 1")


def test_home_says_when_nothing_is_trained(router, cache_dir):
    assert "No trained models yet" in all_text(open_page(router))


def test_home_lists_cached_models_with_accuracy(router, trained_cache):
    entry = ModelCache(trained_cache).list()[0]
    text = all_text(open_page(router))
    assert format_accuracy(entry.record.test_accuracy) in text and "Model 1" in text
    assert "damaged" not in text


def test_home_flags_a_damaged_entry_and_deletes_it(router, trained_cache):
    entry = ModelCache(trained_cache).list()[0]
    model_file = entry.path / "model.keras"
    payload = bytearray(model_file.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    model_file.write_bytes(bytes(payload))

    app = open_page(router)
    assert any("damaged" in warning and entry.entry_id in warning for warning in texts(app, "warning"))
    button(app, "Delete").click().run()
    assert not app.exception
    assert not entry.path.exists()
    assert "No trained models yet" in all_text(app)


def test_home_reports_a_run_the_server_did_not_finish(router, cache_dir):
    gone = 2**22 + 12345  # Above Linux's largest process id: a server that no longer runs.
    marker = cache_dir / ".jobs" / f"active-jobs-{gone}.json"
    marker.parent.mkdir(parents=True)
    job = {"kind": "train", "title": "Training Model 2 (full)", "owner": ALICE, "state": "running", "submitted": 1}
    marker.write_text(json.dumps({"pid": gone, "jobs": [job]}))
    warnings = texts(open_page(router), "warning")
    assert any("The last run (Training Model 2 (full)) did not finish" in warning for warning in warnings)
    # The visitor who asked finds it on the Train page after the restart, with a way to ask again.
    train = open_page(router, "train.py", visitor=ALICE)
    assert "Training Model 2 (full): Did not finish: the server stopped while it was running. Ask again below." in (
        texts(train, "warning")
    )
    assert button(train, "Train Model 1")


def test_after_a_restart_ask_again_offers_the_requests_own_settings(router, cache_dir):
    from tests.test_hostile_round3 import custom_request

    gone = 2**22 + 12345  # Above Linux's largest process id: a server that no longer runs.
    marker = cache_dir / ".jobs" / f"active-jobs-{gone}.json"
    marker.parent.mkdir(parents=True)
    job = {
        "kind": "train",
        "title": "Training Model 1 (custom)",
        "owner": ALICE,
        "state": "running",
        "submitted": 1,
        "details": custom_request(),
    }
    marker.write_text(json.dumps({"pid": gone, "jobs": [job]}))
    train = open_page(router, "train.py", visitor=ALICE)
    assert any(
        "Training Model 1 (custom): Did not finish" in text and "Ask again below" in text
        for text in texts(train, "warning")
    )
    assert train.radio(key="train_settings").value == "custom"
    assert train.number_input(key="custom_images").value == 8000
    assert train.number_input(key="custom_epochs").value == 1
    assert train.number_input(key="custom_seed").value == 9


@pytest.mark.slow
def test_home_page_does_not_import_tensorflow(router, cache_dir):
    script = (
        "import json, sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"app = AppTest.from_file({str(router)!r}, default_timeout={TIMEOUT}).run()\n"
        "assert not app.exception, [e.value for e in app.exception]\n"
        "print(json.dumps(sorted(name for name in ('tensorflow', 'keras', 'sklearn') if name in sys.modules)))\n"
    )
    environment = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    heavy = json.loads(result.stdout.strip().splitlines()[-1])
    assert "tensorflow" not in heavy and "keras" not in heavy, heavy


@pytest.fixture
def quick_model1_cached(cache_dir) -> Path:
    """A valid cache entry for Model 1 on the quick preset, without training it."""
    from fmnist_core.config import PRESETS
    from fmnist_core.models.registry import get_spec

    history = {"loss": [0.9, 0.5], "accuracy": [0.7, 0.82], "val_loss": [0.7, 0.45], "val_accuracy": [0.75, 0.84]}
    ModelCache(cache_dir).save(
        StandInModel(), make_record(get_spec("model1"), PRESETS["quick"], test_accuracy=0.873, history=history)
    )
    return cache_dir


def test_home_says_when_the_quick_model_is_ready(router, quick_model1_cached):
    app = open_page(router)
    assert any(
        "quick preset is trained and ready" in message and "87.30%" in message for message in texts(app, "success")
    )
    assert not [element for element in app.button if element.label.startswith("Quick-train")]


def test_train_page_offers_cached_settings_instead_of_retraining(router, quick_model1_cached):
    app = open_quick_training(router)
    assert any("already trained" in message for message in texts(app, "success"))
    assert app.metric[0].value == "87.30%" and charts(app)
    assert not [element for element in app.button if element.label.startswith("Train Model")]
    assert [expander.label for expander in app.expander] == ["Train again anyway"]


# Dataset -------------------------------------------------------------------------------------------------


def charts(app: AppTest) -> list:
    return app.get("vega_lite_chart")


@pytest.mark.realdata
def test_dataset_draws_only_the_open_tab(router, any_cache):
    app = open_page(router, "dataset.py")
    assert [tab.label for tab in app.tabs] == [
        "Pictures",
        "Class balance",
        "Mean images",
        "Pixel histogram",
        "2-D map",
        "Augmentation",
    ]
    [grid] = app.image
    assert len(grid.value) == 40 and "Pictures 1–40 of 60,000" in texts(app, "caption")
    assert not charts(app), "the closed tabs' charts are not drawn"

    open_tab(app, DATASET_TABS, "Class balance")
    assert len(charts(app)) == 1 and not app.image
    open_tab(app, DATASET_TABS, "Mean images")
    [means] = app.image
    assert means.captions == list(CLASS_NAMES) and not charts(app)
    open_tab(app, DATASET_TABS, "Pixel histogram")
    assert len(charts(app)) == 1
    open_tab(app, DATASET_TABS, "2-D map")
    assert len(charts(app)) == 1
    assert any("Each dot is one picture" in caption for caption in texts(app, "caption"))
    open_tab(app, DATASET_TABS, "Augmentation")
    assert len(app.image) == 5 * 8 and not charts(app)  # The originals, then four batches' views of them.
    assert any("**Horizontal flip" in block.value for block in app.markdown)


@pytest.mark.realdata
def test_dataset_keeps_choices_made_in_a_tab_when_it_is_closed(router, cache_dir):
    app = open_page(router, "dataset.py")
    button(app, "Next").click().run()
    open_tab(app, DATASET_TABS, "Pixel histogram")
    app.checkbox(key="skip_background").uncheck().run()
    open_tab(app, DATASET_TABS, "2-D map")
    app.slider(key="map_size").set_value(300).run()
    open_tab(app, DATASET_TABS, "Pictures")
    assert app.number_input(key="grid_page").value == 2
    open_tab(app, DATASET_TABS, "Pixel histogram")
    assert app.checkbox(key="skip_background").value is False
    open_tab(app, DATASET_TABS, "2-D map")
    assert app.slider(key="map_size").value == 300


@pytest.mark.realdata
def test_dataset_pages_filters_and_switches_split(router, cache_dir):
    app = open_page(router, "dataset.py")
    button(app, "Next").click().run()
    assert app.number_input(key="grid_page").value == 2
    assert "Pictures 41–80 of 60,000" in texts(app, "caption")

    app.multiselect[0].set_value([1]).run()
    app.radio[0].set_value("test").run()
    assert not app.exception
    assert app.number_input(key="grid_page").value == 1
    assert "Pictures 1–40 of 1,000" in texts(app, "caption")
    assert set(app.image[0].captions) == {"Trouser"}

    app.multiselect[0].set_value([]).run()
    assert any("Pick at least one class" in info for info in texts(app, "info"))


@pytest.mark.realdata
def test_dataset_map_switches_to_tsne_with_a_time_note(router, cache_dir):
    app = open_tab(open_page(router, "dataset.py"), DATASET_TABS, "2-D map")
    app.radio[0].set_value("test")
    app.multiselect[0].set_value([5, 7, 9])
    app.slider[0].set_value(200)
    app.toggle[0].set_value(True).run()
    assert not app.exception
    captions = texts(app, "caption")
    assert any(caption.startswith("t-SNE takes about") for caption in captions)
    assert any("Each dot is one picture" in caption for caption in captions)


# Train ---------------------------------------------------------------------------------------------------


def test_train_page_offers_models_and_settings(router, any_cache):
    app = open_page(router, "train.py")
    assert [radio.label for radio in app.radio] == ["Model", "Settings"]
    assert list(app.radio[0].options) == ["Model 1", "Model 2", "Model 3"]
    assert app.radio[1].value == "class", "the class demo is the default"
    sizes = app.dataframe[0].value
    assert list(sizes["First-layer filters"]) == [64, 128, 256]
    assert sizes["Parameters"].is_monotonic_increasing
    assert button(app, "Train Model 1")


def choose_custom(app: AppTest, **values) -> AppTest:
    app.radio[1].set_value("custom").run()
    inputs = {element.label: element for element in app.number_input}
    for label, value in values.items():
        inputs[label].set_value(value)
    return app.run()


def test_train_page_explains_invalid_custom_settings(router, cache_dir):
    app = choose_custom(open_page(router, "train.py"), **{"Learning rate": 0.0})
    assert any("learning rate must be in (0, 1]" in error for error in texts(app, "error"))
    assert not [element for element in app.button if element.label.startswith("Train Model")]


@pytest.mark.realdata
@pytest.mark.slow
def test_train_flow_runs_in_the_background_then_offers_the_cached_model(router, cache_dir):
    app = choose_custom(
        open_page(router, "train.py"), **{"Epochs": 1, "Batch size": 64, "Training images (0 = all 54,000)": 256}
    )
    button(app, "Train Model 1").click().run()
    try:
        assert not app.exception
        assert job_manager().busy()
        assert "Training Model 1 (custom)" in all_text(app)
        assert app.get("progress") and button(app, "Stop")
        finish_job()
        app.run()
        assert not app.exception
        assert any("finished" in message for message in texts(app, "success")), texts(app, "error")
        assert app.metric[0].label == "Test accuracy" and app.metric[0].value.endswith("%")
        assert charts(app), "the learning curves are drawn"
        assert "evaluate" in [link.proto.page for link in app.page_link]
        [entry] = ModelCache(cache_dir).list()

        # The same settings are now cached: training again keeps the entry until the new one is saved, and
        # Stop keeps it for good.
        assert [expander.label for expander in app.expander] == ["Train again anyway"]
        button(app, "Train again").click().run()
        assert job_manager().busy() and "Retraining Model 1 (custom)" in all_text(app)
        assert ModelCache(cache_dir).inspect(entry.entry_id).record == entry.record, "usable while the new run trains"
        button(app, "Stop").click().run()
        finish_job()
        app.run()
        assert any(
            "stopped, nothing was saved. The model trained before is still there" in info for info in texts(app, "info")
        )
        assert [found.record for found in ModelCache(cache_dir).list()] == [entry.record]
    finally:
        stop_any_job()


def blocking_job(owner: str | None = None, kind: str = "train", title: str = "Training Model 2 (quick)"):
    """Start a job that keeps the machine busy until stopped, reporting live training details meanwhile."""

    def work(context):
        history = [{"epoch": 1, "loss": 0.9, "accuracy": 0.7, "val_loss": 0.8, "val_accuracy": 0.72}]
        while not context.should_stop():
            context.report(
                0.5,
                "Epoch 2/3 · batch 5/10",
                epoch=2,
                epochs=3,
                batch=5,
                batches=10,
                images_per_second=1234.0,
                metrics={"loss": 0.5, "accuracy": 0.8},
                history=history,
                live_curve=[
                    {"fraction": 0.1, "loss": 0.9, "accuracy": 0.7},
                    {"fraction": 0.5, "loss": 0.5, "accuracy": 0.8},
                ],
                slice_checks=[{"fraction": 0.1, "slice_accuracy": 0.72}],
            )
            time.sleep(0.02)
        raise TrainingCancelled("Training was stopped; nothing was saved.")  # As train_and_cache does.

    if kind == "race":
        return job_manager().start(kind, title, work)
    return job_manager().submit(kind, title, work, owner=owner)


def stop_everything():
    for waiting in job_manager().queue():
        job_manager().cancel(waiting.job_id)
    stop_any_job()


def test_train_page_shows_what_else_runs_and_lets_a_laptop_user_stop_it(router, cache_dir):
    blocking_job(kind="race", title="GPU vs CPU race")
    try:
        app = open_page(router, "train.py")
        assert any(bar.proto.text.startswith("**GPU vs CPU race** — Epoch 2/3") for bar in app.get("progress"))
        button(app, "Stop it").click().run()
        finish_job(timeout=10)
        app.run()
        assert not app.exception and button(app, "Train Model 1")
        assert not app.get("progress")
    finally:
        stop_everything()


def test_train_page_shows_live_progress_and_curves_of_the_visitors_own_training(router, cache_dir):
    blocking_job(owner=ALICE)
    try:
        app = open_page(router, "train.py", visitor=ALICE)
        assert "Training Model 2 (quick)" in all_text(app)
        assert app.get("progress")[0].proto.text == "Epoch 2/3 · batch 5/10"
        shown = {metric.label: metric.value for metric in app.metric}
        assert shown["Images / s"] == "1,234" and shown["Accuracy (this epoch)"] == "80.00%"
        assert shown["Remaining (estimate)"] != "—"
        assert charts(app), "the curves drawn so far"
        assert any("fixed slice of the validation pictures" in caption for caption in texts(app, "caption"))
        button(app, "Stop").click().run()
        finish_job(timeout=10)
        app.run()
        assert any("stopped, nothing was saved" in info for info in texts(app, "info"))
    finally:
        stop_everything()


def test_a_visitor_queues_sees_the_place_after_a_reload_and_cancels(router, cache_dir):
    running = blocking_job(owner=ALICE)
    try:
        bob = open_quick_training(router, visitor=BOB)
        # Bob sees what keeps the machine busy, not Alice's curves, and may not stop it... on a laptop he may.
        assert any(bar.proto.text.startswith("**Training Model 2 (quick)** —") for bar in bob.get("progress"))
        assert not charts(bob)
        button(bob, "Train Model 1").click().run()
        assert not bob.exception
        [waiting] = job_manager().queue()
        assert (waiting.owner, waiting.title) == (BOB, "Training Model 1 (quick)")
        place = "**Training Model 1 (quick)** is number 1 in the queue"
        assert any(info.startswith(place) for info in texts(bob, "info")), texts(bob, "info")
        assert not [element for element in bob.button if element.label.startswith("Train Model")], "one each"

        reloaded = open_page(router, "train.py", visitor=BOB)  # A reload: a new session, the same address.
        assert any(info.startswith(place) for info in texts(reloaded, "info"))
        assert [element.label for element in reloaded.button if element.label == "Cancel my request"]
        button(reloaded, "Cancel my request").click().run()
        assert job_manager().queue() == [] and job_manager().status(running.job_id).running
        # Said once, by the self-refreshing status box while the machine is busy (a line beside it can go missing
        # in a loaded browser, see fmnist_app/visitor.py); once the machine is quiet, by the page beside the settings.
        cancelled = "You cancelled Training Model 1 (quick) before it started."
        assert texts(reloaded, "info").count(cancelled) == 1, texts(reloaded, "info")
        assert button(reloaded, "Train Model 1")
        stop_everything()
        reloaded.run()
        assert texts(reloaded, "info").count(cancelled) == 1, texts(reloaded, "info")
        assert not reloaded.get("progress"), "the machine is quiet: no status box"
    finally:
        stop_everything()


def test_a_full_queue_is_refused_with_a_message(router, cache_dir, monkeypatch):
    monkeypatch.setenv("FMNIST_QUEUE_LIMIT", "0")
    blocking_job(owner=ALICE)
    try:
        bob = open_page(router, "train.py", visitor=BOB)
        button(bob, "Train Model 1").click().run()
        assert any(error.startswith("The queue is full") for error in texts(bob, "error")), texts(bob, "error")
        assert job_manager().queue() == []
    finally:
        stop_everything()


def test_train_again_keeps_the_cached_model_while_the_request_waits_and_after_cancel(router, quick_model1_cached):
    [entry] = ModelCache(quick_model1_cached).list()
    blocking_job(owner=ALICE)
    try:
        bob = open_quick_training(router, visitor=BOB)
        button(bob, "Train again").click().run()
        [waiting] = job_manager().queue()
        assert waiting.title == "Retraining Model 1 (quick)"
        assert ModelCache(quick_model1_cached).inspect(entry.entry_id).record == entry.record, "kept while it waits"
        button(bob, "Cancel my request").click().run()
        assert [found.record for found in ModelCache(quick_model1_cached).list()] == [entry.record]
    finally:
        stop_everything()


# Classroom mode ------------------------------------------------------------------------------------------------


@pytest.fixture
def classroom(monkeypatch):
    monkeypatch.setenv("FMNIST_CLASSROOM", "1")


def test_classroom_mode_offers_no_delete_in_the_app(router, trained_cache, classroom):
    entry = ModelCache(trained_cache).list()[0]
    (entry.path / "model.keras").write_bytes(b"damaged")
    app = open_page(router)
    assert not [element for element in app.button if element.label == "Delete"]
    assert any(
        entry.entry_id in warning and f"python -m fmnist_core cache delete {entry.entry_id}" in warning
        for warning in texts(app, "warning")
    )
    assert entry.path.exists()


def test_classroom_mode_keeps_the_teachers_and_other_visitors_models_read_only(router, quick_model1_cached, classroom):
    app = open_quick_training(router, visitor=BOB)
    assert not [element for element in app.button if element.label == "Train again"]
    assert any("read-only" in text and "--retrain" in text for text in texts(app, "markdown"))


def test_classroom_mode_lets_a_visitor_retrain_their_own_model(router, cache_dir, classroom):
    from fmnist_core.config import PRESETS
    from fmnist_core.models.registry import get_spec

    record = dataclasses.replace(make_record(get_spec("model1"), PRESETS["quick"]), owner=ALICE)
    assert ModelCache(cache_dir).save(StandInModel(), record).owner == ALICE
    assert [
        element.label for element in open_quick_training(router, visitor=ALICE).button if element.label == "Train again"
    ]
    assert not [
        element for element in open_quick_training(router, visitor=BOB).button if element.label == "Train again"
    ]


def test_classroom_mode_lets_only_the_owner_stop_a_training(router, cache_dir, classroom):
    blocking_job(owner=ALICE)
    try:
        bob = open_page(router, "train.py", visitor=BOB)
        assert any(bar.proto.text.startswith("**Training Model 2 (quick)**") for bar in bob.get("progress"))
        assert not [element for element in bob.button if element.label.startswith("Stop")]
        alice = open_page(router, "train.py", visitor=ALICE)
        assert button(alice, "Stop")
    finally:
        stop_everything()


def sent_cookie_scripts(app: AppTest) -> list[str]:
    return [element.proto.body for element in app.sidebar.get("html")]


def test_a_hostile_visitor_cookie_is_replaced_by_a_fresh_id_kept_in_the_cookie(router, cache_dir):
    from fmnist_core.jobs.classroom import is_visitor_id

    app = open_page(router, visitor="../../etc/passwd")
    fresh = app.session_state["visitor_id"]
    assert is_visitor_id(fresh), "a fresh id, not the text from the cookie"
    assert sent_cookie_scripts(app) == [visitor_module.cookie_script(fresh)], "written into the browser's cookie"


def test_the_visitor_comes_from_the_cookie_and_never_from_the_address(router, cache_dir):
    remembered = open_page(router, visitor=ALICE, address={"visitor": BOB})
    assert remembered.session_state["visitor_id"] == ALICE
    assert "visitor" not in remembered.query_params, "an old address's id leaves the address"
    assert not sent_cookie_scripts(remembered), "the browser already holds its cookie"

    # Another browser opening an address that names Alice (the old form of identity) is a new visitor.
    stranger = open_page(router, address={"visitor": ALICE})
    assert stranger.session_state["visitor_id"] not in (ALICE, BOB)
    assert "visitor" not in stranger.query_params


def test_the_cookie_script_carries_only_a_visitor_id():
    assert visitor_module.cookie_script(ALICE).count(ALICE) == 1
    for hostile in ('"; alert(1); "', "a" * 31 + "</script>", ALICE.upper(), ALICE + "\n"):
        with pytest.raises(ValueError):
            visitor_module.cookie_script(hostile)


def test_home_page_also_runs_on_its_own(cache_dir):
    """Without the router, links fall back to plain text instead of failing."""
    app = AppTest.from_file(str(PROJECT_ROOT / "pages" / "home.py"), default_timeout=TIMEOUT).run()
    assert not app.exception, [error.value for error in app.exception]
    assert button(app, "Quick-train Model 1")
