"""`race`: Model 1 on GPU and CPU lanes, on one or more Keras backends, with live lane lines, a summary table and a
saved race file.

Also registers `race-lane` and `race-probe`, the internal commands each lane process and each backend's device
probe run (they speak JSON lines on stdout).
Exit codes: 0 raced, 1 a lane failed or none could run, 2 bad settings or race file, 3 no data, 130 stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fmnist_core.config import PRECISIONS, decimal_number, whole_number
from fmnist_core.race.backends import BACKENDS, DEFAULT_BACKEND

WORKLOAD_OPTIONS = (
    "train_batches",
    "batch_size",
    "warmup_batches",
    "inference_images",
    "precision",
    "jit_compile",
    "seed",
)
BAR_WIDTH = 20
LABEL_WIDTH = 28
PRECISION_WIDTH = 16


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "race",
        help="race Model 1 on every GPU and on the CPU (all cores, 1 core), on TensorFlow, JAX or PyTorch",
        description="Train and run Model 1 on each lane, one lane after another, each in a fresh process; print "
        "phase times, images/s and speed-ups; keep the race file in <cache>/races/.",
    )
    parser.add_argument(
        "--backend",
        default=DEFAULT_BACKEND,
        help=f"Keras backend(s) to race, comma-separated, among {', '.join(BACKENDS)} (default {DEFAULT_BACKEND})",
    )
    parser.add_argument("--out", type=Path, help="also write the race JSON here (replay it in the app)")
    parser.add_argument(
        "--repeats", type=whole_number, default=3, help="runs per lane; the median is reported (default 3)"
    )
    parser.add_argument("--lanes", default="gpu,cpu-all,cpu-1", help="lanes to run (default gpu,cpu-all,cpu-1)")
    parser.add_argument("--train-batches", type=whole_number, help="timed training steps (default 100)")
    parser.add_argument("--batch-size", type=whole_number, help="training batch size (default 256)")
    parser.add_argument("--warmup-batches", type=whole_number, help="untimed training steps first (default 3)")
    parser.add_argument("--inference-images", type=whole_number, help="test images predicted (default 10000)")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="one precision for every lane (default: each lane's fastest, mixed_bfloat16 on a GPU or a CPU with "
        "native bfloat16 where the backend gains from it, float32 elsewhere)",
    )
    parser.add_argument(
        "--jit-compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="XLA / compilation on every lane or none (default: each backend's own, TensorFlow off, JAX on, "
        "PyTorch off)",
    )
    parser.add_argument("--seed", type=whole_number)
    parser.add_argument("--list", action="store_true", help="list past and recorded races, then exit")
    parser.set_defaults(handler=run)

    lane = subparsers.add_parser("race-lane", help="internal: one lane process of `race` (JSON lines on stdout)")
    lane.add_argument("--workload", required=True, help="the workload as JSON")
    lane.add_argument("--backend", required=True, choices=tuple(BACKENDS))
    lane.add_argument("--device", required=True, help='"CPU" or "GPU:<n>"')
    lane.add_argument("--threads", type=whole_number, required=True)
    lane.add_argument(
        "--started-at", type=decimal_number, required=True, help="the launch time (time.time()) of the lane"
    )
    lane.set_defaults(handler=run_lane)

    probe = subparsers.add_parser("race-probe", help="internal: a backend's version and GPUs (JSON lines on stdout)")
    probe.add_argument("--backend", required=True, choices=tuple(BACKENDS))
    probe.set_defaults(handler=run_probe)


def run_lane(arguments: argparse.Namespace) -> int:
    from fmnist_core.race.lane import lane_main

    return lane_main(arguments.workload, arguments.backend, arguments.device, arguments.threads, arguments.started_at)


def run_probe(arguments: argparse.Namespace) -> int:
    from fmnist_core.race.lane import probe_main

    return probe_main(arguments.backend)


def lane_line(view) -> str:
    """`CPU, 1 core  [=====>......] training  45%  race 3.2 s  warm-up 5.1 s  812 img/s  run 1/3`."""
    from fmnist_core.race.runner import PHASE_TITLES

    if view.status == "unavailable":
        return f"{view.label:<{LABEL_WIDTH}} unavailable: {view.note.split('. ')[0]}."
    filled = int(BAR_WIDTH * view.fraction)
    bar = "=" * filled + (">" if filled < BAR_WIDTH else "") + "." * max(BAR_WIDTH - filled - 1, 0)
    place = f"#{view.place} " if view.place else ""
    rates = [
        f"{name} {rate:,.0f} img/s"
        for name, rate in (("train", view.train_images_per_second), ("infer", view.inference_images_per_second))
        if rate
    ]
    return (
        f"{view.label:<{LABEL_WIDTH}} [{bar}] {place}{PHASE_TITLES[view.phase]:<10} {view.fraction:>4.0%}  "
        f"race {view.race_seconds:6.1f} s  warm-up {view.warmup_seconds:5.1f} s  run {max(view.repeat, 1)}/"
        f"{view.repeats}  {' · '.join(rates)}"
    )


class LaneBoard:
    """One line per lane, redrawn in place on a terminal; on a pipe or log, one line per finished lane run."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty()
        self._lines_drawn = 0
        self._last_draw = 0.0
        self._runs_reported: dict[str, int] = {}

    def update(self, live) -> None:
        from fmnist_core.race.runner import finished_run_view, live_state

        views = live_state(live, time.time())
        if self.interactive:
            if time.monotonic() - self._last_draw >= 0.1:
                self._last_draw = time.monotonic()
                up = f"\x1b[{self._lines_drawn}F" if self._lines_drawn else ""
                self.stream.write(up + "".join(f"\r{lane_line(view)}\x1b[K\n" for view in views))
                self._lines_drawn = len(views)
                self.stream.flush()
            return
        for index, (view, lane) in enumerate(zip(views, live.lanes, strict=True)):
            runs = len(lane.repeats) if lane.available else -1
            if self._runs_reported.get(view.lane_id) != runs and (runs or not lane.available):
                self._runs_reported[view.lane_id] = runs
                # The run that just ended, with its own times; places shift while lanes are still to come, so a
                # log line does not claim one.
                line_view = finished_run_view(live, index, runs - 1) if runs > 0 else view
                self.stream.write(lane_line(dataclasses.replace(line_view, place=None)) + "\n")
                self.stream.flush()


