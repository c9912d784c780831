"""Helpers for tests and scripts that drive the real app: a `streamlit run` server and Debian's Chromium.

The server is a subprocess on a free localhost port with its own FMNIST_CACHE_DIR; Chromium is Debian's
(/usr/bin/chromium), because `playwright install` cannot download browsers on the machines this runs on.
Nothing here imports pytest: scripts/screenshots.py uses the same helpers.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = PROJECT_ROOT / "artifacts"  # Screenshots and server logs of test runs (git-ignored).
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_MISSING = f"{CHROMIUM} is missing: apt-get install chromium chromium-driver"
# No sandbox (CI runs as root), no GPU, and nothing Chromium would fetch from the internet on its own.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 1000}  # The README screenshots' size; the tests look at the same layout.
SERVER_START_SECONDS = 60  # A cold start imports Streamlit, pandas and Altair on a 2-core machine.
PAGE_RUN_SECONDS = 90  # The first Predict or Train page loads TensorFlow and the dataset.
APP_IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
STATUS_WIDGET = '[data-testid="stStatusWidget"]'
EXCEPTION = '[data-testid="stException"]'
PROGRESS_BAR = '[data-testid="stProgress"]'
THREAD_DUMP_SIGNAL = signal.SIGUSR1

# A T-shirt in one pen stroke (fractions of the canvas): the outline, then zig-zags filling the body. Garments
# in Fashion-MNIST are solid; a bare outline looks like a bag to the models.
TSHIRT_STROKE = [
    (0.3, 0.2),
    (0.1, 0.35),
    (0.2, 0.45),
    (0.3, 0.4),
    (0.3, 0.85),
    (0.7, 0.85),
    (0.7, 0.4),
    (0.8, 0.45),
    (0.9, 0.35),
    (0.7, 0.2),
    (0.3, 0.2),
] + [
    point
    for row, height in enumerate(0.25 + 0.06 * step for step in range(11))
    for point in (((0.32, height), (0.68, height)) if row % 2 == 0 else ((0.68, height), (0.32, height)))
]
# URL path (as the router names it) → part of that page's heading; headings also carry an emoji.
PAGE_PATHS = {
    "": "Fashion-MNIST CNN Explorer",
    "dataset": "The dataset",
    "train": "Train a model",
    "evaluate": "Evaluate",
    "compare": "Compare",
    "inside": "Inside the model",
    "race": "GPU vs CPU race",
    "predict": "Predict a sketch",
    "fool": "Fool the model",
}


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class StreamlitServer:
    """A running `streamlit run streamlit_app.py` and where its output goes."""

    process: subprocess.Popen
    port: int
    cache_dir: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def dump_threads(self) -> None:
        """Write every server thread's Python stack into its log (a server started with `thread_dumps=True`):
        what a page that stopped answering is waiting for."""
        if self.alive():
            os.kill(self.process.pid, THREAD_DUMP_SIGNAL)

    def kill(self) -> None:
        """SIGKILL the server: no shutdown handler runs, as when a machine loses power."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """Stop the server and anything it started (a training job's thread dies with it)."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def streamlit_command(trace: bool = False, thread_dumps: bool = False) -> list[str]:
    """The arguments after `python` that start `streamlit run`: plainly, or with each rerun, script run and dropped
    message traced on stderr (devtools/server_trace.py), and/or every thread's stack written to stderr when the
    process gets THREAD_DUMP_SIGNAL."""
    if not (trace or thread_dumps):
        return ["-m", "streamlit"]
    code = "import sys; "
    if thread_dumps:
        code += (
            f"import faulthandler, signal; faulthandler.register(signal.{THREAD_DUMP_SIGNAL.name}, all_threads=True); "
        )
    if trace:
        code += "import devtools.server_trace; "
    return ["-c", code + "from streamlit.web.cli import main; sys.argv[0] = 'streamlit'; sys.exit(main())"]


def streamlit_run(port: int, *options: str, trace: bool = False, thread_dumps: bool = False) -> list[str]:
    """The command line that serves this folder's streamlit_app.py headless on `port`, with more `options`."""
    return [
        sys.executable,
        *streamlit_command(trace, thread_dumps),
        "run",
        "streamlit_app.py",
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        *options,
    ]


def start_server(
    cache_dir: Path,
    log_path: Path,
    *,
    address: str | None = "127.0.0.1",
    environment: dict[str, str] | None = None,
    thread_dumps: bool = False,
    trace: bool = False,
    app_dir: Path = PROJECT_ROOT,
) -> StreamlitServer:
    """Start the app on a free port with `cache_dir` as its model cache and wait until it answers.

    address: the interface to listen on; None leaves it to .streamlit/config.toml and STREAMLIT_SERVER_ADDRESS.
    environment: variables added to this process's (FMNIST_CLASSROOM=1, for example).
    thread_dumps: let `server.dump_threads()` write every thread's stack into the log (on a loaded server, a dump
    once stopped the process midway: for a diagnosis, not for figures).
    trace: write each rerun asked for, each script run and each message Streamlit drops into the log.
    app_dir: the checkout whose streamlit_app.py is served (benchmarks/classroom_load.py --app-dir: an earlier
    commit's app, measured on the same machine).
    The server gets its own process group, so `stop` and `kill` reach every process it starts.
    """
    port = free_port()
    environment = {
        **os.environ,
        **(environment or {}),
        "FMNIST_CACHE_DIR": str(cache_dir),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    where = ["--server.address", address] if address else []
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            streamlit_run(port, *where, trace=trace, thread_dumps=thread_dumps),
            cwd=app_dir,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = StreamlitServer(process, port, Path(cache_dir), log_path)
    try:
        wait_healthy(server)
    except BaseException:
        server.stop()
        raise
    return server


def wait_healthy(server: StreamlitServer, timeout: float = SERVER_START_SECONDS) -> None:
    """Block until /_stcore/health answers "ok"; RuntimeError with the server log if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"streamlit exited with {server.process.returncode}:\n{server.log()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as response:
                if response.status == 200 and response.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(
        f"streamlit did not answer on port {server.port} within {timeout:.0f} s:\n{server.log()[-3000:]}"
    )


@contextmanager
def chromium() -> Iterator:
    """Debian's Chromium through Playwright, closed afterwards; RuntimeError naming the package if it is missing."""
    if not CHROMIUM.is_file():
        raise RuntimeError(CHROMIUM_MISSING)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def open_page(page, server: StreamlitServer, path: str = "") -> None:
    """Load one of the app's URL paths ("" is Home) and wait until its script has run."""
    page.goto(f"{server.url}/{path}")
    wait_for_title(page, path)


def wait_for_title(page, path: str, timeout: float = PAGE_RUN_SECONDS) -> None:
    """Wait until the page at `path` shows its own title, then until its script has finished.

    The title is each page's first element, so seeing it means the server has started the page's run:
    before that, a freshly connected app also reports "not running".
    """
    page.locator("h1", has_text=PAGE_PATHS[path]).first.wait_for(timeout=timeout * 1000)
    wait_for_app(page, timeout)


def wait_for_app(page, timeout: float = PAGE_RUN_SECONDS) -> None:
    """Wait until Streamlit has finished running the script for what the page shows now.

    "Finished" means the app root reports it is not running and the "Running…" status widget is gone,
    three times in a row half a second apart: a click's rerun starts a moment after the click.
    """
    deadline = time.monotonic() + timeout
    calm = 0
    while calm < 3:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{page.url} still running after {timeout:.0f} s")
        idle = page.locator(APP_IDLE).count() == 1 and page.locator(STATUS_WIDGET).count() == 0
        calm = calm + 1 if idle else 0
        page.wait_for_timeout(500)


def exception_texts(page) -> list[str]:
    """The text of every Streamlit exception box on the page (empty when nothing crashed)."""
    return [box.inner_text() for box in page.locator(EXCEPTION).all()]


def assert_no_exception(page) -> None:
    """Fail with the traceback text when the page shows a Streamlit exception box."""
    errors = exception_texts(page)
    assert not errors, f"exception shown on {page.url}:\n" + "\n---\n".join(errors)


def start_custom_training(page, server, settings: dict[str, str]) -> None:
    """On the Train page, start Model 1 with custom settings (field label → value); wait for its progress bar."""
    ask_for_custom_training(page, server, settings)
    page.get_by_text("Training Model 1 (custom)").first.wait_for(timeout=PAGE_RUN_SECONDS * 1000)
    page.locator(PROGRESS_BAR).first.wait_for(timeout=PAGE_RUN_SECONDS * 1000)


def ask_for_custom_training(page, server, settings: dict[str, str]) -> None:
    """On the Train page, fill in custom settings (field label → value) and press Train Model 1."""
    open_page(page, server, "train")
    page.get_by_text("Custom settings").click()
    wait_for_app(page)
    for label, value in settings.items():
        field = page.get_by_label(label)
        field.fill(value)
        field.press("Enter")
        wait_for_app(page)
    assert {label: page.get_by_label(label).input_value() for label in settings} == settings
    page.get_by_role("button", name="Train Model 1").click()


def draw_stroke(page, points: list[tuple[float, float]]) -> None:
    """Draw one pen stroke through `points` (0–1 fractions of the canvas) on the Predict page's drawing canvas.

    streamlit-drawable-canvas 0.13 is a components-v2 element drawn in the page itself, not in an iframe; it
    stacks Fabric.js canvases, and the top one ("upper-canvas") receives the mouse.
    """
    canvas = page.locator("canvas.upper-canvas").first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    pixels = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in points]
    page.mouse.move(*pixels[0])
    page.mouse.down()
    for point in pixels[1:]:
        page.mouse.move(*point, steps=4)
    page.mouse.up()


def full_page_screenshot(page, path: Path) -> Path:
    """Screenshot the whole page, not just the viewport.

    Streamlit scrolls inside its main section rather than the document, so Playwright's full_page option
    only sees one screen: the viewport is stretched to the content's height for the shot, then restored.
    """
    viewport = page.viewport_size
    height = page.evaluate("""() => {
        const main = document.querySelector('[data-testid="stMain"]') || document.scrollingElement;
        return Math.max(main.scrollHeight, document.scrollingElement.scrollHeight);
    }""")
    path.parent.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": viewport["width"], "height": max(int(height), viewport["height"])})
    try:
        page.wait_for_timeout(300)  # Charts redraw for the new size.
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(viewport)
    return path
