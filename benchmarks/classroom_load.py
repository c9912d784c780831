"""A class on one server: N browser sessions browse, upload a sketch and ask to train while one training runs.

For each N, starts the app in classroom mode on a free localhost port over a copy of the model cache without
its full-preset entries (Model 1 quick answers the sketches; the other records give the queue its speeds), then
a "teacher" session starts Model 3 on the full preset on the Train page (minutes long: it runs all through).
Then N student sessions (Debian Chromium through Playwright, one browser context each, so N separate Streamlit
sessions) start together; each, once:

  1. opens Home, then Dataset through the sidebar, then Predict, uploads a garment picture and waits for the
     models' answer (timed: from handing over the file to the answer on screen);
  2. opens Train, picks the full preset and asks to train Model 1; reads its place in the queue and start time;
  3. when every session has queued, reloads the page and checks its place is still shown; then cancels.

Reported per N: errors (a step that failed or timed out, or a Streamlit exception box: must be 0), time to the
sketch answer (median, worst), the places the queue gave (each of 1..N once) and how many sessions were shown
a start time, the server's memory (resident set) at the start, at the peak and after the sessions closed, and
the CPU time the server and the browsers used while the sessions ran (where the machine's cores went).
The teacher's training is stopped at the end, so nothing is saved, and how many batches it ran while the
students worked is reported (what the class's load cost the demo). `--uploads-only`: step 1 alone, with no
training running (how the first round measured the app under a class, before there was a queue). Chromium starts
as a plain user's would, unable to raise its threads' priority above the server's (`plain_user_chromium`;
`--raised-browser-priority` for the earlier way). `--app-dir <checkout>` (with --uploads-only) serves another
checkout's app instead, over a copy of --cache-dir as it is (that app's own cache format): an earlier commit's
server measured on the same machine, by the same sessions (its pages must have the same headings and answer line).

Usage: .venv/bin/python benchmarks/classroom_load.py --sessions 10 20 30 [--cache-dir <your model cache>]
Run it alone on the machine (`flock -x /work/cpu.lock ...`): it uses every core, and the answer times are the
point. Needs one valid Model 1 entry in the cache (`python -m fmnist_core train --model model1 --preset quick`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from playwright.async_api import TimeoutError as PlaywrightTimeout
from playwright.async_api import async_playwright

from devtools.bad_inputs import dark_on_white, encode, garment
from devtools.browser_support import (
    APP_IDLE,
    CHROMIUM,
    CHROMIUM_ARGS,
    EXCEPTION,
    STATUS_WIDGET,
    VIEWPORT,
    start_server,
)
from devtools.proc_support import cpu_seconds, processes_named
from fmnist_core.config import PRESETS
from fmnist_core.store.cache import ModelCache

PROJECT_ROOT = Path(__file__).resolve().parent.parent

STEP_SECONDS = 240  # Default for --step-seconds.
SETTLE_SECONDS = 150  # Memory "after" is read this long after the sessions close: Streamlit drops a closed
# session's state 120 s after its connection ends (server.disconnectedSessionTTL).
SAMPLE_SECONDS = 0.5
ANSWER = re.compile(r"Model 1 says \S+")
PLACE = re.compile(r"Training Model 1 \(full\) is number (\d+) in the queue; (.*)")
# The full preset's line under the Settings choice: once it shows, the page has rerun with the full preset chosen
# (the Train page opens on the class demo; a click on Train before that rerun would ask for the class demo).
FULL_CHOSEN = re.compile(rf"^{PRESETS['full'].epochs} epochs × all training images")
# The running training's progress line (pipeline.start_training_job's message), on the teacher's Train page.
TEACHER_PROGRESS = re.compile(r"Epoch (\d+)/\d+ · batch (\d+)/(\d+)")


@dataclass
class SessionResult:
    """What one student session saw."""

    answer_seconds: float | None = None
    place: int | None = None
    start_estimate_shown: bool = False
    kept_after_reload: bool = False
    errors: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    """One N: the sessions' results and the server's memory samples (seconds since start, bytes)."""

    sessions: int
    results: list[SessionResult]
    memory: list[tuple[float, int]]
    memory_start: int
    memory_after: int
    wall_seconds: float
    uploads_only: bool = False
    teacher_batches: int | None = None  # Batches the teacher's training ran while the students worked.
    server_cpu_seconds: float | None = None  # CPU time the server used while the sessions ran (all its threads,
    # the teacher's training among them when one runs).
    browsers_cpu_seconds: float | None = None  # The same for every Chromium process (sampled: see CpuMeter).
    app: str = ""  # The served checkout's commit (git describe --always --dirty).

    def summary(self) -> dict:
        answers = [r.answer_seconds for r in self.results if r.answer_seconds is not None]
        places = sorted(r.place for r in self.results if r.place is not None)
        return {
            "sessions": self.sessions,
            "app": self.app,
            "uploads_only": self.uploads_only,
            "errors": sum(len(r.errors) for r in self.results),
            "error_examples": [error for r in self.results for error in r.errors][:5],
            "answers": len(answers),
            "answer_median_s": round(statistics.median(answers), 2) if answers else None,
            "answer_worst_s": round(max(answers), 2) if answers else None,
            "queue_places_1_to_n": places == list(range(1, self.sessions + 1)),
            "start_estimates_shown": sum(r.start_estimate_shown for r in self.results),
            "places_kept_after_reload": sum(r.kept_after_reload for r in self.results),
            "memory_start_gb": round(self.memory_start / 1e9, 2),
            "memory_peak_gb": round(max(rss for _, rss in self.memory) / 1e9, 2),
            "memory_after_gb": round(self.memory_after / 1e9, 2),
            "wall_seconds": round(self.wall_seconds, 1),
            "server_cpu_s": self.server_cpu_seconds,
            "browsers_cpu_s": self.browsers_cpu_seconds,
            "teacher_batches": self.teacher_batches,
            "teacher_batches_per_minute": (
                round(self.teacher_batches * 60 / self.wall_seconds, 1) if self.teacher_batches is not None else None
            ),
        }


def resident_bytes(pid: int) -> int:
    """The process's resident set size (VmRSS) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass(frozen=True)
