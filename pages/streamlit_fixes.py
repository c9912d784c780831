"""A fix for a Streamlit race that lost whole page runs under load; the router applies it once per server.

What goes wrong (Streamlit 1.67, seen in benchmarks/classroom_load.py with tests/server_trace.py): a script runner
runs the page on its own thread and hands every message it produces (each element, "run finished") to the
session's event loop, which sends them to the browser. A page run can finish before that loop has delivered
its messages: on a loaded server the loop lagged up to a second behind. If a fragment rerun arrives in that gap
(the status box's timer asks for one every 2 s), the session sees a finished runner, starts a new one for the
fragment, and from then on ignores every event of the old runner as "from a non-current ScriptRunner": the whole
page run that had just finished never reaches the browser. A student who chose "Full preset" kept seeing the
class demo's settings below the radio, with nothing to make the page catch up until the next full run.

The fix: a fragment rerun that arrives while the session's runner has finished but its messages are still on
their way waits on the event loop (re-checking every RETRY_SECONDS) until they are delivered — the runner's last
event clears it — and then goes ahead as before. Full-page reruns are untouched: they replace the page anyway.
If Streamlit changes the attributes read here, the check answers "no need to wait" and Streamlit behaves as it
does unfixed; tests/test_streamlit_fixes.py fails on such a Streamlit, so an upgrade cannot drop the fix silently.
"""

import functools

RETRY_SECONDS = 0.05
MAX_WAIT_SECONDS = 10.0  # Then the rerun goes ahead anyway: a fragment rerun is never lost.


def _has_finished(runner) -> bool:
    """Whether a script runner has stopped taking rerun requests (its run finished or was stopped)."""
    state = getattr(getattr(runner, "_requests", None), "_state", None)
    return getattr(state, "name", None) == "STOP"


def fragment_rerun_must_wait(session, client_state) -> bool:
    """True when `client_state` asks to rerun a fragment and the session's runner has finished a run whose
    messages the event loop has not delivered yet (the runner's last event sets `_scriptrunner` to None)."""
    runner = getattr(session, "_scriptrunner", None)
    return client_state is not None and bool(client_state.fragment_id) and runner is not None and _has_finished(runner)


def deliver_finished_runs_first(request_rerun):
    """`AppSession.request_rerun`, made to hold a fragment rerun back until the finished run's messages are out."""

    @functools.wraps(request_rerun)
    def request_rerun_after_delivery(session, client_state=None, waited: float = 0.0) -> None:
        if waited < MAX_WAIT_SECONDS and fragment_rerun_must_wait(session, client_state):
            session._event_loop.call_later(
                RETRY_SECONDS, request_rerun_after_delivery, session, client_state, waited + RETRY_SECONDS
            )
            return
        request_rerun(session, client_state)

    request_rerun_after_delivery.delivers_finished_runs_first = True
    return request_rerun_after_delivery


def apply() -> bool:
    """Install the fix in this server process (once); False where this Streamlit has no AppSession to fix."""
    try:
        from streamlit.runtime.app_session import AppSession
    except ImportError:
        return False
    if not getattr(AppSession.request_rerun, "delivers_finished_runs_first", False):
        AppSession.request_rerun = deliver_finished_runs_first(AppSession.request_rerun)
    return True
