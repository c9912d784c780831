"""Faults: killed and simultaneous training processes, a damaged dataset, a server killed mid-training, and
several sessions at once. Nothing crashes, nothing half-written is kept, and only one heavy job runs at a time.

Save-level kills and simultaneous saves are in test_cache.py (tests/cache_worker.py); these tests go through
the real entry points instead: the CLI, `streamlit run` in a browser, and the pages under AppTest.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from devtools.browser_support import (
    ARTIFACTS,
    PROJECT_ROOT,
    VIEWPORT,
    assert_no_exception,
    chromium,
    full_page_screenshot,
    open_page,
    start_custom_training,
    start_server,
)
from fmnist_app.visitor import COOKIE_NAME
from fmnist_core.config import PRESETS
from fmnist_core.data.fashion_mnist import FILES
from fmnist_core.training.loop import TrainingCancelled
from tests.conftest import require_real_data
from tests.test_cli import run_cli

PAGES = PROJECT_ROOT / "pages"
SMALL_TRAINING = ("train", "--model", "model1", "--epochs", "1", "--train-limit", "512", "--json")
# Long enough (30 epochs of about 80 batches) that a kill always lands mid-training, never after the save, even
# on a GPU that trains an epoch in a second; the test kills it within seconds, so the length costs nothing here.
LONG_TRAINING = {"Epochs": "30", "Training images (0 = all 54,000)": "20000"}
PAGE_TIMEOUT = 60


def cli_process(*arguments: str) -> subprocess.Popen:
    """The CLI in its own process, as a user starts it (FMNIST_CACHE_DIR comes from the environment)."""
    return subprocess.Popen(
        [sys.executable, "-m", "fmnist_core", *arguments],
        cwd=PROJECT_ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def listed_entries() -> list[dict]:
    """`cache list --json` run in a fresh process (which also removes dead processes' temporary folders)."""
    result = run_cli("cache", "list", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def leftovers(cache: Path) -> list[str]:
    """Temporary folders and half entries: anything in the cache that is not a finished entry or bookkeeping."""
    return sorted(
        path.name
        for path in cache.iterdir()
        if path.name.startswith(".tmp-") or (path.name.startswith("model") and not (path / "meta.json").is_file())
    )


# Training processes ---------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.realdata
def test_two_processes_training_the_same_model_leave_one_valid_entry(cache_dir):
    require_real_data()
    trainers = [cli_process(*SMALL_TRAINING) for _ in range(2)]
    outputs = [trainer.communicate(timeout=600) for trainer in trainers]
    assert [trainer.returncode for trainer in trainers] == [0, 0], [error[-2000:] for _, error in outputs]
    entry_ids = {json.loads(output)["entry_id"] for output, _ in outputs}
    assert len(entry_ids) == 1, "both processes answer with the same entry"
    assert [(entry["entry_id"], entry["ok"]) for entry in listed_entries()] == [(entry_ids.pop(), True)]
    assert leftovers(cache_dir) == []


@pytest.mark.slow
@pytest.mark.realdata
def test_a_training_process_killed_mid_training_leaves_no_entry(cache_dir):
    require_real_data()
    # 30 epochs: still training two seconds in on any machine (a GPU trains an epoch of these in about a second).
    trainer = cli_process("train", "--model", "model1", "--epochs", "30", "--train-limit", "20000")
    try:
        # Without --json the CLI announces the run when its first batch is about to start.
        for line in trainer.stderr:
            if line.startswith("Training Model 1"):
                break
        else:
            pytest.fail(f"training never started (exit code {trainer.wait()})")
        time.sleep(2)
        assert trainer.poll() is None, "still training when killed"
    finally:
        trainer.send_signal(signal.SIGKILL)
        trainer.wait(timeout=30)
        trainer.stderr.close()
        trainer.stdout.close()
    assert listed_entries() == []
    assert leftovers(cache_dir) == []


# A damaged dataset -----------------------------------------------------------------------------------------


@pytest.fixture(params=["truncated", "swapped"])
def damaged_data(request, tmp_path, monkeypatch) -> Path:
    """A copy of Fashion-MNIST with one file cut in half or replaced by another; returns the damaged file."""
    source, folder = require_real_data(), tmp_path / "fashion-mnist"
    folder.mkdir()
    for spec in FILES.values():
        shutil.copy(source / spec.filename, folder / spec.filename)
    if request.param == "truncated":
        damaged = folder / FILES["train_images"].filename
        damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    else:
        damaged = folder / FILES["test_labels"].filename
        shutil.copy(source / FILES["train_labels"].filename, damaged)
    monkeypatch.setenv("FMNIST_DATA_DIR", str(folder))
    return damaged


@pytest.mark.realdata
def test_a_damaged_dataset_file_is_named_with_the_fix(damaged_data, cache_dir):
    result = run_cli("data")
    assert result.returncode == 3, result.stderr
    assert str(damaged_data) in result.stderr
    assert "apt-get install --reinstall -y dataset-fashion-mnist" in result.stderr
    assert "FMNIST_DATA_DIR" in result.stderr
    assert "Traceback" not in result.stderr

    app = AppTest.from_file(str(PAGES / "dataset.py"), default_timeout=PAGE_TIMEOUT).run()
    assert not app.exception, [error.value for error in app.exception]
    assert "Fashion-MNIST is not available" in app.error[0].value
    assert str(damaged_data) in app.code[0].value


# The server killed mid-training ----------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.realdata
def test_the_app_survives_its_server_being_killed_mid_training(cache_dir):
    require_real_data()
    cache_dir.mkdir()
    killed = start_server(cache_dir, ARTIFACTS / "faults-killed-server.log")
    marker = cache_dir / ".jobs" / f"active-jobs-{killed.process.pid}.json"
    try:
        with chromium() as browser:
            page = browser.new_page(viewport=VIEWPORT)
            start_custom_training(page, killed, LONG_TRAINING)
            page.get_by_text(re.compile(r"Epoch 1/30 · batch [1-9]")).wait_for(timeout=300_000)
            assert [job["title"] for job in json.loads(marker.read_text())["jobs"]] == ["Training Model 1 (custom)"]
            killed.kill()
            # What a kill during saving leaves behind: a temporary folder owned by the dead server.
            half_saved = cache_dir / f".tmp-model1-0123456789ab-{killed.process.pid}-k1ll3d"
            half_saved.mkdir()
            (half_saved / "model.keras").write_bytes(b"half-written")

            restarted = start_server(cache_dir, ARTIFACTS / "faults-restarted-server.log")
            try:
                open_page(page, restarted)
                notice = page.get_by_text("The last run (Training Model 1 (custom)) did not finish")
                notice.wait_for(timeout=PAGE_TIMEOUT * 1000)
                assert_no_exception(page)
                full_page_screenshot(page, ARTIFACTS / "screenshots" / "faults-restarted-home.png")
                assert not half_saved.exists(), "the home page's model list cleans up dead temporary folders"
            finally:
                restarted.stop()
    finally:
        killed.stop()
    assert not marker.exists()
    assert listed_entries() == []
    assert leftovers(cache_dir) == []


@pytest.mark.slow
def test_a_server_started_for_thread_dumps_writes_every_threads_stack_into_its_log(cache_dir):
    """What benchmarks/classroom_load.py --shots keeps when a page stops answering: where each thread waits."""
    cache_dir.mkdir()
    server = start_server(cache_dir, ARTIFACTS / "faults-thread-dump-server.log", thread_dumps=True)

    def complete(dump: str) -> bool:
        # The event loop's thread and at least one more; the dump is written a thread at a time, so wait for it.
        return dump.count("(most recent call first)") >= 2 and "asyncio" in dump

    try:
        assert "most recent call first" not in server.log()
        server.dump_threads()
        deadline = time.monotonic() + PAGE_TIMEOUT
        while not complete(server.log()) and time.monotonic() < deadline:
            time.sleep(0.2)
        dump = server.log()
        assert server.alive(), "the signal dumps the stacks; it does not stop the server"
    finally:
        server.stop()
    assert complete(dump), dump[-3000:]


@pytest.mark.browser
@pytest.mark.slow
def test_a_traced_server_logs_each_rerun_a_browser_asks_for_with_its_visitor_and_each_script_run(cache_dir):
    """What benchmarks/classroom_load.py --shots keeps in the server log (devtools/server_trace.py): the lines that
    showed a finished page run being dropped for a fragment rerun, and that fmnist_app/streamlit_fixes.py holds back;
    and the THREADS lines that showed the page's own files going unanswered."""
    cache_dir.mkdir()
    server = start_server(cache_dir, ARTIFACTS / "faults-traced-server.log", trace=True)
    try:
        with chromium() as browser:
            page = browser.new_page(viewport=VIEWPORT)
            open_page(page, server, "train")
            [visitor] = [cookie["value"][:8] for cookie in page.context.cookies() if cookie["name"] == COOKIE_NAME]
            page.get_by_text("Full preset", exact=True).click()
            page.get_by_text(re.compile(rf"^{PRESETS['full'].epochs} epochs × all training images")).first.wait_for(
                timeout=PAGE_TIMEOUT * 1000
            )
        log = server.log()
    finally:
        server.stop()
    asked = re.findall(rf"TRACE \S+ \w+ rerun-asked visitor={visitor} run=full timer=False settings='([^']+)'", log)
    assert asked and asked[-1] == "Full preset", log[-3000:]
    assert re.search(r"TRACE \S+ \w+ SCRIPT_STOPPED_WITH_SUCCESS runner=r\d+", log), log[-3000:]
    assert re.search(r"^THREADS \S+ \d+ threads: .*MainThread @ .* \| static files unanswered", log, re.M), log[-3000:]


# Several sessions, through AppTest ----------------------------------------------------------------------------


def training_until_stopped(spec, config, *, progress=None, should_stop, cache=None, **unused):
    """Stands in for the app's training engine: a run that lasts until someone presses Stop, then saves nothing."""
    while not should_stop():
        time.sleep(0.02)
    raise TrainingCancelled("Training was stopped; nothing was saved.")


def page(name: str) -> AppTest:
    app = AppTest.from_file(str(PAGES / name), default_timeout=PAGE_TIMEOUT).run()
    assert not app.exception, [error.value for error in app.exception]
    return app


def click(app: AppTest, label_start: str) -> AppTest:
    button = next((button for button in app.button if button.label.startswith(label_start)), None)
    assert button is not None, f"no {label_start!r} button in {[button.label for button in app.button]}"
    button.click().run()
    assert not app.exception, [error.value for error in app.exception]
    return app


def messages(app: AppTest) -> list[str]:
    return [
        element.value for kind in ("info", "error", "warning", "success", "markdown") for element in getattr(app, kind)
    ]


def test_sessions_share_one_training_queue_and_nobody_starts_a_second_job(cache_dir, tiny_data, monkeypatch):
    import fmnist_app.common

    monkeypatch.setattr("fmnist_app.visitor.training_engine", lambda: training_until_stopped)
    monkeypatch.setattr(fmnist_app.common, "dataset_or_stop", lambda: tiny_data)
    manager = fmnist_app.common.job_manager()
    racer = page("race.py")  # Opened while the machine is idle: its Start button is live.
    trainer = click(page("train.py"), "Train Model 1")  # The Train page's default: the class demo.
    try:
        assert manager.busy() and manager.current().title == "Training Model 1 (class)"

        # Predict offers quick training while no model exists; pressing it now queues behind the running job.
        predictor = click(page("predict.py"), "Train Model 1 now")
        assert any(
            text.startswith("**Training Model 1 (quick)** is number 1 in the queue") for text in messages(predictor)
        )
        assert [status.title for status in manager.running()] == ["Training Model 1 (class)"], "still one at a time"

        click(racer, "Start the race")
        assert any("Training Model 1 (class) is running, and only one heavy job" in text for text in messages(racer))
        assert manager.latest("race") is None

        watcher = page("train.py")
        assert any(bar.proto.text.startswith("**Training Model 1 (class)** —") for bar in watcher.get("progress"))
        assert any("1 training request waiting" in caption for caption in watcher.caption.values)
        assert [status.title for status in manager.running()] == ["Training Model 1 (class)"]
    finally:
        for waiting in manager.queue():
            manager.cancel(waiting.job_id)
        manager.cancel()
        manager.wait(manager.current().job_id, timeout=30)
    trainer.run()
    assert any("stopped, nothing was saved" in text for text in messages(trainer))
    assert list(cache_dir.glob("model*")) == []


TRAINING_MODULES = ("fmnist_core.training.loop", "fmnist_core.training.pipeline")
IN_PROCESS_TRAINING = ("train", "train_and_cache", "train_record")


def test_the_server_process_never_trains():
    """Every training the app starts goes to the Dask engine (fmnist_core/engine), so Streamlit's clean-up after each
    run (keras.backend.clear_session, which broke a training thread in the server) has nothing left to break and
    is no longer patched out. Read from the source: the app's one call that queues a training passes the engine,
    and no page or app module imports the code that trains in-process."""
    import ast

    root = Path(__file__).resolve().parent.parent
    calls, in_process = [], []
    for path in [*sorted((root / "pages").glob("*.py")), *sorted((root / "fmnist_app").glob("*.py"))]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "start_training_job":
                calls.append({keyword.arg: ast.unparse(keyword.value) for keyword in node.keywords})
            if isinstance(node, ast.ImportFrom) and node.module in (
                "fmnist_core.training.loop",
                "fmnist_core.training.pipeline",
            ):
                in_process += [
                    alias.name for alias in node.names if alias.name in ("train", "train_and_cache", "train_record")
                ]
    assert calls and all(call.get("runner") == "training_engine()" for call in calls), calls
    assert in_process == []

    from fmnist_app import common

    assert not hasattr(common, "_keep_keras_state_between_runs")
