"""The GPU-vs-CPU race: Model 1 on every device a Keras backend sees, timed fairly, shown live or replayed.

Lanes, for each backend raced (TensorFlow, JAX, PyTorch; fmnist_core.race.backends): each GPU it sees, "CPU, all
cores" and "CPU, 1 core". They run one after another (fair on a small machine: no lane steals another's
cores), in rounds when repeated, each repeat in a fresh process (race_lane.py, lane_process.py).
Only training and inference are scored; setup and warm-up are shown. The finish order ranks lanes by
scored time, as if they had started together. Results are saved as race files (race_file.py); a replay
starts the lanes together at the gun, or plays them back one after another.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from fmnist_core.errors import ConfigError
from fmnist_core.jobs.queue import JobContext, JobManager, JobStatus
from fmnist_core.paths import writable_cache_folder
from fmnist_core.race.backends import BACKENDS, DEFAULT_BACKEND, require_installed
from fmnist_core.race.file import LaneResult, RaceResult, RepeatResult, store_race
from fmnist_core.race.lane import LANE_KINDS, SCORED_PHASES, Event, LaneError, Workload
from fmnist_core.race.lane_process import run_lane_process
from fmnist_core.race.plan import RECORDED, plan_lanes, race_machine, unavailable_note

PHASE_TITLES = {
    "": "waiting",
    "setup": "starting",
    "warmup": "warming up",
    "train": "training",
    "inference": "inference",
    "done": "finished",
}


@dataclass(frozen=True)
class RaceOptions:
    """What to race: the workload every lane runs, on which backends, which lanes, and how often."""

    workload: Workload = Workload()  # Model, data subset, batch size: identical on every lane.
    lanes: tuple[str, ...] = LANE_KINDS  # Lane kinds, in running order: "gpu" means every GPU the backend sees.
    repeats: int = 3  # Runs per lane (in rounds); the median is reported and min/max show the spread.
    backends: tuple[str, ...] = (DEFAULT_BACKEND,)  # Keras backends, each with all the lanes, in this order.

    def __post_init__(self) -> None:
        unknown = [kind for kind in self.lanes if kind not in LANE_KINDS]
        if unknown or not self.lanes or len(set(self.lanes)) != len(self.lanes):
            raise ConfigError(f"Lanes must be distinct and among {', '.join(LANE_KINDS)} (got {','.join(self.lanes)}).")
        odd = [name for name in self.backends if name not in BACKENDS]
        if odd or not self.backends or len(set(self.backends)) != len(self.backends):
            raise ConfigError(
                f"Backends must be distinct and among {', '.join(BACKENDS)} (got {','.join(self.backends)})."
            )
        if not isinstance(self.repeats, int) or not 1 <= self.repeats <= 20:
            raise ConfigError(f"Repeats must be a whole number from 1 to 20 (got {self.repeats!r}).")


def parse_lanes(text: str) -> tuple[str, ...]:
    """'gpu,cpu-all' → ('gpu', 'cpu-all'); unknown names raise ConfigError when RaceOptions is built."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


# Lane displays, live and replayed -------------------------------------------------------------------


@dataclass(frozen=True)
class LaneView:
    """What one lane row shows at one moment, whether the race is live or replayed."""

    lane_id: str
    label: str
    status: str  # "waiting", "running", "done" or "unavailable".
    note: str | None  # Why a lane is unavailable, in one short line ("no GPU on the recording machine").
    phase: str  # One of PHASES ("" before the lane starts).
    fraction: float  # Share of the phase done, 0..1.
    lane_seconds: float  # Lane clock: setup and warm-up included.
    race_seconds: float  # Scored time so far: training plus inference.
    warmup_seconds: float  # Setup plus warm-up so far (not scored).
    train_images_per_second: float | None
    inference_images_per_second: float | None
    repeat: int  # Repeats finished or running (1-based); 0 before the first, and in replays (one run shown).
    repeats: int
    place: int | None = None  # 1 = fastest, once the lane is done.
    precision: str | None = None  # The Keras dtype policy the lane runs ("float32", "mixed_bfloat16").


def _view(
    lane: LaneResult,
    events: tuple[Event, ...],
    clock: float,
    workload: Workload,
    repeat: int,
    repeats: int,
    status: str | None = None,
) -> LaneView:
    """The lane at `clock` seconds into its run, computed from its events; a lane that is not running any more
    shows the race file's figures (the medians of its repeats, as the summary table), not its one run's."""
    passed = [event for event in events if event[0] <= clock]
    now_at, phase, fraction = passed[-1] if passed else (0.0, "setup" if clock >= 0 else "", 0.0)
    done = phase == "done" or (phase == "inference" and fraction >= 1)  # The score is complete.
    end = now_at if done else max(clock, 0.0)
    spans: dict[str, list[float]] = {}  # phase → [first event, last event or now while running]
    for at, name, _ in passed:
        spans.setdefault(name, [at, at])[1] = at
    if phase in spans and not done and fraction < 1:
        spans[phase][1] = end
    seconds = {name: spans[name][1] - spans[name][0] if name in spans else 0.0 for name in SCORED_PHASES}
    last_fraction = {name: share for _, name, share in passed}

    finished = lane.median if lane.repeats and status != "running" and done else {}

    def rate(name: str, images: int) -> float | None:
        if f"{name}_images_per_second" in finished:
            return finished[f"{name}_images_per_second"]
        return images * last_fraction[name] / seconds[name] if seconds[name] > 0 else None

    return LaneView(
        lane.lane_id,
        lane.label,
        status or ("done" if done else "running" if clock >= 0 else "waiting"),
        None,
        phase,
        fraction,
        end,
        sum(seconds.values()),
        spans["train"][0] if "train" in spans else end,
        rate("train", workload.train_images),
        rate("inference", workload.inference_images),
        repeat,
        repeats,
        precision=lane.precision,
    )