class Site:
    """Where the sessions go and how long any one step may take."""

    url: str
    picture: Path  # The garment picture every student uploads.
    step_seconds: float  # A step (a page, an answer, a queue place) that takes longer counts as an error.
    shots: Path | None = None  # Where a session's page is photographed when one of its steps fails.
    uploads_only: bool = False  # Step 1 only, and no training runs: the first round's measurement.
    dump_threads: Callable[[], None] | None = None  # With --thread-dumps: the server's thread stacks into its log.

    @property
    def timeout_ms(self) -> float:
        return self.step_seconds * 1000


async def wait_idle(page, timeout: float) -> None:
    """Until Streamlit has finished the script run for what the page shows (three calm checks in a row)."""
    deadline, calm = time.monotonic() + timeout, 0
    while calm < 3:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{page.url} still running after {timeout:.0f} s")
        idle = await page.locator(APP_IDLE).count() == 1 and await page.locator(STATUS_WIDGET).count() == 0
        calm = calm + 1 if idle else 0
        await page.wait_for_timeout(500)


async def go(page, site: Site, path: str, heading: str, idle: bool = True) -> None:
    """Open a page through the sidebar (as a student clicks it) and wait for its script.

    idle: wait until the script has finished; not on a page that redraws a running job every few seconds.
    """
    await page.locator(f'[data-testid="stSidebarNav"] a[href="{site.url}/{path}"]').click(timeout=site.timeout_ms)
    await page.locator("h1", has_text=heading).first.wait_for(timeout=site.timeout_ms)
    if idle:
        await wait_idle(page, site.step_seconds)


async def choose_full_preset(page, site: Site) -> None:
    """Click "Full preset" until the page shows it chosen: a click that lands while the page is still drawing its
    previous run can be lost, and pressing Train then would ask for the class demo."""
    deadline = time.monotonic() + site.step_seconds
    while True:
        await page.get_by_text("Full preset", exact=True).click(timeout=site.timeout_ms)
        try:
            await page.get_by_text(FULL_CHOSEN).first.wait_for(timeout=15_000)
            return
        except PlaywrightTimeout:
            if time.monotonic() > deadline:
                raise


