"""Who a browser is, in Chromium: a cookie, never the address (fmnist_app/visitor.py).

A classroom-mode server (only a training's owner may stop it or withdraw it) and three browser contexts, each a
separate browser as far as cookies go: the owner of a running training, the owner of a queued request, and a
stranger who opens their exact addresses, old `?visitor=` form included.
"""

from __future__ import annotations

import re
import shutil

import pytest

from devtools.browser_support import (
    ARTIFACTS,
    VIEWPORT,
    ask_for_custom_training,
    assert_no_exception,
    chromium,
    start_custom_training,
    start_server,
    wait_for_app,
    wait_for_title,
)
from fmnist_app.visitor import COOKIE_NAME
from tests.conftest import require_real_data
from tests.test_browser import LONGER_RUN, QUEUED_RUN, STEP_MILLISECONDS, TRAINING_SECONDS, queue_place

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def classroom_server(trained_cache_dir, tmp_path_factory):
    require_real_data()
    cache = tmp_path_factory.mktemp("identity") / "cache"
    shutil.copytree(trained_cache_dir, cache)
    running = start_server(cache, ARTIFACTS / "identity-server.log", environment={"FMNIST_CLASSROOM": "1"})
    yield running
    running.stop()


def visitor_cookie(page) -> str:
    [value] = [cookie["value"] for cookie in page.context.cookies() if cookie["name"] == COOKIE_NAME]
    return value


def open_address(page, address: str) -> None:
    page.goto(address)
    wait_for_title(page, "train")


def stop_button(page):
    return page.get_by_role("button", name="Stop", exact=True)


def cancel_button(page):
    return page.get_by_role("button", name="Cancel my request")


def test_an_address_grants_nothing_and_a_reload_keeps_the_visitor(classroom_server):
    server = classroom_server
    with chromium() as browser:
        owner, queued, stranger = (browser.new_context(viewport=VIEWPORT).new_page() for _ in range(3))
        start_custom_training(owner, server, LONGER_RUN)
        stop_button(owner).wait_for(timeout=STEP_MILLISECONDS)
        ask_for_custom_training(queued, server, QUEUED_RUN)
        queue_place(queued, 1).wait_for(timeout=STEP_MILLISECONDS)
        cancel_button(queued).wait_for(timeout=STEP_MILLISECONDS)
        owner_id = visitor_cookie(owner)
        assert re.fullmatch(r"[0-9a-f]{32}", owner_id) and visitor_cookie(queued) != owner_id
        assert "visitor" not in owner.url and "visitor" not in queued.url, "the address names only the view"

        # The stranger opens each exact address, and the old form that named the owner: it sees the machine busy,
        # and may neither stop the run nor withdraw the request.
        for address in (owner.url, queued.url, f"{server.url}/train?visitor={owner_id}"):
            open_address(stranger, address)
            stranger.get_by_text("Training Model 1 (custom)").first.wait_for(timeout=STEP_MILLISECONDS)
            wait_for_app(stranger)
            assert stop_button(stranger).count() == 0 and cancel_button(stranger).count() == 0
            assert queue_place(stranger, 1).count() == 0, "the queued request is not the stranger's"
            assert "visitor" not in stranger.url, "an old ?visitor= leaves the address"
            assert visitor_cookie(stranger) not in (owner_id, visitor_cookie(queued))
            assert_no_exception(stranger)

        # Reloads keep each owner: the request is still theirs to withdraw, the run theirs to stop.
        queued.reload()
        wait_for_title(queued, "train")
        queue_place(queued, 1).wait_for(timeout=STEP_MILLISECONDS)
        cancel_button(queued).click()
        queued.get_by_text("You cancelled Training Model 1 (custom) before it started.").wait_for(
            timeout=STEP_MILLISECONDS
        )
        owner.reload()
        wait_for_title(owner, "train")
        stop_button(owner).click()
        stopped = "Training Model 1 (custom): stopped, nothing was saved."
        owner.get_by_text(stopped).wait_for(timeout=TRAINING_SECONDS * 1000)
        assert visitor_cookie(owner) == owner_id
        assert_no_exception(owner)

        # The outcome is the owner's: the stranger, at the same address, is not told how the run ended.
        open_address(stranger, owner.url)
        stranger.get_by_role("button", name="Train Model 1").wait_for(timeout=STEP_MILLISECONDS)
        assert stranger.get_by_text(stopped).count() == 0
        assert stranger.get_by_text(re.compile("You cancelled")).count() == 0
