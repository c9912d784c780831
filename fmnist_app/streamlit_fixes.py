"""Fixes for what lost whole page runs under load in Streamlit 1.67; the router applies them once per server.

Each patch, a minimal reproduction and how to tell when an upgrade makes it unnecessary: docs/streamlit-workarounds.md.
requirements.txt pins the Streamlit they were tested with; every private name read here is guarded, so a Streamlit
that moved one leaves that fix unapplied instead of failing a click.

What goes wrong (Streamlit 1.67, seen in benchmarks/classroom_load.py with devtools/server_trace.py): a script runner
runs the page on its own thread and hands every message it produces (each element, "run finished") to the
session's event loop, which sends them to the browser. When a rerun request makes the session start a new runner,
every event of the old one is ignored from then on as "from a non-current ScriptRunner". Two requests did that to
runs a browser was waiting for:

- A fragment rerun (the status box's timer, every 2 s then, every 5 s now) arriving after a page run finished but before
  the loop had delivered its messages (on a loaded server the loop lagged up to a second behind): the whole page run
  that had just finished never reached the browser. A student who chose "Full preset" kept seeing the class demo's
  settings below the radio, with nothing to make the page catch up until the next full run.
- A full rerun (a click on "Train Model 1") arriving while the runner ran the status box's fragment: with
  `runner.fastReruns` (the default) the session stopped that runner and started another for the page, and the
  fragment run's messages were dropped half-way (traced at 30 sessions with a training running, where every page
  froze; holding such clicks back did not end the freezes, which came from the page's own files: see below).

The fix: rerun requests reach Streamlit one at a time, in the order they came, and one that would make it drop a
run's messages waits on the event loop (re-checking every RETRY_SECONDS) until they are delivered — the runner's
last event clears it — and then goes ahead as before: a fragment rerun waits while a finished run's messages are on
their way; a full rerun waits while the runner runs (or has just run) a fragment. Requests behind a waiting one
wait with it, so a fragment timer cannot overtake a click. Full reruns during a full run are untouched: the new run
replaces the page anyway. If Streamlit changes the attributes read here, the checks answer "no need to wait" and
Streamlit behaves as it does unfixed; tests/test_streamlit_fixes.py fails on such a Streamlit, so an upgrade cannot
drop the fix silently.

The page's own files (Streamlit's scripts, styles and fonts) are served from memory, once served from disk: under
that load Starlette's way of serving them left a page's scripts unanswered for minutes (see `serve_from_memory`).
"""

import functools
import os

RETRY_SECONDS = 0.05
MAX_WAIT_SECONDS = 10.0  # Then the rerun goes ahead anyway: a rerun is never lost.
HELD = "_fmnist_held_reruns"  # The session's requests not yet handed to Streamlit, oldest first.


def _has_finished(runner) -> bool:
    """Whether a script runner has stopped taking rerun requests (its run finished or was stopped)."""
    state = getattr(getattr(runner, "_requests", None), "_state", None)
    return getattr(state, "name", None) == "STOP"


def _runs_a_fragment(runner) -> bool:
    """Whether the runner's current run (or the one it just finished) reruns fragments only, read from the script
    run context Streamlit attaches to the runner's thread."""
    try:
        from streamlit.runtime.scriptrunner_utils.script_run_context import SCRIPT_RUN_CONTEXT_ATTR_NAME
    except ImportError:  # A Streamlit that moved it: "no need to wait", the fix not applied, never an error.
        return False

    context = getattr(getattr(runner, "_script_thread", None), SCRIPT_RUN_CONTEXT_ATTR_NAME, None)
    return bool(getattr(context, "fragment_ids_this_run", None))


def rerun_must_wait(session, client_state) -> bool:
    """True when handing `client_state` to Streamlit now would make it drop messages of the session's runner that
    the event loop has not delivered yet (the runner's last event sets `_scriptrunner` to None)."""
    runner = getattr(session, "_scriptrunner", None)
    if runner is None:
        return False
    if client_state is not None and client_state.fragment_id:
        return _has_finished(runner)  # A running runner takes the fragment into its own queue.
    return _runs_a_fragment(runner)


def deliver_finished_runs_first(request_rerun):
    """`AppSession.request_rerun`, made to hand requests on in order, each once no run's messages would be lost."""

    def hand_on(session, since: float | None = None) -> None:
        """Hand on the held requests in order; `since`: when the first of them began to wait (loop time)."""
        held, now = session.__dict__[HELD], session._event_loop.time()
        while held:
            if (since is None or now - since < MAX_WAIT_SECONDS) and rerun_must_wait(session, held[0]):
                session._event_loop.call_later(RETRY_SECONDS, hand_on, session, now if since is None else since)
                return
            request_rerun(session, held.pop(0))
            since = None

    @functools.wraps(request_rerun)
    def request_rerun_after_delivery(session, client_state=None) -> None:
        held = session.__dict__.setdefault(HELD, [])
        held.append(client_state)
        if len(held) == 1:  # Otherwise a wait is under way and hands this one on after those before it.
            hand_on(session)

    request_rerun_after_delivery.delivers_finished_runs_first = True
    return request_rerun_after_delivery


