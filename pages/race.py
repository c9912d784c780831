"""GPU vs CPU race: Model 1 trains and predicts on every lane while the timers tick, or a recorded race replays.

Lanes run on the Keras backends chosen here (TensorFlow, JAX, PyTorch: those installed on this machine). The
race runs in the shared job manager's worker thread; a fragment redraws the lanes twice a second from the job's
snapshot, so the page stays responsive and coming back shows the race still running. A race recorded elsewhere
(the CLI on a GPU machine) replays at true speed with the same lane rows.
"""

import json
import math
import time

import streamlit as st

from fmnist_app import views
from fmnist_app.common import (
    classroom_settings,
    job_manager,
    race_summary,
    show_error,
    show_job_progress,
)
from fmnist_app.visitor import stop_for_another, visitor_id
from fmnist_core.data.fashion_mnist import TRAIN_SET_IMAGES
from fmnist_core.display import format_duration
from fmnist_core.errors import ConfigError, FmnistError
from fmnist_core.jobs.classroom import may_stop
from fmnist_core.jobs.queue import CANCELLED, DONE, FAILED
from fmnist_core.machine import usable_cores
from fmnist_core.race.backends import BACKENDS, DEFAULT_BACKEND
from fmnist_core.race.file import RaceFileError, RaceResult, list_races, parse_race
from fmnist_core.race.lane import LANE_KINDS, Workload
from fmnist_core.race.plan import plan_lanes
from fmnist_core.race.runner import (
    PHASE_TITLES,
    LaneView,
    RaceLive,
    RaceOptions,
    live_state,
    replay_duration,
    replay_ready,
    replay_state,
    start_race_job,
)

REFRESH_SECONDS = 0.5
REPLAY_TAB = "Replay a recorded race"
RACE_KEY = "race_replayed"  # The past or recorded race picked for replay (an index into list_races()).
MEDALS = {1: "🥇", 2: "🥈", 3: "🥉"}
REPLAY_MODES = {True: "Start together at the gun", False: "One after another, as they ran"}
RECORD_HINT = (
    "Record one on a GPU machine with `python -m fmnist_core race --backend jax --out race.json` (or "
    "`scripts/gpu_race.sh`), then upload it here."
)


def chosen_backends() -> tuple[str, ...]:
    """The backends to race, among those installed here; the others say how to install them."""
    installed = [name for name, backend in BACKENDS.items() if backend.installed]
    chosen = st.multiselect(
        "Keras backends",
        installed,
        default=[DEFAULT_BACKEND] if DEFAULT_BACKEND in installed else installed[:1],
        format_func=lambda name: BACKENDS[name].title,
        help="Keras 3 runs the same Model 1 on each backend; every backend gets its own GPU and CPU lanes.",
    )
    for name, backend in BACKENDS.items():
        if name not in installed:
            st.caption(backend.missing_message)
    return tuple(name for name in BACKENDS if name in chosen)  # In the registry's order, whatever the click order.


def lane_row(view: LaneView) -> None:
    """One lane: name and place, phase progress and race timer, then warm-up, speed and run in small print."""
    name, progress, timer = st.columns([2.2, 5, 1.6], vertical_alignment="center")
    name.markdown(f"**{view.label}** {MEDALS.get(view.place, f'#{view.place}' if view.place else '')}")
    if view.status == "unavailable":
        progress.caption(f"🚫 {view.note}")
        return
    name.caption(view.precision)
    progress.progress(view.fraction, text=f"{PHASE_TITLES[view.phase]} · {view.fraction:.0%}")
    timer.markdown(f"⏱ **{format_duration(view.race_seconds)}**", help="Race time: training plus inference.")
    details = [f"start-up and warm-up {format_duration(view.warmup_seconds)} (not scored)"]
    if view.train_images_per_second:
        details.append(f"training {view.train_images_per_second:,.0f} images/s")
    if view.inference_images_per_second:
        details.append(f"inference {view.inference_images_per_second:,.0f} images/s")
    if view.repeat and view.repeats > 1:
        details.append(f"run {max(view.repeat, 1)} of {view.repeats}")
    st.caption(" · ".join(details))


def show_lanes(views: list[LaneView]) -> None:
    for view in views:
        with st.container(border=True):
            lane_row(view)


