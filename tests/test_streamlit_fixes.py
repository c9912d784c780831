"""fmnist_app/streamlit_fixes.py: a rerun waits until the messages it would make Streamlit drop are delivered, reruns
reach Streamlit in the order they came, and static files served once are answered from memory."""

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.runtime.app_session import AppSession
from streamlit.runtime.scriptrunner import ScriptRunner
from streamlit.runtime.scriptrunner_utils.script_requests import RerunData, ScriptRequests
from streamlit.runtime.scriptrunner_utils.script_run_context import (
    SCRIPT_RUN_CONTEXT_ATTR_NAME,
    ScriptRunContext,
    get_script_run_ctx,
)

from fmnist_app import streamlit_fixes
from fmnist_app.streamlit_fixes import RETRY_SECONDS, deliver_finished_runs_first


def client_state(fragment_id: str = ""):
    message = BackMsg()
    message.rerun_script.fragment_id = fragment_id
    message.rerun_script.is_auto_rerun = bool(fragment_id)
    return message.rerun_script


def runner(stopped: bool, fragment: bool = False):
    """A stand-in for a ScriptRunner holding Streamlit's own request queue, finished (stopped) or running, whose
    thread's script run context says whether its run is a fragment's (the status box) or the whole page's."""
    requests = ScriptRequests()
    requests.request_rerun(RerunData())
    if stopped:
        requests.request_stop()
    context = SimpleNamespace(fragment_ids_this_run=["status-box"] if fragment else None)
    return SimpleNamespace(
        _requests=requests, _script_thread=SimpleNamespace(**{SCRIPT_RUN_CONTEXT_ATTR_NAME: context})
    )


class Session:
    """What the fix reads of an AppSession: its current runner and its event loop."""

    def __init__(self, loop, current):
        self._event_loop, self._scriptrunner = loop, current


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def fixed_request_rerun():
    calls = []
    return calls, deliver_finished_runs_first(lambda session, state: calls.append((session, state)))


def run_for(loop, seconds: float) -> None:
    loop.run_until_complete(asyncio.sleep(seconds))


def test_a_fragment_rerun_waits_while_the_finished_runs_messages_are_on_their_way_then_goes_ahead(loop):
    calls, request_rerun = fixed_request_rerun()
    session, asked = Session(loop, runner(stopped=True)), client_state("status-box")
    request_rerun(session, asked)
    run_for(loop, 5 * RETRY_SECONDS)
    assert calls == []  # Streamlit would have started a new runner here and dropped the finished run's messages.
    session._scriptrunner = None  # The finished runner's last event was delivered.
    run_for(loop, 3 * RETRY_SECONDS)
    assert calls == [(session, asked)]


@pytest.mark.parametrize("fragment_running", [True, False], ids=["running", "finished"])
def test_a_full_rerun_waits_while_a_fragment_run_is_under_way_or_undelivered_then_goes_ahead(loop, fragment_running):
    """A click during the status box's fragment run: Streamlit would stop that runner and drop its messages."""
    calls, request_rerun = fixed_request_rerun()
    session, asked = Session(loop, runner(stopped=not fragment_running, fragment=True)), client_state()
    request_rerun(session, asked)
    run_for(loop, 5 * RETRY_SECONDS)
    assert calls == []
    session._scriptrunner = None  # The fragment run ended and its runner's last event was delivered.
    run_for(loop, 3 * RETRY_SECONDS)
    assert calls == [(session, asked)]


def test_reruns_behind_a_waiting_one_wait_with_it_and_go_in_the_order_they_came(loop):
    """The status box's timer, firing while a click waits, neither overtakes the click nor keeps it waiting."""
    calls, request_rerun = fixed_request_rerun()
    session = Session(loop, runner(stopped=False, fragment=True))
    click, tick, later_click = client_state(), client_state("status-box"), client_state()
    request_rerun(session, click)
    request_rerun(session, tick)  # Alone, a running runner would take it into its queue at once.
    run_for(loop, 5 * RETRY_SECONDS)
    assert calls == []
    session._scriptrunner = None
    run_for(loop, 3 * RETRY_SECONDS)
    assert calls == [(session, click), (session, tick)]
    request_rerun(session, later_click)  # Nothing waits any more: straight through.
    assert calls[-1] == (session, later_click)


