"""Fixes for Streamlit races that lost whole page runs under load; the router applies them once per server.

What goes wrong (Streamlit 1.67, seen in benchmarks/classroom_load.py with tests/server_trace.py): a script runner
runs the page on its own thread and hands every message it produces (each element, "run finished") to the
session's event loop, which sends them to the browser. When a rerun request makes the session start a new runner,
every event of the old one is ignored from then on as "from a non-current ScriptRunner". Two requests did that to
runs a browser was waiting for:

- A fragment rerun (the status box's timer asks for one every 2 s) arriving after a page run finished but before
  the loop had delivered its messages (on a loaded server the loop lagged up to a second behind): the whole page run
  that had just finished never reached the browser. A student who chose "Full preset" kept seeing the class demo's
  settings below the radio, with nothing to make the page catch up until the next full run.
- A full rerun (a click on "Train Model 1") arriving while the runner ran the status box's fragment: with
  `runner.fastReruns` (the default) the session stopped that runner and started another for the page, and the
  fragment run's messages were dropped half-way. At 30 sessions with a training running, every such browser stopped
  updating: none of the 30 ever showed its place in the queue.

The fix: rerun requests reach Streamlit one at a time, in the order they came, and one that would make it drop a
run's messages waits on the event loop (re-checking every RETRY_SECONDS) until they are delivered — the runner's
last event clears it — and then goes ahead as before: a fragment rerun waits while a finished run's messages are on
their way; a full rerun waits while the runner runs (or has just run) a fragment. Requests behind a waiting one
wait with it, so a fragment timer cannot overtake a click. Full reruns during a full run are untouched: the new run
replaces the page anyway. If Streamlit changes the attributes read here, the checks answer "no need to wait" and
Streamlit behaves as it does unfixed; tests/test_streamlit_fixes.py fails on such a Streamlit, so an upgrade cannot
drop the fix silently.
"""

import functools

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
    from streamlit.runtime.scriptrunner_utils.script_run_context import SCRIPT_RUN_CONTEXT_ATTR_NAME

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

    def hand_on(session, waited: float) -> None:
        held = session.__dict__[HELD]
        while held:
            if waited < MAX_WAIT_SECONDS and rerun_must_wait(session, held[0]):
                session._event_loop.call_later(RETRY_SECONDS, hand_on, session, waited + RETRY_SECONDS)
                return
            request_rerun(session, held.pop(0))
            waited = 0.0

    @functools.wraps(request_rerun)
    def request_rerun_after_delivery(session, client_state=None) -> None:
        held = session.__dict__.setdefault(HELD, [])
        held.append(client_state)
        if len(held) == 1:  # Otherwise a wait is under way and hands this one on after those before it.
            hand_on(session, 0.0)

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