async def browse_answer_and_ask(page, site: Site, result: SessionResult) -> None:
    """Step 1 (Home, Dataset, a timed sketch answer) and step 2 (ask for Model 1 full, read the queue place)."""
    await page.goto(site.url, timeout=site.timeout_ms)
    await page.locator("h1", has_text="Fashion-MNIST CNN Explorer").wait_for(timeout=site.timeout_ms)
    await wait_idle(page, site.step_seconds)
    await go(page, site, "dataset", "The dataset")
    await go(page, site, "predict", "Predict a sketch")
    started = time.perf_counter()
    await page.locator('input[type="file"]').first.set_input_files(str(site.picture), timeout=site.timeout_ms)
    await page.get_by_text(ANSWER).first.wait_for(timeout=site.timeout_ms)
    result.answer_seconds = time.perf_counter() - started
    if site.uploads_only:
        return
    await go(page, site, "train", "Train a model", idle=False)
    await choose_full_preset(page, site)
    await page.get_by_role("button", name="Train Model 1").click(timeout=site.timeout_ms)
    text = await page.get_by_text(PLACE).first.inner_text(timeout=site.timeout_ms)
    place, when = PLACE.search(text).groups()
    result.place, result.start_estimate_shown = int(place), when.startswith("it should start in about")


async def reload_and_find_the_place(page, site: Site, result: SessionResult) -> None:
    """Step 3a: a reload shows the same place (the browser's cookie carries the visitor id)."""
    await page.reload(timeout=site.timeout_ms)
    placed = page.get_by_text(re.compile(rf"Training Model 1 \(full\) is number {result.place} in the queue"))
    await placed.first.wait_for(timeout=site.timeout_ms)
    result.kept_after_reload = True


async def cancel(page, site: Site, result: SessionResult) -> None:
    """Step 3b: withdraw the request; then look for any exception box on the page."""
    await page.get_by_role("button", name="Cancel my request").click(timeout=site.timeout_ms)
    await page.get_by_text("You cancelled Training Model 1 (full)").wait_for(timeout=site.timeout_ms)
    result.errors += [f"exception shown: {text[:200]}" for text in await exceptions_shown(page)]


async def exceptions_shown(page) -> list[str]:
    return [await box.inner_text() for box in await page.locator(EXCEPTION).all()]


async def student(browser, site: Site, queued: asyncio.Barrier, reloaded: asyncio.Barrier) -> SessionResult:
    """One student's visit (steps 1-3 of the module docstring); never raises: failures become errors.

    Every session waits at the two barriers whatever happened to it, so one failure cannot stall the others.
    """
    result, context, console = SessionResult(), None, []

    async def attempt(name: str, step) -> None:
        try:
            await step()
        except Exception as error:  # A benchmark records every failure and carries on with the other sessions.
            result.errors.append(f"{name}: {type(error).__name__}: {str(error).splitlines()[0][:200]}")
            if site.shots is not None and context is not None and context.pages:
                site.shots.mkdir(parents=True, exist_ok=True)
                if site.dump_threads is not None:  # What the server is doing for (or instead of) this page.
                    print(f"{time.strftime('%H:%M:%S')} {name} failed: server threads dumped", file=sys.stderr)
                    site.dump_threads()
                shot = site.shots / f"session-{id(result)}-{name.split(',')[0].replace(' ', '-')}.png"
                try:
                    page = context.pages[0]
                    await page.screenshot(path=str(shot), full_page=True)
                    text = await page.locator("body").inner_text(timeout=10_000)
                    shot.with_suffix(".txt").write_text(f"{page.url}\n\n{text}")
                    shot.with_suffix(".html").write_text(await page.content())
                    shot.with_suffix(".console.txt").write_text("\n".join(console))
                except Exception as problem:  # The photograph is a help; its failure is only noted, not counted.
                    print(f"no screenshot of {shot.name}: {type(problem).__name__}", file=sys.stderr)

    async def visit() -> None:
        nonlocal context
        context = await browser.new_context(viewport=VIEWPORT)
        page = await context.new_page()
        # The browser's console (Streamlit's front end logs lost connections there), kept for a failure's record.
        page.on(
            "console", lambda message: console.append(f"{time.strftime('%H:%M:%S')} {message.type}: {message.text}")
        )
        await browse_answer_and_ask(page, site, result)

    await attempt("browse, answer a sketch, ask to train", visit)
    await queued.wait()  # Every session holds its request until all have asked: the queue is N long.
    if result.place is not None:
        await attempt("reload", lambda: reload_and_find_the_place(context.pages[0], site, result))
    await reloaded.wait()
    if result.place is not None:
        await attempt("cancel", lambda: cancel(context.pages[0], site, result))
    if context is not None:
        await attempt("close", context.close)
    return result