@pytest.mark.parametrize(
    ("current", "asked"),
    [
        (None, client_state("status-box")),  # Nothing in flight.
        (None, client_state()),
        (runner(stopped=False), client_state("status-box")),  # A running runner queues the fragment itself.
        (runner(stopped=False, fragment=True), client_state("status-box")),
        (runner(stopped=True), client_state()),  # A full-page rerun replaces a full page run anyway.
        (runner(stopped=False), client_state()),
        (runner(stopped=True), None),  # Streamlit's own rerun with the previous client state.
    ],
)
def test_other_reruns_go_ahead_at_once(loop, current, asked):
    calls, request_rerun = fixed_request_rerun()
    session = Session(loop, current)
    request_rerun(session, asked)
    assert calls == [(session, asked)]


def test_a_rerun_is_never_held_back_for_good(loop, monkeypatch):
    limit = 0.5  # MAX_WAIT_SECONDS (10 s) made short, so the test takes a second, not twenty.
    monkeypatch.setattr(streamlit_fixes, "MAX_WAIT_SECONDS", limit)
    calls, request_rerun = fixed_request_rerun()
    session = Session(loop, runner(stopped=True, fragment=True))
    tick, click = client_state("status-box"), client_state()
    request_rerun(session, tick)
    request_rerun(session, click)
    run_for(loop, limit / 2)
    assert calls == []
    run_for(loop, limit / 2 + 0.15)  # The finished runner's last event never comes.
    assert calls == [(session, tick)]  # The click now waits its own turn, again at most the limit.
    run_for(loop, limit + 0.15)
    assert calls == [(session, tick), (session, click)]


def test_the_fix_reads_what_this_streamlit_has_and_the_router_installs_it():
    """The attributes the fix reads exist in the installed Streamlit (an upgrade that renames them fails here,
    instead of silently bringing the lost page runs back), and applying it twice wraps once."""
    assert "_scriptrunner" in AppSession.__init__.__code__.co_names
    assert "_event_loop" in AppSession.__init__.__code__.co_names
    assert "_requests" in ScriptRunner.__init__.__code__.co_names
    assert "_script_thread" in ScriptRunner.__init__.__code__.co_names
    assert "SCRIPT_RUN_CONTEXT_ATTR_NAME" in get_script_run_ctx.__code__.co_names  # The thread attribute read here.
    assert "fragment_ids_this_run" in ScriptRunContext.__dataclass_fields__
    assert streamlit_fixes._has_finished(runner(stopped=True))
    assert not streamlit_fixes._has_finished(runner(stopped=False))
    assert streamlit_fixes._runs_a_fragment(runner(stopped=False, fragment=True))
    assert not streamlit_fixes._runs_a_fragment(runner(stopped=False))
    from starlette.staticfiles import StaticFiles

    patched = {  # Fixed already where an in-process app test ran the router.
        (AppSession, "request_rerun"): AppSession.request_rerun,
        (StaticFiles, "get_response"): StaticFiles.get_response,
        (StaticFiles, "file_response"): StaticFiles.file_response,
    }
    unfixed = {place: getattr(method, "__wrapped__", method) for place, method in patched.items()}
    try:
        for (owner, name), method in unfixed.items():
            setattr(owner, name, method)
        assert streamlit_fixes.apply() and streamlit_fixes.apply()
        assert AppSession.request_rerun.delivers_finished_runs_first
        assert StaticFiles.get_response.serves_from_memory
        for (owner, name), method in unfixed.items():
            assert getattr(owner, name).__wrapped__ is method  # Wrapped once.
    finally:
        for (owner, name), method in patched.items():
            setattr(owner, name, method)
    assert "\nstreamlit_fixes.apply()" in (Path(__file__).parents[1] / "streamlit_app.py").read_text()


# Static files from memory -------------------------------------------------------------------------------------------


