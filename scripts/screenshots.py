"""Regenerate the README screenshots: every page of the app, full length, into docs/screenshots/<page>.png.

    .venv/bin/python scripts/screenshots.py [--cache DIR] [--out docs/screenshots]

Starts `streamlit run` on a free port over the models shipped in cached_models/ and the user cache DIR (default: a
new empty one, so the pages show what a fresh clone shows), and drives Debian's
Chromium (apt-get install chromium chromium-driver; and fonts-noto-color-emoji, without which the page icons show as
boxes). On Predict a T-shirt is drawn, so the shot shows a
prediction; Evaluate shows the confusion matrix of the newest model. With no trained model, those two pages
show their "train one first" state: train one first with `python -m fmnist_core train --model model1`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from devtools.browser_support import (
    ARTIFACTS,
    PAGE_PATHS,
    TSHIRT_STROKE,
    VIEWPORT,
    chromium,
    draw_stroke,
    exception_texts,
    full_page_screenshot,
    open_page,
    start_server,
    wait_for_app,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent

CHART_DRAW_MILLISECONDS = 1500  # Vega charts finish drawing after Streamlit reports the run finished.


def show_prediction(page) -> None:
    """Predict: draw a T-shirt on the canvas and wait for the models' answer (or the preparation alone)."""
    page.get_by_role("tab", name="Draw").click()
    draw_stroke(page, TSHIRT_STROKE)
    page.get_by_text("What the models see (28 × 28, enlarged)").wait_for(timeout=60_000)
    wait_for_app(page)


PREPARATIONS = {"predict": show_prediction}


def shoot_every_page(cache: Path, out: Path) -> list[Path]:
    """Serve the app over `cache` and save one full-page PNG per page into `out`; returns the files."""
    server = start_server(cache, ARTIFACTS / "screenshots-server.log")
    saved = []
    try:
        with chromium() as browser:
            page = browser.new_page(viewport=VIEWPORT)
            for path in PAGE_PATHS:
                name = path or "home"
                open_page(page, server, path)
                if name in PREPARATIONS:
                    PREPARATIONS[name](page)
                page.wait_for_timeout(CHART_DRAW_MILLISECONDS)
                errors = exception_texts(page)
                if errors:
                    raise RuntimeError(f"the {name} page shows an exception:\n" + "\n".join(errors))
                saved.append(full_page_screenshot(page, out / f"{name}.png"))
                print(saved[-1])
    finally:
        server.stop()
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cache",
        type=Path,
        help="the user's own model cache the app shows besides the shipped models (default: a new empty one)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=PROJECT_ROOT / "docs" / "screenshots",
        help="folder for the PNG files (default: docs/screenshots/)",
    )
    arguments = parser.parse_args(argv)
    try:
        cache = arguments.cache or Path(tempfile.mkdtemp(prefix="fmnist-screenshots-"))
        shoot_every_page(cache.resolve(), arguments.out.resolve())
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
