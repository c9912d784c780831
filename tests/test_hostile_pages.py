"""Hostile input on the pages (issue 19), through AppTest: a damaged array cache on the Dataset page, uploads whose
answer or error names the file it is about, a race that cannot be kept refused before it starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from fmnist_core.config import PRESETS
from fmnist_core.display import format_learning_rate
from tests.test_predict import garment_png
from tests.visitors import browser_of

PAGES = Path(__file__).resolve().parent.parent / "pages"
TIMEOUT = 120


def run_page(name: str, visitor: str | None = None) -> AppTest:
    """Run a page; `visitor` opens it as a reloaded page of a browser whose cookie names that visitor
    (fmnist_app/visitor.py)."""
    page = AppTest.from_file(str(PAGES / name), default_timeout=TIMEOUT)
    with browser_of(visitor):
        page.run()
    assert not page.exception, [error.value for error in page.exception]
    return page


@pytest.mark.realdata
def test_the_dataset_page_rebuilds_a_damaged_array_cache_and_says_so(cache_dir):
    from tests.conftest import require_real_data

    require_real_data()
    cache_dir.mkdir()
    damaged = cache_dir / "fashion-mnist.npz"
    damaged.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    page = run_page("dataset.py")
    assert page.image, "the picture grid is drawn"
    [toast] = page.toast
    assert toast.value.startswith(f"The array cache {damaged} was damaged (") and "rebuilt" in toast.value
    assert damaged.stat().st_size > 50_000_000, "rebuilt from the .gz files"
    page.run()
    assert not page.toast, "said once per session, not on every rerun"


@pytest.fixture
def no_test_images(monkeypatch, tiny_data):
    import fmnist_app.common

    monkeypatch.setattr(fmnist_app.common, "dataset_or_stop", lambda: tiny_data)


def upload_texts(page: AppTest) -> list[str]:
    upload = next(block for block in page.tabs if "Upload" in block.label)
    return [element.value for element in (*upload.caption, *upload.error)]


def test_an_upload_error_names_the_file_it_is_about(trained_cache, no_test_images):
    page = run_page("predict.py")
    page.file_uploader[0].set_value(("notes.png", b"Buy milk.\nCall Anna.\n", "image/png")).run()
    assert not page.exception
    [error] = [element.value for element in page.error]
    assert error.startswith(r"**notes\.png** (21 bytes): This file is not an image")
    page.file_uploader[0].set_value(("trousers.png", garment_png(), "image/png")).run()
    assert not page.error
    assert any(text.startswith(r"📎 **trousers\.png** (") for text in upload_texts(page))


def test_a_hostile_file_name_is_shown_as_typed(trained_cache, no_test_images):
    page = run_page("predict.py")
    name = "[win](https://example.com) **now**.png"
    page.file_uploader[0].set_value((name, b"not a picture", "image/png")).run()
    [error] = [element.value for element in page.error]
    assert error.startswith(r"**\[win\]\(https\:\/\/example\.com\) \*\*now\*\*\.png** (13 bytes):")


def test_a_race_that_could_not_be_kept_is_refused_before_it_starts(cache_dir, monkeypatch):
    def machine_must_not_be_asked(*arguments, **options):
        raise AssertionError("the race started probing backends before the races folder was checked")

    monkeypatch.setattr("fmnist_core.race.plan.race_machine", machine_must_not_be_asked)
    monkeypatch.setattr("fmnist_core.race.runner.race_machine", machine_must_not_be_asked)
    cache_dir.mkdir()
    (cache_dir / "races").write_text("a regular file where races/ should be")
    page = run_page("race.py")
    next(button for button in page.button if button.label == "Start the race").click().run()
    assert not page.exception
    assert any("races is a file, not a folder" in error.value for error in page.error)
    from fmnist_app.common import job_manager

    assert job_manager().current() is None or not job_manager().current().running


# The Train page's outcomes belong to the visitor who asked and to the settings they ran with (issue 19.7).


@pytest.fixture
def tiny_training_data(monkeypatch, tiny_data):
    """Trainings started from the page read the tiny synthetic data; `hold` keeps them loading until released."""
    import threading

    hold = threading.Event()
    hold.set()

    def load():
        assert hold.wait(timeout=60), "the test never released the data"
        return tiny_data

    monkeypatch.setattr("fmnist_core.training.pipeline.load_fashion_mnist", load)
    yield hold
    hold.set()
    from fmnist_app.common import job_manager

    current = job_manager().current()
    if current is not None and current.running:
        job_manager().cancel(current.job_id)
        job_manager().wait(current.job_id, timeout=120)


def finish_training(page: AppTest) -> AppTest:
    from fmnist_app.common import job_manager

    current = job_manager().current()
    ended = job_manager().wait(current.job_id, timeout=300)
    assert not ended.running, ended.message
    return page.run()


def choose(page: AppTest, settings: str, **values) -> AppTest:
    page.radio[1].set_value(settings).run()
    inputs = {element.label: element for element in page.number_input}
    for label, value in values.items():
        inputs[label].set_value(value)
    page.run()
    assert not page.exception, [error.value for error in page.exception]
    return page


def said(page: AppTest) -> str:
    kinds = (page.success, page.info, page.error, page.caption)
    return "\n".join(str(element.value) for elements in kinds for element in elements)


TINY_CUSTOM = {"Epochs": 1, "Batch size": 64, "Training images (0 = all 54,000)": 256}


@pytest.mark.slow
def test_a_stopped_run_is_told_to_the_visitor_who_asked_only(cache_dir, tiny_training_data):
    page = choose(run_page("train.py"), "custom", **TINY_CUSTOM)
    tiny_training_data.clear()  # The run waits in "Loading data…" until Stop has been pressed.
    next(button for button in page.button if button.label == "Train Model 1").click().run()
    next(button for button in page.button if button.label == "Stop").click().run()
    tiny_training_data.set()
    page = finish_training(page)
    assert "Training Model 1 (custom): stopped, nothing was saved." in said(page)

    fresh = run_page("train.py")  # Another visitor (a new session with no visitor id in its address).
    assert "stopped, nothing was saved" not in said(choose(fresh, "custom", **TINY_CUSTOM))
    assert "Your last training" not in said(fresh)


@pytest.mark.slow
def test_a_finished_run_is_shown_only_beside_the_settings_it_ran_with(cache_dir, tiny_training_data):
    page = choose(run_page("train.py"), "custom", **TINY_CUSTOM)
    next(button for button in page.button if button.label == "Train Model 1").click().run()
    page = finish_training(page)
    assert "Training Model 1 (custom) finished in" in said(page)
    assert page.metric[0].label == "Test accuracy"

    choose(page, "quick")
    shown = said(page)
    assert "finished in" not in [element.value for element in page.success], "no outcome under the quick preset"
    assert not any("Training Model 1 (custom)" in element.value for element in page.success)
    # The custom settings start from the quick preset's learning rate.
    rate = format_learning_rate(PRESETS["quick"].learning_rate)
    assert f"Your last training, Model 1 with 1 epoch × 256 images, batch 64, learning rate {rate}" in shown
    assert "Choose those settings above to see it here." in shown
    assert any(button.label == "Train Model 1" for button in page.button), "the quick preset is not trained"

    choose(page, "custom", **TINY_CUSTOM)
    assert "Training Model 1 (custom) finished in" in said(page)

    # A reload: a new Streamlit session, the same visitor (the browser's cookie keeps the id). The page puts the
    # settings of their request back, so its outcome shows beside the settings it ran with.
    reloaded = run_page("train.py", visitor=page.session_state["visitor_id"])
    assert reloaded.radio[1].value == "custom"
    shown_settings = {element.label: element.value for element in reloaded.number_input}
    assert {label: shown_settings[label] for label in TINY_CUSTOM} == TINY_CUSTOM
    assert "Training Model 1 (custom) finished in" in said(reloaded)
    # Choosing other settings after that is theirs to do: the outcome is then named in one line.
    assert "Your last training, Model 1 with 1 epoch × 256 images" in said(choose(reloaded, "quick"))

    another = run_page("train.py")  # Another visitor: nothing of it.
    assert "Training Model 1 (custom)" not in said(another) and "Your last training" not in said(another)