def _machine_line(machine: dict) -> str:
    """'Machine: <CPU>, 2 cores; NVIDIA H200 (driver 580.x); JAX 0.11.2, Keras 3.15.1'."""
    versions = machine.get("versions", {})
    smi = machine.get("nvidia_smi") or []
    gpus = ", ".join(f"{gpu['name']} (driver {gpu['driver']})" for gpu in smi) or ", ".join(
        str(gpu.get("name")) for gpu in machine.get("gpus", [])
    )
    libraries = [f"{backend.title} {versions[name]}" for name, backend in BACKENDS.items() if versions.get(name)]
    return (
        f"Machine: {machine.get('cpu_model')}, {machine.get('cpu_cores')} cores; {gpus or 'no GPU'}; "
        f"{', '.join(libraries)}, Keras {versions.get('keras')}"
    )


def format_summary(result) -> str:
    """The summary table: median phase times (min–max), images/s, speed-ups and cores busy, fastest lane first."""
    workload = result.workload
    lines = [
        f"{workload.spec.title}: {workload.train_images:,} training images ({workload.train_batches} × "
        f"{workload.batch_size}), {workload.inference_images:,} test images, {workload.precision_text}, "
        f"{workload.jit_text}; median of {result.repeats} run(s) (min–max)",
        _machine_line(result.machine),
        "",
        f"{'':4}{'lane':<{LABEL_WIDTH}}{'precision':<{PRECISION_WIDTH}}"
        f"{'training s':>22}{'img/s':>10}{'speed-up':>10}{'inference s':>22}{'img/s':>10}"
        f"{'speed-up':>10}{'cores busy':>12}",
    ]
    rows = {(row["lane_id"], row["phase"]): row for row in result.summary_rows()}
    for place, lane_id in enumerate(result.finish_order, start=1):
        cells = []
        for phase in ("train", "inference"):
            row = rows[(lane_id, phase)]
            spread = f"{row['seconds']:.2f} ({row['min_seconds']:.2f}–{row['max_seconds']:.2f})"
            cells.append(f"{spread:>22}{row['images_per_second']:>10,.0f}{row['speedup']:>9.2f}×")
        lane = next(lane for lane in result.lanes if lane.lane_id == lane_id)
        busy = "–" if lane.cores_busy is None else f"{lane.cores_busy:.2f}"
        name = f"{place:>2}. {lane.label:<{LABEL_WIDTH}}{lane.precision:<{PRECISION_WIDTH}}"
        lines.append(name + "".join(cells) + f"{busy:>12}")
    for lane in result.lanes:
        if not lane.repeats:
            lines.append(f" –  {lane.label:<{LABEL_WIDTH}}unavailable: {lane.unavailable_reason}")
    baseline = result.speedups["baseline"]
    lines.append(
        f"Speed-up = time of {baseline} / time of the lane. Cores busy = CPU seconds / wall seconds while "
        "training. Setup and warm-up are not scored."
    )
    return "\n".join(lines)


