"""This browser as a visitor of a shared server: an id that survives reloads, its training request, the queue.

Streamlit forgets a session on reload, so the visitor id lives in the browser: a cookie (`fmnist_visitor`) holding
a random 128-bit id the app made. The first run of a browser that has none makes one and sets the cookie with a
one-line script (`cookie_script`: the id is the only thing in it, checked to be 32 hexadecimal digits); every later
session of that browser (a reload, a new tab) sends it with its connection and reads it back through
`st.context.cookies`. The page address carries no identity: an old `?visitor=…` is dropped, never read, so a
projected or shared address gives its reader only the view (OWASP session management; CWE-598). Another browser
or a private window has no cookie and so is another visitor.

This id is the app's one notion of "whose job is this": a training request carries it as its owner, and a page
reports a request's outcome (finished, stopped, failed) only to that visitor, beside the settings it ran with
(pages/train.py). Another visitor, who may stop a job only where the classroom rules allow, is told that the
stop was asked for, not how the job ended.
"""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from fmnist_app.common import (
    classroom_settings,
    job_manager,
    link_to_page,
    show_error,
    show_job_progress,
    training_engine,
)
from fmnist_core.config import TrainConfig
from fmnist_core.display import format_duration
from fmnist_core.errors import BusyError, CacheError
from fmnist_core.jobs.classroom import is_visitor_id, may_stop, new_visitor_id
from fmnist_core.jobs.queue import CANCELLED, JobManager, JobStatus
from fmnist_core.store.cache import ModelCache
from fmnist_core.training.pipeline import start_training_job

COOKIE_NAME = "fmnist_visitor"
COOKIE_SECONDS = 180 * 24 * 3600  # A term: the same browser finds its models' ownership all term long.
OLD_ADDRESS_KEY = "visitor"  # Where the id used to live (?visitor=…): removed from the address, never read.
SESSION_KEY = "visitor_id"
# A place in the queue changes every few minutes; polling faster only costs the server CPU that pages need.
QUEUE_REFRESH_SECONDS = 5.0
COOKIE_SET_KEY = "visitor_cookie_set"  # True once this browser sent the cookie with its connection.


def browser_cookies() -> Mapping[str, str]:
    """The cookies this browser sent when its session connected (tests stand a browser in here)."""
    return st.context.cookies


def cookie_script(visitor: str) -> str:
    """The script that keeps `visitor` in this browser's cookie: the id is its only variable part, and must be one
    `new_visitor_id` could have made (so no text a user chose can ever reach it)."""
    if not is_visitor_id(visitor):
        raise ValueError(f"not a visitor id: {visitor!r}")
    return (
        f'<script>document.cookie = "{COOKIE_NAME}={visitor}; path=/; max-age={COOKIE_SECONDS}; SameSite=Strict"'
        ' + (location.protocol === "https:" ? "; Secure" : "");</script>'
    )


def visitor_id() -> str:
    """This browser's visitor id: read from its cookie when the session connected, or made now (see the module)."""
    known = st.session_state.get(SESSION_KEY)
    if known is None:
        offered = browser_cookies().get(COOKIE_NAME)
        known = offered if is_visitor_id(offered) else new_visitor_id()
        st.session_state[SESSION_KEY] = known
        st.session_state[COOKIE_SET_KEY] = known == offered
    return known


def keep_visitor_in_browser() -> None:
    """The router's part, once per run: an old `?visitor=` leaves the address, and a session that came without the
    cookie writes it. The script is drawn on every run of such a session: the element stays in place, so it runs once
    in the browser, and a run cut short by a rerun cannot lose it."""
    visitor = visitor_id()
    if OLD_ADDRESS_KEY in st.query_params:
        del st.query_params[OLD_ADDRESS_KEY]
    if not st.session_state[COOKIE_SET_KEY]:
        st.sidebar.html(cookie_script(visitor), unsafe_allow_javascript=True)


def my_request(manager: JobManager, kind: str = "train") -> JobStatus | None:
    """This visitor's latest request of a kind (waiting, running or over), or None."""
    return manager.latest(kind, owner=visitor_id())


def ask_to_train(name: str, config: TrainConfig, cache: ModelCache | None = None, retrain: bool = False) -> None:
    """Put this visitor's training in the queue and rerun the page to show it; say why when it is refused."""
    try:
        start_training_job(
            job_manager(), name, config, cache=cache, owner=visitor_id(), retrain=retrain, runner=training_engine()
        )
    except (BusyError, CacheError) as error:
        show_error(error)
        return
    st.rerun()