def times_chart(result: RaceResult):
    """Median seconds per lane (bars), min–max over repeats (rules), speed-up labels; training and inference apart."""
    import altair as alt
    import pandas as pd

    from fmnist_core.race.summary import PHASE_WORDS

    table = pd.DataFrame(result.summary_rows())
    table["phase"] = table["phase"].map(PHASE_WORDS)
    baseline = result.speedups["baseline"]
    table["speed-up"] = [
        "baseline" if lane_id == baseline else f"{value:.2f}× faster" if value >= 1 else f"{1 / value:.2f}× slower"
        for lane_id, value in zip(table["lane_id"], table["speedup"], strict=True)
    ]
    order = [lane.label for lane_id in result.finish_order for lane in result.lanes if lane.lane_id == lane_id]
    # labelLimit 0: whole lane names ('TensorFlow · CPU, 2 cores' and '… 1 core' read alike when cut at 180 px).
    base = alt.Chart().encode(y=alt.Y("lane:N", sort=order, title=None, axis=alt.Axis(labelLimit=0)))
    bars = base.mark_bar().encode(
        x=alt.X("seconds:Q", title="Median seconds (lower is faster)"),
        color=alt.Color("lane:N", sort=order, legend=None),
        tooltip=[
            "lane",
            "phase",
            alt.Tooltip("seconds:Q", format=".3f"),
            alt.Tooltip("images_per_second:Q", format=",.0f"),
            "speed-up",
        ],
    )
    spread = base.mark_rule(color="black").encode(x="min_seconds:Q", x2="max_seconds:Q")
    labels = base.mark_text(align="left", dx=6).encode(x="max_seconds:Q", text="speed-up:N")
    return (
        alt.layer(bars, spread, labels, data=table)
        .properties(height=40 * len(order) + 20, width=460)
        .facet(row=alt.Row("phase:N", title=None, sort=list(PHASE_WORDS.values())))
        .resolve_scale(x="independent")
    )


def show_result(result: RaceResult, key: str) -> None:
    """Finish order, the chart, the table and the downloadable race file."""
    if not result.finish_order:
        st.info("No lane ran in this race.", icon="🚫")
        return
    labels = {lane.lane_id: lane.label for lane in result.lanes}
    scores = {lane.lane_id: lane.representative.race_seconds for lane in result.lanes if lane.repeats}
    st.header("Finish order")
    st.markdown(
        "  \n".join(
            f"{MEDALS.get(place, f'{place}.')} **{labels[lane_id]}** — {format_duration(scores[lane_id])} scored"
            for place, lane_id in enumerate(result.finish_order, start=1)
        )
    )
    baseline = labels.get(result.speedups["baseline"], "—")
    st.caption(
        f"Speed-up against {baseline}, from the median of {result.repeats} run(s); the black lines span the "
        "fastest and slowest run."
    )
    st.altair_chart(times_chart(result))
    race_summary(result)
    with st.expander("Machine and workload"):
        st.json({"machine": result.machine, "workload": result.workload.to_dict()}, expanded=False)
    st.download_button(
        "Download the race file (JSON)",
        json.dumps(result.to_dict(), indent=1),
        file_name=f"race-{result.created[:19].replace(':', '-')}.json",
        mime="application/json",
        key=f"download-{key}",
        icon="💾",
    )


def race_options(backends: tuple[str, ...]) -> RaceOptions | None:
    """The options expander; the validated options, or None after showing why they are invalid."""
    if not backends:
        st.warning("Choose at least one backend to race.", icon="☝️")
        return None
    with st.expander("Race options"):
        left, right = st.columns(2)
        repeats = left.number_input("Runs per lane (the median counts)", min_value=1, max_value=5, value=1)
        batches = right.number_input(
            "Training batches of 256 images",
            min_value=10,
            max_value=TRAIN_SET_IMAGES // Workload.batch_size,
            value=Workload.train_batches,
            step=10,
        )
        st.caption(
            "Every lane runs the same work: Model 1, the same seed and images fed from NumPy, batch 256, "
            f"{Workload().precision_text} (shown on each lane), {Workload().jit_text}, then predicts the 10,000 "
            "test images."
        )
    try:
        return RaceOptions(Workload(train_batches=int(batches)), LANE_KINDS, int(repeats), backends)
    except ConfigError as error:
        show_error(error)
        return None


def other_job_notice() -> bool:
    """When another heavy job (training) runs, say so with a way to stop it; True if one runs."""
    manager = job_manager()
    current = manager.current()
    if current is None or not current.running or current.kind == "race":
        return False
    st.info(
        f"{current.title} is running, and only one heavy job runs at a time, so the race waits. Let it "
        "finish, or stop it to race now.",
        icon="⏳",
    )
    show_job_progress(current)
    if may_stop(current.owner, visitor_id(), classroom_settings()):
        st.button("Stop it", icon="⏹️", key="stop-other-job", on_click=stop_for_another, args=(current.job_id,))
    return True


@st.fragment(run_every=REFRESH_SECONDS)
def live_race(job_id: int) -> None:
    """The running race, redrawn twice a second from the job's latest snapshot."""
    manager = job_manager()
    status = manager.status(job_id)
    if status is None or not status.running:
        st.rerun()  # The whole page, so it shows how the race ended.
    live: RaceLive | None = status.details.get("race")
    st.progress(status.fraction, text=f"{status.message} · {format_duration(status.elapsed)}")
    if live is None:
        st.caption("Asking each backend which devices it sees…")
    else:
        show_lanes(live_state(live, time.time()))
    st.button(
        "Stop the race",
        icon="⏹️",
        key="stop-race",
        on_click=manager.cancel,
        args=(job_id,),
        help="Ends the running lane process at once; nothing is saved.",
    )