def static_files_class(in_memory: bool):
    from starlette.responses import FileResponse, Response
    from starlette.staticfiles import StaticFiles

    class Files(StaticFiles):
        """A StaticFiles of this test's own, so the fix is tried without touching Starlette's class (which the
        router's fixes have patched already where an in-process app test ran first)."""

        get_response = getattr(StaticFiles.get_response, "__wrapped__", StaticFiles.get_response)
        file_response = getattr(StaticFiles.file_response, "__wrapped__", StaticFiles.file_response)

    if in_memory:
        Files.get_response, Files.file_response = streamlit_fixes.serve_from_memory(Files, Response, FileResponse)
    return Files


def fetch(app, path: str, method: str = "GET", headers: dict | None = None):
    """One request through the ASGI app: (status, headers, body)."""
    scope = {
        "type": "http",
        "asgi": {"spec_version": "2.4"},
        "method": method,
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [(key.encode(), value.encode()) for key, value in (headers or {}).items()],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("testserver", 80),
    }
    sent = []

    async def receive():
        await asyncio.Future()  # The client never disconnects.

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = sent[0]
    return start["status"], dict(start["headers"]), b"".join(message.get("body", b"") for message in sent[1:])


@pytest.fixture
def thread_hops(monkeypatch):
    """The calls that went through AnyIO's thread pool (Starlette's file I/O goes there), by function name."""
    from anyio._backends._asyncio import AsyncIOBackend

    hops, run_sync = [], AsyncIOBackend.run_sync_in_worker_thread

    async def counted(function, args, *rest, **kwargs):
        hops.append(getattr(function, "__name__", repr(function)))
        return await run_sync(function, args, *rest, **kwargs)

    monkeypatch.setattr(AsyncIOBackend, "run_sync_in_worker_thread", counted)
    return hops


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.setattr(streamlit_fixes, "_found", {})
    monkeypatch.setattr(streamlit_fixes, "_held", {})
    (tmp_path / "table.js").write_bytes(bytes(range(256)) * 1000)  # 256 KB: four 64 KB reads when streamed.
    (tmp_path / "style.css").write_text("body { color: #1a1a1a }")
    return tmp_path


def test_a_static_file_found_before_is_answered_from_memory_with_the_same_bytes_and_headers(site, thread_hops):
    plain, held = static_files_class(False)(directory=site), static_files_class(True)(directory=site)
    expected = fetch(plain, "/table.js")
    hops_streamed = len(thread_hops)
    first = fetch(held, "/table.js")
    del thread_hops[:]
    again = fetch(held, "/table.js")
    assert expected[0] == first[0] == again[0] == 200
    assert expected[2] == first[2] == again[2] == (site / "table.js").read_bytes()
    without_ranges = {key: value for key, value in expected[1].items() if key != b"accept-ranges"}
    assert first[1] == again[1] == without_ranges  # Type, length, ETag, last-modified: Starlette's own.
    assert hops_streamed >= 6  # Find, open, four reads and more, close: each a trip through the thread pool.
    assert thread_hops == []  # Found before: no trip at all.


def test_what_memory_does_not_serve_goes_the_old_way(site, thread_hops, monkeypatch):
    held = static_files_class(True)(directory=site)
    status, headers, _ = fetch(held, "/style.css")
    etag = headers[b"etag"].decode()
    assert fetch(held, "/style.css", headers={"if-none-match": etag})[0] == 304
    head = fetch(held, "/style.css", method="HEAD")
    assert head[0] == 200 and head[2] == b"" and head[1][b"content-length"] == b"23"
    ranged = fetch(held, "/table.js", headers={"range": "bytes=0-9"})
    assert ranged[0] == 206 and ranged[2] == bytes(range(10))
    with pytest.raises(Exception, match="404"):
        asyncio.run(held.get_response("missing.js", {"method": "GET", "headers": []}))
    monkeypatch.setattr(streamlit_fixes, "MAX_FILE_BYTES", 1000)
    streamlit_fixes._held.clear()
    del thread_hops[:]
    big = fetch(held, "/table.js")
    assert big[2] == (site / "table.js").read_bytes() and len(thread_hops) >= 5  # Too large to hold: streamed.
    assert streamlit_fixes._held == {}