def wait_text(manager: JobManager, status: JobStatus) -> str:
    """'Number 2 in the queue; it should start in about 1 min 30 s.' (or why the time is not known)."""
    place = manager.position(status.job_id)
    seconds = manager.seconds_until_start(status.job_id)
    when = (
        f"it should start in about {format_duration(seconds)}"
        if seconds is not None
        else "its start time is not known yet (this machine has not measured a training ahead of it)"
    )
    return f"**{status.title}** is number {place} in the queue; {when}."


def waiting_request(manager: JobManager, status: JobStatus) -> None:
    """A visitor's waiting request: its place, when it should start, and what runs now."""
    st.info(wait_text(manager, status), icon="⏳")
    for running in manager.running():
        show_job_progress(running)


def machine_activity(manager: JobManager) -> None:
    """What keeps the machine busy, for visitors who did not ask for it: each running job and the queue."""
    visitor, settings = visitor_id(), classroom_settings()
    for job in manager.running():
        show_job_progress(job)
        if may_stop(job.owner, visitor, settings):
            st.button("Stop it", icon="⏹️", key=f"stop-{job.job_id}", on_click=stop_for_another, args=(job.job_id,))
    waiting = len(manager.queue())
    if waiting:
        st.caption(f"{waiting} training request{'s' if waiting > 1 else ''} waiting; a new one joins the end.")


def stop_for_another(job_id: int) -> None:
    """Stop a job this visitor did not ask for (a button callback); its outcome stays its owner's to read."""
    manager = job_manager()
    status = manager.status(job_id)
    if status is not None and manager.cancel(job_id):
        st.toast(f"Stop asked for {status.title}: it ends after the current batch; nothing half-trained is saved.")


def something_to_show(manager: JobManager) -> bool:
    """True while this visitor has a request in progress or the machine is busy with anyone's."""
    mine = my_request(manager)
    return bool((mine is not None and mine.active) or manager.running() or manager.queue())


def withdrawn(status: JobStatus | None) -> bool:
    """True for a request its visitor cancelled before it started."""
    return status is not None and status.state == CANCELLED and status.started is None


def say_withdrawn(status: JobStatus) -> None:
    st.info(f"You cancelled {status.title} before it started.", icon="✖️")


def training_status_box(report_withdrawn: bool = False) -> None:
    """Shown while `something_to_show`: this visitor's request, or what keeps the machine busy (updates itself).
    When the request starts, the page reruns: the Train page then draws the run live, other pages its progress.

    `report_withdrawn` (the Train page): the box also says when this visitor's latest request was cancelled
    before it started. That line lives in the box, which redraws itself every few seconds, because a line drawn
    beside it went missing in the browser for up to 7 of 10 loaded sessions (benchmarks/classroom_load.py: the
    server sent it, the page's HTML no longer held it); inside the box, a lost line comes back at the next redraw.
    """
    manager = job_manager()
    mine = my_request(manager)
    if mine is None or not (mine.active or (report_withdrawn and withdrawn(mine))):
        _status_box(None, None)
        return
    _status_box(mine.job_id, mine.state)
    if mine.queued:
        # Outside the self-refreshing box: a click is one plain rerun of the page, which shows the request cancelled
        # (inside it, the click reran the box, which then had to rerun the page).
        st.button(
            "Cancel my request",
            icon="✖️",
            key=f"cancel-{mine.job_id}",
            on_click=manager.cancel,
            args=(mine.job_id,),
            help="Leaves the queue; nothing runs and nothing changes in the cache.",
        )


@st.fragment(run_every=QUEUE_REFRESH_SECONDS)
def _status_box(mine_id: int | None, drawn_state: str | None) -> None:
    # The whole page reruns when what it drew around this box is out of date: this visitor's request changed state
    # (it started, so Cancel gives way to the live run; or it ended) or the machine fell quiet.
    manager = job_manager()
    mine = manager.status(mine_id) if mine_id is not None else None
    if mine is not None and mine.state != drawn_state:
        st.rerun()
    if (mine is None or not mine.active) and not (manager.running() or manager.queue()):
        st.rerun()
    if mine is not None and mine.queued:
        waiting_request(manager, mine)
    elif mine is not None and mine.running:
        show_job_progress(mine)
        link_to_page("pages/train.py", label="Watch your curves on the Train page", icon="🏋️")
    else:
        if withdrawn(mine):
            say_withdrawn(mine)
        machine_activity(manager)