def _waiting_view(lane: LaneResult, repeats: int) -> LaneView:
    return LaneView(
        lane.lane_id, lane.label, "waiting", None, "", 0.0, 0.0, 0.0, 0.0, None, None, 0, repeats, None, lane.precision
    )


def _unavailable_view(lane: LaneResult, repeats: int, machine: str = "this machine") -> LaneView:
    """A lane that could not run on `machine` ("this machine", "the recording machine"), in one short line."""
    note = unavailable_note(lane, machine)
    return LaneView(lane.lane_id, lane.label, "unavailable", note, "", 0.0, 0.0, 0.0, 0.0, None, None, 0, repeats)


def _with_places(views: list[LaneView]) -> list[LaneView]:
    done = sorted((view for view in views if view.status == "done"), key=lambda view: view.race_seconds)
    places = {view.lane_id: place for place, view in enumerate(done, start=1)}
    return [replace(view, place=places.get(view.lane_id)) for view in views]


def _without_pause(events: tuple[Event, ...]) -> tuple[Event, ...]:
    """The events with the unscored pause between the end of training and the start of inference cut out."""
    train_end = next((at for at, phase, fraction in events if phase == "train" and fraction >= 1), None)
    inference_start = next((at for at, phase, _ in events if phase == "inference"), None)
    if train_end is None or inference_start is None:
        return events
    pause = inference_start - train_end
    return tuple((at - pause if at >= inference_start else at, phase, fraction) for at, phase, fraction in events)


def _replay_runs(result: RaceResult, together: bool) -> dict[str, tuple[float, tuple[Event, ...]]]:
    """Lane id → (start on the replay clock, events) of each lane's representative repeat."""
    runs = {lane.lane_id: lane.representative.events for lane in result.lanes if lane.representative is not None}
    if together:
        runs = {lane_id: _without_pause(events) for lane_id, events in runs.items()}
        guns = {lane_id: next(at for at, phase, _ in events if phase == "train") for lane_id, events in runs.items()}
        return {lane_id: (max(guns.values()) - guns[lane_id], events) for lane_id, events in runs.items()}
    timed, start = {}, 0.0
    for lane_id, events in runs.items():
        timed[lane_id], start = (start, events), start + events[-1][0]
    return timed


def replay_duration(result: RaceResult, together: bool = True) -> float:
    """Seconds a true-speed replay lasts."""
    return max((start + events[-1][0] for start, events in _replay_runs(result, together).values()), default=0.0)


def replay_ready(result: RaceResult) -> list[LaneView]:
    """Every lane of a recorded race before its replay starts: nothing has run yet."""
    return [
        _waiting_view(lane, result.repeats) if lane.repeats else _unavailable_view(lane, result.repeats, RECORDED)
        for lane in result.lanes
    ]


def replay_state(result: RaceResult, elapsed_seconds: float, together: bool = True) -> list[LaneView]:
    """Every lane as it was `elapsed_seconds` into a true-speed replay of its representative repeat.

    together: lanes are lined up to start training at the same moment, and the unscored pause before
    inference is left out, so they cross the line in the finish order; otherwise they play one after
    another, exactly as they ran.
    """
    runs = _replay_runs(result, together)
    views = [
        _view(
            lane,
            runs[lane.lane_id][1],
            elapsed_seconds - runs[lane.lane_id][0],
            result.workload,
            0,
            result.repeats,
        )
        if lane.lane_id in runs
        else _unavailable_view(lane, result.repeats, RECORDED)
        for lane in result.lanes
    ]
    return _with_places(views)


@dataclass(frozen=True)
class RaceLive:
    """A race in progress as the page and the terminal see it (immutable: safe to share between threads)."""

    workload: Workload
    lanes: tuple[LaneResult, ...]  # With the repeats finished so far.
    repeats: int  # Planned repeats per lane.
    running: int | None = None  # Index of the lane whose process runs now.
    running_since: float = 0.0  # Wall-clock time (time.time()) that process was launched.
    events: tuple[Event, ...] = ()  # Its events so far.

    @property
    def fraction(self) -> float:
        """Share of all planned lane runs finished."""
        runnable = [lane for lane in self.lanes if lane.available]
        planned = len(runnable) * self.repeats
        return sum(len(lane.repeats) for lane in runnable) / planned if planned else 1.0

    @property
    def message(self) -> str:
        if self.running is None:
            return "Starting…" if self.fraction < 1 else "Finished."
        lane = self.lanes[self.running]
        phase = self.events[-1][1] if self.events else "setup"
        return f"Round {len(lane.repeats) + 1}/{self.repeats} · {lane.label} · {PHASE_TITLES[phase]}"


