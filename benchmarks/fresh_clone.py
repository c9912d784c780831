"""A fresh clone's first minute: seconds to the home page, then to the first prediction with the shipped models.

Clones this repository's committed HEAD (shipped models included) into a temporary folder and starts the app from
the clone with the existing virtualenv and an empty cache of a new user, as a teacher's first `make run` would;
headless Debian Chromium (through Playwright) then times, with a fresh server and user cache each run:

- first paint: from launching `streamlit run` until the home page is drawn ("Where to go" visible);
- first prediction: from opening the Predict page until the first model's answer to a drawn T-shirt is visible
  (importing TensorFlow, loading the shipped models and predicting; drawing the stroke is inside the time).

The browser starts before the clocks, as a teacher's browser is already open.

Usage: .venv/bin/python benchmarks/fresh_clone.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from devtools.browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    TSHIRT_STROKE,
    VIEWPORT,
    draw_stroke,
    free_port,
)
from devtools.timed_server import HOME_TEXT, TIMEOUT_SECONDS, open_when_served, start_server, stop_server
from fmnist_core.paths import SHIPPED_MODELS_FOLDER
from fmnist_core.store.cache import ENTRY_PATTERN

PROJECT_ROOT = Path(__file__).resolve().parent.parent

ANSWER = re.compile(r"Model \d says \S+")  # The Predict page's first answer to a sketch.


def clone(destination: Path) -> str:
    """`git clone` of this repository's HEAD into `destination`; returns the commit it checked out."""
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(PROJECT_ROOT), str(destination)], check=True)
    commit = subprocess.run(
        ["git", "-C", str(destination), "log", "-1", "--format=%h %s"], check=True, capture_output=True, text=True
    )
    return commit.stdout.strip()


def shipped_models(app_dir: Path) -> list[str]:
    folder = app_dir / SHIPPED_MODELS_FOLDER
    return sorted(path.name for path in folder.iterdir() if path.is_dir() and ENTRY_PATTERN.match(path.name))


def measure_once(browser, app_dir: Path, user_cache: Path) -> tuple[float, float]:
    """(seconds from launch to the home page drawn, seconds from opening Predict to the first answer)."""
    # A new user: their own empty cache, the clone's shipped models, nothing of this checkout on the import path.
    environment = {key: value for key, value in os.environ.items() if key not in ("FMNIST_SHIPPED_DIR", "PYTHONPATH")}
    port = free_port()
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(TIMEOUT_SECONDS * 1000)
    started = time.perf_counter()
    server = start_server(port, str(user_cache), app_dir=app_dir, environment=environment)
    try:
        open_when_served(page, port, server, started)
        page.get_by_text(HOME_TEXT, exact=True).first.wait_for(state="visible")
        painted = time.perf_counter() - started

        opened = time.perf_counter()
        page.goto(f"http://127.0.0.1:{port}/predict")
        page.get_by_role("tab", name="Draw").click()
        draw_stroke(page, TSHIRT_STROKE)
        page.get_by_role("tabpanel").filter(visible=True).get_by_text(ANSWER).first.wait_for(state="visible")
        answered = time.perf_counter() - opened
    finally:
        page.close()
        stop_server(server)
    return painted, answered


def summary(name: str, values: list[float]) -> str:
    return (
        f"{name}: {statistics.median(values):.2f} s (median of {len(values)}; "
        f"min {min(values):.2f} s, max {max(values):.2f} s)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="fresh servers (and user caches) to time (default 3)")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fmnist-fresh-clone-") as folder:
        app_dir = Path(folder) / "clone"
        cloned = time.perf_counter()
        commit = clone(app_dir)
        print(f"cloned {commit} in {time.perf_counter() - cloned:.2f} s into {app_dir}")
        shipped = shipped_models(app_dir)
        if not shipped:
            print(
                f"error: the clone ships no model in {SHIPPED_MODELS_FOLDER}/: nothing to predict with. Install "
                "them (make models) and commit them first.",
                file=sys.stderr,
            )
            return 1
        print(f"shipped models: {', '.join(shipped)}")
        paints, answers = [], []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for attempt in range(1, arguments.repeats + 1):
                    painted, answered = measure_once(browser, app_dir, Path(folder) / f"user-cache-{attempt}")
                    paints.append(painted)
                    answers.append(answered)
                    print(
                        f"run {attempt}: home page drawn after {painted:.2f} s, first prediction after {answered:.2f} s"
                    )
            finally:
                browser.close()
    print(summary("first paint (launch to home page)", paints))
    print(summary("first prediction (open Predict, draw, answer)", answers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
