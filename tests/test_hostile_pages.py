"""Hostile input on the pages (issue 19), through AppTest: a damaged array cache on the Dataset page, uploads whose
answer or error names the file it is about, a race that cannot be kept refused before it starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.test_predict import garment_png

PAGES = Path(__file__).resolve().parent.parent / "pages"
TIMEOUT = 120


def run_page(name: str) -> AppTest:
    page = AppTest.from_file(str(PAGES / name), default_timeout=TIMEOUT).run()
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
    import pages.common

    monkeypatch.setattr(pages.common, "dataset_or_stop", lambda: tiny_data)


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
    import streamlit

    from tests.race_support import NO_GPU_MACHINE

    # The page's machine facts without starting a backend process (as in test_race.py): no GPU anywhere.
    facts = lambda backends: dict(NO_GPU_MACHINE, backends={name: {"version": "test", "gpus": []} for name in backends})
    monkeypatch.setattr("fmnist_core.race_plan.race_machine", facts)
    streamlit.cache_data.clear()
    cache_dir.mkdir()
    (cache_dir / "races").write_text("a regular file where races/ should be")
    page = run_page("race.py")
    next(button for button in page.button if button.label == "Start the race").click().run()
    assert not page.exception
    assert any("races is a file, not a folder" in error.value for error in page.error)
    from pages.common import job_manager

    assert job_manager().current() is None or not job_manager().current().running