def live_state(live: RaceLive, now: float) -> list[LaneView]:
    """Every lane of a running race at wall-clock time `now`; the running lane's timer ticks with `now`."""
    views = []
    for index, lane in enumerate(live.lanes):
        finished = len(lane.repeats)
        if not lane.available:
            views.append(_unavailable_view(lane, live.repeats))
        elif index == live.running:
            views.append(
                _view(lane, live.events, now - live.running_since, live.workload, finished + 1, live.repeats, "running")
            )
        elif finished:
            views.append(
                _view(
                    lane,
                    lane.representative.events,
                    math.inf,
                    live.workload,
                    finished,
                    live.repeats,
                    "done" if finished == live.repeats else "waiting",
                )
            )
        else:
            views.append(_waiting_view(lane, live.repeats))
    return _with_places(views)


def finished_run_view(live: RaceLive, lane_index: int, run_index: int) -> LaneView:
    """One finished repeat of one lane with its own times (a log line per run, not the lane's median so far)."""
    lane = live.lanes[lane_index]
    run = lane.repeats[run_index]
    alone = replace(lane, repeats=(run,))  # Its figures are that run's, not the median of the runs so far.
    return _view(alone, run.events, math.inf, live.workload, run_index + 1, live.repeats, "done")


# Running a race ---------------------------------------------------------------------------------------


def _republish(notify: Callable[[RaceLive], None], live: RaceLive) -> Callable[[tuple[Event, ...]], None]:
    """A lane-process callback that publishes `live` with the running lane's events so far."""
    return lambda events: notify(replace(live, events=events))


def run_race(
    options: RaceOptions,
    on_event: Callable[[RaceLive], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> RaceResult:
    """Run every lane `options.repeats` times, one lane process at a time, in rounds.

    on_event(live) gets a RaceLive snapshot at every lane event and about ten times a second meanwhile.
    should_stop: when it turns true the running lane process is ended and RaceCancelled is raised.
    A GPU lane that fails (driver, memory) is reported as unavailable; a failing CPU lane raises LaneError.
    """
    require_installed(options.backends)
    machine = race_machine(options.backends, "gpu" in options.lanes, should_stop)
    gpus = {name: facts.get("gpus", []) for name, facts in machine["backends"].items()}
    lanes = plan_lanes(options.backends, options.lanes, gpus, machine["cpu_cores"], options.workload)
    live = RaceLive(options.workload, lanes, options.repeats)
    if not any(lane.available for lane in live.lanes):
        reasons = " ".join(lane.unavailable_reason for lane in live.lanes)
        raise LaneError(f"No lane can run on this machine. {reasons} Add a CPU lane (--lanes gpu,cpu-all,cpu-1).")
    from fmnist_core.data.loading import load_fashion_mnist

    load_fashion_mnist()  # Fails early with how to get the data; leaves parsed arrays cached for the lanes.
    notify = on_event or (lambda snapshot: None)
    for _ in range(options.repeats):
        for index, lane in enumerate(live.lanes):
            if not live.lanes[index].available:
                continue
            live = replace(live, running=index, running_since=time.time(), events=())
            notify(live)
            try:
                record = run_lane_process(
                    replace(options.workload, precision=lane.precision),
                    lane.backend,
                    lane.device,
                    lane.threads,
                    live.running_since,
                    _republish(notify, live),
                    should_stop,
                )
            except LaneError as error:
                if lane.device == "CPU":
                    raise LaneError(f"The {lane.label} lane failed: {error}") from None
                failed = replace(
                    live.lanes[index],
                    available=False,
                    repeats=(),
                    unavailable_reason=f"The GPU lane failed on this machine: {error}",
                )
                live = replace(live, lanes=live.lanes[:index] + (failed,) + live.lanes[index + 1 :], running=None)
                continue
            repeat = RepeatResult.from_dict(record, f"lane {lane.lane_id} result")
            updated = replace(live.lanes[index], repeats=live.lanes[index].repeats + (repeat,))
            live = replace(live, lanes=live.lanes[:index] + (updated,) + live.lanes[index + 1 :], running=None)
            notify(live)
    created = datetime.now().astimezone().isoformat(timespec="seconds")
    return RaceResult(created, machine, options.workload, options.repeats, live.lanes)


def start_race_job(manager: JobManager, options: RaceOptions) -> JobStatus:
    """Run a race as a background job and keep it in the races folder; BusyError if a job is running.

    details: "race" holds the latest RaceLive; the job's result is the RaceResult.
    Raises CacheError before starting when the races folder cannot be written.
    """
    writable_cache_folder("races")

    def work(context: JobContext) -> RaceResult:
        result = run_race(
            options,
            on_event=lambda live: context.report(live.fraction, live.message, race=live),
            should_stop=context.should_stop,
        )
        store_race(result)
        return result

    return manager.start("race", "GPU vs CPU race", work)
