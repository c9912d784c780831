"""pages/streamlit_fixes.py: a rerun waits until the messages it would make Streamlit drop are delivered, and reruns
reach Streamlit in the order they came."""

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

from pages import streamlit_fixes
from pages.streamlit_fixes import MAX_WAIT_SECONDS, RETRY_SECONDS, deliver_finished_runs_first


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


def test_a_rerun_is_never_held_back_for_good(loop):
    calls, request_rerun = fixed_request_rerun()
    session = Session(loop, runner(stopped=True, fragment=True))
    tick, click = client_state("status-box"), client_state()
    request_rerun(session, tick)
    request_rerun(session, click)
    run_for(loop, MAX_WAIT_SECONDS + 1)  # The finished runner's last event never comes.
    assert calls == [(session, tick)]  # The click now waits its own turn, again at most MAX_WAIT_SECONDS.
    run_for(loop, MAX_WAIT_SECONDS)
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
    original = AppSession.request_rerun  # Fixed already where an in-process app test ran the router.
    unfixed = getattr(original, "__wrapped__", original)
    try:
        AppSession.request_rerun = unfixed
        assert streamlit_fixes.apply() and streamlit_fixes.apply()
        assert AppSession.request_rerun.delivers_finished_runs_first
        assert AppSession.request_rerun.__wrapped__ is unfixed
    finally:
        AppSession.request_rerun = original
    assert "\nstreamlit_fixes.apply()" in (Path(__file__).parents[1] / "streamlit_app.py").read_text()