async def teacher_starts_training(browser, site: Site):
    """The teacher asks for Model 3 on the full preset (minutes long) and waits until it runs."""
    context = await browser.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    await page.goto(f"{site.url}/train", timeout=site.timeout_ms)
    await page.locator("h1", has_text="Train a model").wait_for(timeout=site.timeout_ms)
    await wait_idle(page, site.step_seconds)
    await (
        page.locator('[data-testid="stRadio"]').first.get_by_text("Model 3", exact=True).click(timeout=site.timeout_ms)
    )
    await wait_idle(page, site.step_seconds)
    await choose_full_preset(page, site)
    await wait_idle(page, site.step_seconds)
    await page.get_by_role("button", name="Train Model 3").click(timeout=site.timeout_ms)
    await page.get_by_text(TEACHER_PROGRESS).first.wait_for(timeout=site.timeout_ms)
    return context, page


async def batches_done(teacher) -> int:
    """Training batches run so far, from the progress line on the teacher's Train page."""
    text = await teacher.get_by_text(TEACHER_PROGRESS).first.inner_text()
    epoch, batch, batches = (int(number) for number in TEACHER_PROGRESS.search(text).groups())
    return (epoch - 1) * batches + batch


def plain_user_chromium(work: Path) -> Path:
    """Chromium started the way a student's browser runs: unable to raise its threads' priority. Run as root,
    Chromium gives its main, I/O and compositor threads niceness -8, so on these shared cores the browsers would
    outrank the server (nice 0) that the benchmark measures; in a class they run on the students' machines. Under
    root this drops the right to raise priorities (setpriv, util-linux) before starting Chromium; as any other
    user Chromium has no such right anyway, and starts as it is."""
    if os.geteuid() != 0:
        return CHROMIUM
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        sys.exit("Running as root needs setpriv (apt-get install util-linux) to start Chromium as a plain user's")
    wrapper = work / "chromium-without-raised-priority"
    wrapper.write_text(f'#!/bin/sh\nexec {setpriv} --bounding-set=-sys_nice --inh-caps=-sys_nice {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


class CpuMeter:
    """CPU seconds the server and the Chromium processes use from the meter's creation on. A browser process's time
    is read each time `sample` runs (every SAMPLE_SECONDS), so a renderer that ends between two samples loses at most
    that last half second; one that starts meanwhile counts from zero."""

    def __init__(self, server_pid: int):
        self.server_pid = server_pid
        self.server_start = cpu_seconds(server_pid) or 0.0
        self.browser_start = self._browsers()
        self.browser_last: dict[int, float] = dict(self.browser_start)

    @staticmethod
    def _browsers() -> dict[int, float]:
        found = {pid: cpu_seconds(pid) for pid in processes_named("chrom")}
        return {pid: seconds for pid, seconds in found.items() if seconds is not None}

    def sample(self) -> None:
        self.browser_last.update(self._browsers())

    def server_seconds(self) -> float:
        return round((cpu_seconds(self.server_pid) or 0.0) - self.server_start, 1)

    def browser_seconds(self) -> float:
        self.sample()
        return round(sum(last - self.browser_start.get(pid, 0.0) for pid, last in self.browser_last.items()), 1)


async def sample_memory(pid: int, started: float, samples: list, stop: asyncio.Event, meter: CpuMeter) -> None:
    while not stop.is_set():
        samples.append((time.monotonic() - started, resident_bytes(pid)))
        meter.sample()
        await asyncio.sleep(SAMPLE_SECONDS)


def prepare_cache(source: Path, target: Path) -> None:
    """Copy the valid entries trained on any preset but the full one: Model 1 quick answers the sketches, every
    entry's record gives the queue its speeds, and the full-preset runs everyone asks for are not cached."""
    entries = [entry for entry in ModelCache(source).list() if entry.ok and entry.record.config != PRESETS["full"]]
    if not any(entry.model_name == "model1" for entry in entries):
        sys.exit(
            f"No valid Model 1 in {source}: train one first (python -m fmnist_core train --model model1 "
            "--preset quick) or pass --cache-dir."
        )
    for entry in entries:
        shutil.copytree(entry.path, target / entry.entry_id)


async def run_one(
    sessions: int,
    source: Path,
    picture: Path,
    work: Path,
    step_seconds: float,
    shots: Path | None = None,
    uploads_only: bool = False,
    thread_dumps: bool = False,
    chromium: Path = CHROMIUM,
    app_dir: Path = PROJECT_ROOT,
) -> RunResult:
    cache = work / f"cache-{sessions}"
    if app_dir == PROJECT_ROOT:
        cache.mkdir()
        prepare_cache(source, cache)
    else:  # Another commit's app reads its own cache format: its entries are copied as they are.
        shutil.copytree(source, cache)
    server = start_server(
        cache,
        (shots or work) / f"server-{sessions}.log",  # Kept beside the photographs, when there are any.
        # No shipped models: they are full-preset runs, which would answer the requests this benchmark queues.
        environment={"FMNIST_CLASSROOM": "1", "FMNIST_QUEUE_LIMIT": "100", "FMNIST_SHIPPED_DIR": str(work)},
        trace=shots is not None,
        thread_dumps=thread_dumps,
        app_dir=app_dir,
    )
    site = Site(server.url, picture, step_seconds, shots, uploads_only, server.dump_threads if thread_dumps else None)
    samples: list[tuple[float, int]] = []
    stop_sampling = asyncio.Event()
    clock = time.monotonic()
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
            try:
                teacher_context, teacher = (
                    (None, None) if uploads_only else await teacher_starts_training(browser, site)
                )
                memory_start = resident_bytes(server.process.pid)
                batches_before = None if teacher is None else await batches_done(teacher)
                meter = CpuMeter(server.process.pid)
                sampler = asyncio.create_task(sample_memory(server.process.pid, clock, samples, stop_sampling, meter))
                queued, reloaded = asyncio.Barrier(sessions), asyncio.Barrier(sessions)
                started = time.monotonic()
                results = await asyncio.gather(*(student(browser, site, queued, reloaded) for _ in range(sessions)))
                wall = time.monotonic() - started
                server_cpu, browsers_cpu = meter.server_seconds(), meter.browser_seconds()
                teacher_batches = None if teacher is None else await batches_done(teacher) - batches_before
                await asyncio.sleep(SETTLE_SECONDS)
                memory_after = resident_bytes(server.process.pid)
                stop_sampling.set()
                await sampler
                if teacher is not None:
                    await teacher.get_by_role("button", name="Stop", exact=True).click(timeout=site.timeout_ms)
                    await teacher.get_by_text("stopped, nothing was saved").wait_for(timeout=site.timeout_ms)
                    await teacher_context.close()
            finally:
                await browser.close()
    finally:
        server.stop()
    return RunResult(
        sessions,
        list(results),
        samples,
        memory_start,
        memory_after,
        wall,
        uploads_only,
        teacher_batches,
        server_cpu,
        browsers_cpu,
        commit_of(app_dir),
    )


def commit_of(checkout: Path) -> str:
    """The checkout's commit, marked -dirty when it has uncommitted changes; "" where git cannot tell."""
    try:
        described = subprocess.run(
            ["git", "-C", str(checkout), "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return described.stdout.strip() if described.returncode == 0 else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[10, 20, 30], help="class sizes to try")
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="where the Model 1 entry is copied from (default: your cache)"
    )
    parser.add_argument("--json", type=Path, help="also write every figure and sample to this file")
    parser.add_argument(
        "--step-seconds", type=float, default=STEP_SECONDS, help="a step that takes longer is an error (default 240)"
    )
    parser.add_argument(
        "--uploads-only",
        action="store_true",
        help="each session browses and answers a sketch only, and no training runs (the first round's measurement)",
    )
    parser.add_argument(
        "--shots",
        type=Path,
        help="on a failure, keep the page's photograph, text, HTML and browser console here, and the server log "
        "with every rerun, script run and message Streamlit dropped traced (devtools/server_trace.py)",
    )
    parser.add_argument(
        "--thread-dumps",
        action="store_true",
        help="with --shots: also write every server thread's stack into its log when a step fails (a dump on a "
        "loaded server once stopped it midway, failing every later step)",
    )
    parser.add_argument(
        "--raised-browser-priority",
        action="store_true",
        help="let Chromium, run as root, raise its threads' priority above the server's, as every run before this "
        "option did (see plain_user_chromium)",
    )
    parser.add_argument(
        "--app-dir",
        type=Path,
        default=PROJECT_ROOT,
        help="with --uploads-only: serve the app of this checkout (e.g. a git worktree of an earlier commit) over a "
        "copy of --cache-dir as it is, to compare its server with this one on the same machine",
    )
    arguments = parser.parse_args()
    if any(count < 1 for count in arguments.sessions):
        parser.error("--sessions takes whole numbers ≥ 1")
    if arguments.thread_dumps and arguments.shots is None:
        parser.error("--thread-dumps needs --shots: the dumps go into the server log kept there")
    arguments.app_dir = arguments.app_dir.resolve()
    if arguments.app_dir != PROJECT_ROOT:
        if not arguments.uploads_only:
            parser.error("--app-dir needs --uploads-only: an earlier app has no training queue to measure")
        if arguments.cache_dir is None or not (arguments.app_dir / "streamlit_app.py").is_file():
            parser.error("--app-dir needs a checkout with streamlit_app.py, and --cache-dir with that app's models")
        if arguments.shots is not None:
            parser.error("--app-dir cannot take --shots: the server trace patches this checkout's pages")
    summaries, runs = [], []
    with tempfile.TemporaryDirectory(prefix="classroom-load-") as folder:
        work = Path(folder)
        picture = work / "trousers.png"
        picture.write_bytes(encode(dark_on_white(garment()), "PNG"))
        for sessions in arguments.sessions:
            run = asyncio.run(
                run_one(
                    sessions,
                    arguments.cache_dir,
                    picture,
                    work,
                    arguments.step_seconds,
                    arguments.shots,
                    arguments.uploads_only,
                    arguments.thread_dumps,
                    CHROMIUM if arguments.raised_browser_priority else plain_user_chromium(work),
                    arguments.app_dir,
                )
            )
            runs.append(run)
            summaries.append(run.summary())
            print(json.dumps(summaries[-1]), flush=True)
    print()
    print(
        "| Sessions | Errors | Sketch answer, median | worst | Queue places 1..N | Start time shown "
        "| Place kept on reload | Server memory: start | peak | after | Teacher's batches per minute "
        "| CPU: server | browsers | wall |"
    )
    print("| ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for s in summaries:
        queue = (
            ["— (uploads only)", "—", "—"]
            if s["uploads_only"]
            else [
                "yes" if s["queue_places_1_to_n"] else "no",
                f"{s['start_estimates_shown']}/{s['sessions']}",
                f"{s['places_kept_after_reload']}/{s['sessions']}",
            ]
        )
        cells = [s["sessions"], s["errors"], f"{s['answer_median_s']} s", f"{s['answer_worst_s']} s", *queue]
        cells += [f"{s[key]} GB" for key in ("memory_start_gb", "memory_peak_gb", "memory_after_gb")]
        cells.append("—" if s["teacher_batches_per_minute"] is None else s["teacher_batches_per_minute"])
        cells += [f"{s['server_cpu_s']} s", f"{s['browsers_cpu_s']} s", f"{s['wall_seconds']} s"]
        print("| " + " | ".join(str(cell) for cell in cells) + " |")
    if arguments.json:
        arguments.json.write_text(json.dumps([asdict(run) | {"summary": run.summary()} for run in runs], indent=1))


if __name__ == "__main__":
    main()
