"""A bare `streamlit run` of the app whose start a benchmark times (first_paint, fresh_clone): start it, load the
home page the moment it is served, stop it."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError

from devtools.browser_support import PROJECT_ROOT, streamlit_run

HOME_TEXT = "Where to go"  # The home page's last section: visible only once the whole script has run.
TIMEOUT_SECONDS = 120


def start_server(
    port: int, cache_dir: str | None, app_dir: Path = PROJECT_ROOT, environment: dict | None = None
) -> subprocess.Popen:
    """`streamlit run` of the app in `app_dir` (this checkout by default) on `port`."""
    environment = dict(os.environ if environment is None else environment)
    if cache_dir:
        environment["FMNIST_CACHE_DIR"] = cache_dir
    command = streamlit_run(port, "--browser.gatherUsageStats", "false")
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
