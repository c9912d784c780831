"""Diagnostics for a Streamlit server under load: one `TRACE` line on stderr for each rerun a browser asks for and
each script run that starts or ends, and one for every message Streamlit throws away because the script runner
that produced it is no longer the session's current one (`AppSession` ignores such events), and one for every
check of fmnist_app/streamlit_fixes.py that holds a rerun back (every 50 ms while it waits); and every THREADS_EVERY
seconds one `THREADS` line: how many of the server's threads stand where, by thread name and innermost frame (a
pool whose threads all stand in one place is a pool that is stuck), and the static-file requests (the page's
scripts) still unanswered after SLOW_SECONDS, with one `SLOW` line for each that took longer; while any are
unanswered, a `TASKS` line: where the event loop's tasks wait and how many of the file-serving thread pool's tokens
are taken.

Installed by `start_server(trace=True)` (the load benchmark's `--shots`), before `streamlit run` starts; it
changes no behaviour, it only prints. A line names the session (8 characters of its id), the visitor (as the
session knows it: fmnist_app/visitor.py), and for a rerun the fragment it is for (or `full`), whether the browser's
timer sent it, and the Train page's settings radio as the widget values it carries say.
"""

import asyncio
import collections
import os
import sys
import threading
import time

from starlette.staticfiles import StaticFiles
from streamlit.runtime.app_session import AppSession
from streamlit.runtime.scriptrunner import ScriptRunnerEvent

from fmnist_app import streamlit_fixes

SETTINGS_WIDGET_SUFFIX = "-train_settings"  # pages/train.py's SETTINGS_KEY, as it ends a keyed widget's id.
_runner_numbers: dict[int, int] = {}
THREADS_EVERY = 5.0
SLOW_SECONDS = 5.0
_static_requests: dict[int, tuple[float, str]] = {}  # id(scope) -> (started, path), while unanswered.
_server_loop: list = []  # The server's event loop, once a static file was asked for.


def _runner(runner) -> str:
    """A short label for a script runner, from its id(): a label may come back once its runner is gone."""
    if runner is None:
        return "none"
    return f"r{_runner_numbers.setdefault(id(runner), len(_runner_numbers) + 1)}"


def _print(kind: str, what: str) -> None:
    """One line on stderr: its kind, the time to the millisecond, and what."""
    now = time.time()
    stamp = f"{time.strftime('%H:%M:%S', time.localtime(now))}.{int(now * 1000) % 1000:03d}"
    print(f"{kind} {stamp} {what}", file=sys.stderr, flush=True)


def _say(session: AppSession, what: str) -> None:
    _print("TRACE", f"{session.id[:8]} {what}")


def _settings_value(client_state) -> str:
    for widget in client_state.widget_states.widgets:
        if widget.id.endswith(SETTINGS_WIDGET_SUFFIX):
            return repr(getattr(widget, widget.WhichOneof("value") or "id", "-"))
    return "-"


def _message(forward_msg) -> str:
    if forward_msg is None:
        return "-"
    kind = forward_msg.WhichOneof("type")
    if kind != "delta" or forward_msg.delta.WhichOneof("type") != "new_element":
        return kind or "-"
    element = forward_msg.delta.new_element
    name = element.WhichOneof("type")
    body = getattr(getattr(element, name, None), "body", "") if name else ""
    return f"delta:{name}:{str(body)[:60]!r}"


def _visitor(session: AppSession) -> str:
    # Looked up, not imported: the trace must not change when the app's modules are first imported.
    visitor_module = sys.modules.get("fmnist_app.visitor")
    try:
        return str(session.session_state[visitor_module.SESSION_KEY])
    except (AttributeError, KeyError):
        return "-"  # The session's first run has not made or read the id yet.


_request_rerun = AppSession.request_rerun
_handle_event = AppSession._handle_scriptrunner_event_on_event_loop


def request_rerun(self, client_state) -> None:
    if client_state is not None:
        visitor = _visitor(self)[:8]
        fragment = client_state.fragment_id[:8] if client_state.fragment_id else "full"
        _say(
            self,
            f"rerun-asked visitor={visitor} run={fragment} timer={client_state.is_auto_rerun} "
            f"settings={_settings_value(client_state)} runner={_runner(self._scriptrunner)}",
        )
    _request_rerun(self, client_state)
    _say(self, f"rerun-handled runner={_runner(self._scriptrunner)}")