# Static files ------------------------------------------------------------------------------------------------------

MAX_FILE_BYTES = 8 * 1024 * 1024  # Larger files (none of the app's pages needs one) are streamed as before.
MAX_MEMORY_BYTES = 64 * 1024 * 1024  # Past this, files not yet held are streamed as before.
_found: dict[tuple[int, str], tuple[str, os.stat_result]] = {}  # (StaticFiles id, path) -> where the file is.
_held: dict[tuple[str, int, int], bytes] = {}  # (full path, mtime ns, size) -> the file's bytes.


def serve_from_memory(static_files_class, response_class, file_response_class):
    """`StaticFiles.get_response` and `.file_response`, made to serve a file found before from memory.

    Why: Starlette serves a file through its thread pool, one hop there and back for finding it, opening it, each
    64 KB read and closing it: about ten for Streamlit's 486 KB table script. Every hop back waits for the event loop,
    which on a loaded 2-core server shares Python's lock with 30 pages' script runs and a training. In the
    30-session benchmark the 28 threads' tokens were all taken with up to 83 requests waiting, and the page scripts
    of the Train page and of every reload went unanswered for minutes (devtools/server_trace.py's THREADS and TASKS
    lines), and those pages drew nothing new while they waited, so clicks seemed to do nothing. Held in memory, a file
    found before is answered without a hop; the first request for each file reads it once, on the loop (the
    installed package's files are a few hundred KB each, read from the page cache). Headers (type, length, ETag,
    last-modified, and Streamlit's cache-control) are the ones Starlette gives the file; "304 Not Modified" answers
    are as before; a HEAD request, a range request and a large file go the old way.
    """
    get_response, file_response = static_files_class.get_response, static_files_class.file_response

    @functools.wraps(get_response)
    async def get_response_from_memory(self, path: str, scope):
        found = _found.get((id(self), path))
        if found is not None and scope["method"] == "GET":
            return self.file_response(*found, scope)
        return await get_response(self, path, scope)

    @functools.wraps(file_response)
    def file_response_from_memory(self, full_path, stat_result, scope, status_code: int = 200):
        response = file_response(self, full_path, stat_result, scope, status_code)
        if status_code == 200:
            _found[(id(self), self.get_path(scope))] = (full_path, stat_result)
        ranged = any(key == b"range" for key, _ in scope.get("headers") or [])
        if not isinstance(response, file_response_class) or scope["method"] != "GET" or ranged:
            return response
        body = _bytes_of(str(full_path), stat_result)
        if body is None:
            return response
        held = response_class(content=body, status_code=response.status_code)
        held.raw_headers = [(key, value) for key, value in response.raw_headers if key != b"accept-ranges"]
        return held

    get_response_from_memory.serves_from_memory = True
    return get_response_from_memory, file_response_from_memory


def _bytes_of(full_path: str, stat_result) -> bytes | None:
    """The file's bytes, read once per version of it; None for a file too large to hold."""
    key = (full_path, stat_result.st_mtime_ns, stat_result.st_size)
    body = _held.get(key)
    if body is None:
        if (
            stat_result.st_size > MAX_FILE_BYTES
            or sum(map(len, _held.values())) + stat_result.st_size > MAX_MEMORY_BYTES
        ):
            return None
        try:
            with open(full_path, "rb") as file:
                body = file.read()
        except OSError:  # Gone since it was looked up: Starlette's own response says so, as before.
            return None
        if len(body) != stat_result.st_size:  # Changed since it was looked up: stream it as before.
            return None
        _held[key] = body
    return body


def apply() -> bool:
    """Install the fixes in this server process (once); False where this Streamlit has no AppSession to fix."""
    try:
        from starlette.responses import FileResponse, Response
        from starlette.staticfiles import StaticFiles
        from streamlit.runtime.app_session import AppSession
    except ImportError:
        return False
    if not getattr(AppSession.request_rerun, "delivers_finished_runs_first", False):
        AppSession.request_rerun = deliver_finished_runs_first(AppSession.request_rerun)
    if not getattr(StaticFiles.get_response, "serves_from_memory", False):
        StaticFiles.get_response, StaticFiles.file_response = serve_from_memory(StaticFiles, Response, FileResponse)
    return True