def run_list() -> int:
    from fmnist_core.race.file import list_races

    races = list_races()
    if not races:
        print("No races yet. Run one: python -m fmnist_core race --out race.json")
        return 0
    print(f"{len(races)} race file(s):")
    for stored in races:
        print(f"  [{stored.origin}] {stored.path}\n      {stored.label}")
    return 0


@contextmanager
def _terminated_as_interrupted() -> Iterator[None]:
    """SIGTERM (a `kill PID`, a service manager stopping the race) ends the race as Ctrl-C does: the running lane is
    stopped and reaped, nothing is saved, exit 130. Its default would end this process alone and leave the lane
    running. (A lane also dies with this process however it ends: fmnist_core.race.lane.die_with_parent.)"""

    def interrupt(signal_number, frame) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():  # Only the main thread may set handlers.
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(arguments: argparse.Namespace) -> int:
    from fmnist_core.files import check_output_file, write_output
    from fmnist_core.paths import writable_cache_folder
    from fmnist_core.race.backends import parse_backends
    from fmnist_core.race.file import race_json, store_race
    from fmnist_core.race.lane import Workload
    from fmnist_core.race.runner import RaceOptions, parse_lanes, run_race

    if arguments.list:
        return run_list()
    changes = {name: getattr(arguments, name) for name in WORKLOAD_OPTIONS if getattr(arguments, name) is not None}
    workload = dataclasses.replace(Workload(), **changes)
    backends = parse_backends(arguments.backend)
    options = RaceOptions(workload, parse_lanes(arguments.lanes), arguments.repeats, backends)
    # Where the result goes is checked before the race, not after it: the races folder, then --out.
    writable_cache_folder("races")
    if arguments.out is not None:
        check_output_file(arguments.out, "--out")
    board = LaneBoard()
    titles = " and ".join(BACKENDS[name].title for name in backends)
    print(
        f"Racing {workload.spec.title} on {titles}: lanes run one after another, each in a fresh process.",
        file=sys.stderr,
    )
    with _terminated_as_interrupted():
        result = run_race(options, on_event=board.update)
    print(format_summary(result))
    stored = store_race(result)
    if arguments.out is not None:
        print(f"Wrote {write_output(arguments.out, race_json(result), '--out')}")
    print(f"Kept in the races folder: {stored}  (list them: python -m fmnist_core race --list)")
    return 0