def handle_event(self, sender, event, forward_msg=None, *args, **kwargs):
    fragments = kwargs.get("fragment_ids_this_run", args[3] if len(args) > 3 else None)
    if sender is not self._scriptrunner:
        _say(
            self,
            f"dropped from={_runner(sender)} current={_runner(self._scriptrunner)} {event.name} "
            f"{_message(forward_msg)}",
        )
    elif event != ScriptRunnerEvent.ENQUEUE_FORWARD_MSG:
        _say(self, f"{event.name} runner={_runner(sender)} fragments={len(fragments) if fragments else 0}")
    return _handle_event(self, sender, event, forward_msg, *args, **kwargs)


_must_wait = streamlit_fixes.rerun_must_wait


def rerun_must_wait(session, client_state) -> bool:
    waits = _must_wait(session, client_state)
    if waits:
        asked = client_state.fragment_id[:8] if client_state is not None and client_state.fragment_id else "full"
        _say(session, f"held-back run={asked} until runner={_runner(session._scriptrunner)} is delivered")
    return waits


def _where(thread: threading.Thread, frame) -> str:
    name = thread.name.rstrip("0123456789-_ ").split(" (")[0] or "?"
    return f"{name} @ {os.path.basename(frame.f_code.co_filename)}:{frame.f_code.co_name}:{frame.f_lineno}"


def _report_threads() -> None:
    # One line at once, then every THREADS_EVERY seconds: a short run (a test) still gets one.
    while True:
        frames = sys._current_frames()
        places = collections.Counter(
            _where(thread, frames[thread.ident]) for thread in threading.enumerate() if thread.ident in frames
        )
        listing = "; ".join(f"{count}x {place}" for place, count in places.most_common(12))
        ages = sorted((time.monotonic() - started, path) for started, path in list(_static_requests.values()))
        late = [f"{path} {age:.0f}s" for age, path in reversed(ages) if age > SLOW_SECONDS]
        _print(
            "THREADS",
            f"{sum(places.values())} threads: {listing}"
            f" | static files unanswered after {SLOW_SECONDS:.0f} s: {len(late)} {late[:3]}",
        )
        if late and _server_loop:
            _server_loop[0].call_soon_threadsafe(_report_tasks)
        time.sleep(THREADS_EVERY)


def _awaiting(coroutine) -> list[str]:
    """Where a coroutine chain stands: file:function:line of each level, then what the innermost one awaits."""
    chain = []
    while coroutine is not None:
        frame = getattr(coroutine, "cr_frame", None) or getattr(coroutine, "ag_frame", None)
        if frame is None:
            chain.append(type(coroutine).__name__)
            break
        chain.append(f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_code.co_name}:{frame.f_lineno}")
        coroutine = getattr(coroutine, "cr_await", None) or getattr(coroutine, "ag_await", None)
    return chain


def _report_tasks() -> None:
    """On the event loop: where its tasks wait (the innermost three levels), and the thread limiter's state."""
    import anyio.to_thread

    places = collections.Counter(" < ".join(_awaiting(task.get_coro())[-3:]) for task in asyncio.all_tasks())
    limiter = anyio.to_thread.current_default_thread_limiter().statistics()
    listing = "; ".join(f"{count}x {place}" for place, count in places.most_common(6))
    _print(
        "TASKS",
        f"{sum(places.values())} tasks; thread tokens {limiter.borrowed_tokens}/{limiter.total_tokens}, "
        f"{limiter.tasks_waiting} waiting: {listing}",
    )


_serve_static = StaticFiles.__call__


async def serve_static(self, scope, receive, send) -> None:
    if not _server_loop:
        _server_loop.append(asyncio.get_running_loop())
    started, path = time.monotonic(), scope.get("path", "?")
    _static_requests[id(scope)] = (started, path)
    try:
        await _serve_static(self, scope, receive, send)
    finally:
        del _static_requests[id(scope)]
        took = time.monotonic() - started
        if took > SLOW_SECONDS:
            _print("SLOW", f"{path} took {took:.1f} s")


StaticFiles.__call__ = serve_static
threading.Thread(target=_report_threads, name="trace-threads", daemon=True).start()
AppSession.request_rerun = request_rerun
streamlit_fixes.rerun_must_wait = rerun_must_wait
AppSession._handle_scriptrunner_event_on_event_loop = handle_event