def race_here() -> None:
    st.caption(
        "Lanes run **one after another**, each in a fresh process, so no lane steals another's cores; the "
        "finish order ranks them as if they had started together. Only training and inference are "
        "scored; start-up and warm-up are shown but not scored."
    )
    manager = job_manager()
    latest = manager.latest("race")
    if latest is not None and latest.running:
        live_race(latest.job_id)
        return
    backends = chosen_backends()
    options = race_options(backends)
    busy = other_job_notice()
    if st.button("Start the race", type="primary", icon="🏁", disabled=busy or options is None):
        try:
            start_race_job(manager, options)
        except FmnistError as error:  # Busy, or a races folder that cannot be written.
            show_error(error)
        else:
            st.rerun()
    if latest is not None and latest.state == DONE:
        st.success(f"Race finished in {format_duration(latest.elapsed)} and kept with the past races.", icon="🏁")
        show_lanes(replay_state(latest.result, math.inf))
        show_result(latest.result, "live")
        return
    if latest is not None and latest.state == FAILED:
        st.error(f"The race failed: {latest.error}", icon="⚠️")
    elif latest is not None and latest.state == CANCELLED:
        st.info("The race was stopped; nothing was saved.", icon="⏹️")
    if not backends:
        return
    # The preview imports no backend and starts no process: which GPUs each backend sees is asked (in a fresh
    # process per backend, seconds each) only when a race starts, so opening this page stays instant.
    cpu_kinds = tuple(kind for kind in LANE_KINDS if kind != "gpu")
    lanes = plan_lanes(backends, cpu_kinds, {}, usable_cores())
    show_lanes(live_state(RaceLive(Workload(), lanes, 1), time.time()))
    st.caption(
        "GPU lanes: when the race starts, each backend is asked which GPUs it sees; one that sees none gets a "
        "lane that says so, and you can replay a race recorded on a GPU machine in the next tab."
    )


def chosen_race() -> tuple[str, RaceResult] | None:
    """A past, recorded or uploaded race chosen by the user, with a key identifying it; None if none is usable."""
    source = st.radio("Race to replay", ["Past and recorded races", "Upload a race file"], horizontal=True)
    if source == "Upload a race file":
        uploaded = st.file_uploader("Race file (JSON)", type="json", help=RECORD_HINT)
        if uploaded is None:
            st.caption(RECORD_HINT)
            return None
        try:
            return f"upload-{uploaded.file_id}", parse_race(uploaded.getvalue(), uploaded.name)
        except RaceFileError as error:
            show_error(error)
            return None
    races = list_races()
    if not races:
        st.info(f"No races yet: start one in the first tab. {RECORD_HINT}", icon="📭")
        return None
    names = {race.path.name: index for index, race in enumerate(races)}
    # A link may name the race to open on (the Home page's, a teacher's).
    views.arrive("race", [views.Field(views.RACE, RACE_KEY, views.one_of(names, "past or recorded race"))])
    if st.session_state.get(RACE_KEY) not in names.values():
        st.session_state[RACE_KEY] = 0
    index = st.selectbox(
        "Race", range(len(races)), format_func=lambda i: f"[{races[i].origin}] {races[i].label}", key=RACE_KEY
    )
    stored = races[index]
    views.keep_view("race", {views.RACE: stored.path.name})
    if stored.result is None:
        show_error(RaceFileError(f"{stored.path.name} cannot be replayed: {stored.problem}"))
        return None
    return str(stored.path), stored.result


@st.fragment(run_every=REFRESH_SECONDS)
def replaying(result: RaceResult, started: float, together: bool) -> None:
    """The replay at true speed; hands back to the whole page when it reaches the finish."""
    elapsed = time.time() - started
    if elapsed > replay_duration(result, together):
        st.rerun()
    st.caption(f"Replay clock {format_duration(elapsed)} of {format_duration(replay_duration(result, together))}")
    show_lanes(replay_state(result, elapsed, together))


def replay_tab() -> None:
    choice = chosen_race()
    if choice is None:
        return
    key, result = choice
    st.info(f"Recorded race: {result.recorded_label}; {result.workload.precision_text}.", icon="📼")
    together = st.radio("Replay", list(REPLAY_MODES), format_func=REPLAY_MODES.get, horizontal=True)
    play, finish = st.columns(2)
    if play.button("Replay at true speed", icon="▶️", type="primary"):
        st.session_state.race_replay = {"key": key, "started": time.time()}
    if finish.button("Jump to the finish", icon="⏭️"):
        st.session_state.race_replay = {"key": key, "started": -math.inf}
    state = st.session_state.get("race_replay")
    if state is None or state["key"] != key:
        show_lanes(replay_ready(result))
    elif time.time() - state["started"] <= replay_duration(result, together):
        replaying(result, state["started"], together)
    else:
        show_lanes(replay_state(result, math.inf, together))
        show_result(result, key)


st.title("🏁 GPU vs CPU race")
st.write(
    "Model 1 trains on the same images and then classifies the 10,000 test images on every device: watch "
    "the lanes, their timers and the finish order."
)
here, recorded = st.tabs(
    ["Race on this machine", REPLAY_TAB], default=REPLAY_TAB if views.RACE in st.query_params else None
)
with here:
    race_here()
with recorded:
    replay_tab()
