"""Seconds from `streamlit run` to the home page painted in a browser: what a class waits for on a fresh server.

Starts the app on a free port, points headless Debian Chromium (through Playwright) at it, and reports two
times from the moment the server process is launched: when the page is first served over HTTP, and when a
home-page text is visible (the script ran and the browser drew its output). The browser starts before the
clock, as a teacher's browser is already open.

Usage: .venv/bin/python benchmarks/first_paint.py [--repeats 3] [--text "Where to go"] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from devtools.browser_support import CHROMIUM, CHROMIUM_ARGS, free_port
from devtools.timed_server import HOME_TEXT, TIMEOUT_SECONDS, open_when_served, start_server, stop_server

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def measure_once(browser, text: str, cache_dir: str | None) -> tuple[float, float]:
    """(seconds until the page is served, seconds until `text` is visible), both from the server's launch."""
    port = free_port()
    page = browser.new_page()
    started = time.perf_counter()
    server = start_server(port, cache_dir)
    try:
        served = open_when_served(page, port, server, started)
        page.get_by_text(text, exact=True).first.wait_for(state="visible", timeout=TIMEOUT_SECONDS * 1000)
        painted = time.perf_counter() - started
    finally:
        page.close()
        stop_server(server)
    return served, painted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="fresh server starts to time (default 3)")
    parser.add_argument("--text", default=HOME_TEXT, help=f"home-page text to wait for (default {HOME_TEXT!r})")
    parser.add_argument("--cache-dir", help="FMNIST_CACHE_DIR for the server (default: the app's own cache)")
    arguments = parser.parse_args()
    paints = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for attempt in range(1, arguments.repeats + 1):
                served, painted = measure_once(browser, arguments.text, arguments.cache_dir)
                paints.append(painted)
                print(f"run {attempt}: served after {served:.2f} s, home page rendered after {painted:.2f} s")
        finally:
            browser.close()
    print(
        f"first paint: {statistics.median(paints):.2f} s (median of {len(paints)}; "
        f"min {min(paints):.2f} s, max {max(paints):.2f} s)"
    )


if __name__ == "__main__":
    main()
