"""Seconds from `streamlit run` to the home page painted in a browser: what a class waits for on a fresh server.

Starts the app on a free port, points headless Debian Chromium (through Playwright) at it, and reports two
times from the moment the server process is launched: when the page is first served over HTTP, and when a
home-page text is visible (the script ran and the browser drew its output). The browser starts before the
clock, as a teacher's browser is already open.

Usage: .venv/bin/python benchmarks/first_paint.py [--repeats 3] [--text "Where to go"] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))  # Run as a file: make `tests` importable for the shared browser settings.

from devtools.browser_support import CHROMIUM, CHROMIUM_ARGS, free_port  # noqa: E402

HOME_TEXT = "Where to go"  # The home page's last section: visible only once the whole script has run.
TIMEOUT_SECONDS = 120


def start_server(
    port: int, cache_dir: str | None, app_dir: Path = PROJECT_ROOT, environment: dict | None = None
) -> subprocess.Popen:
    """`streamlit run` of the app in `app_dir` (this checkout by default) on `port`."""
    environment = dict(os.environ if environment is None else environment)
    if cache_dir:
        environment["FMNIST_CACHE_DIR"] = cache_dir
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "streamlit_app.py",
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
    ]
    return subprocess.Popen(command, cwd=app_dir, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def open_when_served(page, port: int, server: subprocess.Popen, started: float) -> float:
    """Load the home page as soon as the server answers; seconds from `started` until it did."""
    deadline = started + TIMEOUT_SECONDS
    while True:
        try:
            page.goto(f"http://127.0.0.1:{port}/", wait_until="commit", timeout=TIMEOUT_SECONDS * 1000)
            return time.perf_counter() - started
        except PlaywrightError:
            # Connection refused until the server listens; anything else that persists hits the deadline.
            if server.poll() is not None:
                raise RuntimeError(f"streamlit exited with code {server.returncode} before serving") from None
            if time.perf_counter() > deadline:
                raise
            time.sleep(0.05)


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


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
