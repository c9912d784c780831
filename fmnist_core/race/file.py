"""The race file: what a race recorded, as versioned JSON that is validated field by field on load.

`{"schema": "fmnist-race", "schema_version": 3, "created", "machine", "workload", "repeats", "lanes": [...],
"speedups", "finish_order"}`. Each lane names its Keras backend, kind and precision and holds its repeats; each
repeat its phase times, what it really ran with (backend version, device, CUDA versions on a GPU, threads, CPU
time, jit_compile, precision, batch-norm layer) and its progress events `[seconds, phase, fraction]`, which let a
recorded race be replayed at true speed. Older files are read through `_upgrade`: version 1 (TensorFlow only,
before lanes had a backend) and version 2 (one precision, the workload's, for every lane). Medians, spreads,
speed-ups and the finish order are written for readers and recomputed on load, so a file cannot contradict
itself. Past races live in `<cache root>/races/`; races recorded on GPU machines can be shipped in
`recorded_races/`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from fmnist_core import json_checks as check
from fmnist_core.config import PRECISIONS
from fmnist_core.errors import CacheError, ConfigError, FmnistError
from fmnist_core.files import atomic_file
from fmnist_core.models.registry import ModelSpec
from fmnist_core.paths import cache_root, recorded_races_dir
from fmnist_core.race.backends import BACKENDS
from fmnist_core.race.lane import LANE_KINDS, PHASES, SCORED_PHASES, Event, Workload

SCHEMA = "fmnist-race"
# 2: lanes name their Keras backend and kind; the workload's jit_compile may be per backend. 3: each lane names its
# precision; the workload's is null when every lane ran its own fastest.
SCHEMA_VERSION = 3
MAX_RACE_FILE_BYTES = 5 * 1024 * 1024
BASELINE_KIND = "cpu-all"  # Speed-ups are measured against all CPU cores (of the first backend raced).
METRICS = (
    "setup_seconds",
    "warmup_seconds",
    "train_seconds",
    "train_images_per_second",
    "inference_seconds",
    "inference_images_per_second",
    "race_seconds",
)


class RaceFileError(FmnistError):
    """A race file that cannot be read: not JSON, not a race, a newer version, or missing/mistyped fields."""

    exit_code = 2


@dataclass(frozen=True)
class RepeatResult:
    """One timed run of one lane, as its process measured it."""

    setup_seconds: float  # Process start, backend import, data: shown, not scored.
    warmup_seconds: float  # Build, compile/trace, warm-up steps: shown, not scored.
    train_seconds: float  # The timed training steps.
    train_images_per_second: float
    inference_seconds: float  # Predicting the test images.
    inference_images_per_second: float
    events: tuple[Event, ...]  # (seconds since the lane started, phase, fraction): the replay script.
    runtime: dict  # What the lane really ran with: backend version, device, threads, CPU time, jit_compile, ….

    @property
    def race_seconds(self) -> float:
        """The score: training plus inference."""
        return self.train_seconds + self.inference_seconds

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "events": [list(event) for event in self.events]}

    @classmethod
    def from_dict(cls, values, where: str = "repeat") -> RepeatResult:
        """Validate and build; RaceFileError names the field at fault."""
        if not isinstance(values, dict):
            raise RaceFileError(f"`{where}` should be an object, but it is {_json_type(values)}.")
        fields = _scalars(cls, values, where)
        if min(fields["train_seconds"], fields["inference_seconds"]) <= 0:
            raise RaceFileError(f"`{where}` has a phase time of zero or less; times must be positive.")
        events = []
        for index, event in enumerate(_field(values, "events", "list", where)):
            valid = (
                isinstance(event, list)
                and len(event) == 3
                and isinstance(event[0], int | float)
                and math.isfinite(event[0])
                and event[1] in PHASES
                and isinstance(event[2], int | float)
                and 0 <= event[2] <= 1
            )
            if not valid or (events and event[0] < events[-1][0]):
                raise RaceFileError(
                    f"`{where}.events[{index}]` should be [seconds, phase, fraction 0–1] in time "
                    f"order, with phase one of {', '.join(PHASES)}; found {str(event)[:60]}."
                )
            events.append((float(event[0]), event[1], float(event[2])))
        if not events or events[-1][1] != "done" or not any(event[1] == "train" for event in events):
            raise RaceFileError(f"`{where}.events` must include a 'train' event and end with a 'done' event.")
        return cls(**fields, events=tuple(events))


@dataclass(frozen=True)
class LaneResult:
    """One lane: what it is, whether it could run, and its repeats."""

    lane_id: str  # "jax-gpu-0", "tensorflow-cpu-all", "torch-cpu-1" ("jax-gpu" when JAX saw no GPU).
    label: str  # What a person reads: "JAX · NVIDIA H200", "TensorFlow · CPU, 1 core".
    device: str  # "GPU:0" or "CPU".
    threads: int  # CPU cores and backend threads the lane may use.
    available: bool  # False when the lane could not run here.
    unavailable_reason: str | None  # Why not, in plain words.
    repeats: tuple[RepeatResult, ...] = ()
    backend: str = "tensorflow"  # The Keras backend (KERAS_BACKEND) of the lane's processes.
    kind: str = ""  # One of LANE_KINDS: "gpu", "cpu-all", "cpu-1"; when not given, read from the lane id.
    precision: str | None = None  # The Keras dtype policy the lane ran: "float32", "mixed_bfloat16", …

    def __post_init__(self) -> None:
        if not self.kind:
            object.__setattr__(self, "kind", kind_from_id(self.lane_id))

    def _values(self, name: str) -> list[float]:
        return [getattr(repeat, name) for repeat in self.repeats]

    @property
    def median(self) -> dict[str, float]:
        """Median of each metric over the repeats ({} when the lane did not run)."""
        return {name: statistics.median(self._values(name)) for name in METRICS if self.repeats}

    @property
    def spread(self) -> dict[str, dict[str, float]]:
        """{"min", "max"} of each metric over the repeats."""
        return {
            name: {"min": min(self._values(name)), "max": max(self._values(name))} for name in METRICS if self.repeats
        }

    @property
    def cores_busy(self) -> float | None:
        """Median CPU seconds per wall second while training: how many cores the lane kept busy (None: unknown,
        e.g. a version 1 file). A one-core lane must stay at or below 1."""
        ratios = [
            repeat.runtime["train_cpu_seconds"] / repeat.train_seconds
            for repeat in self.repeats
            if isinstance(repeat.runtime.get("train_cpu_seconds"), int | float)
        ]
        return statistics.median(ratios) if ratios else None

    @property
    def representative(self) -> RepeatResult | None:
        """The repeat with the median score (the lower one of two): the one replays show."""
        ordered = sorted(self.repeats, key=lambda repeat: repeat.race_seconds)
        return ordered[(len(ordered) - 1) // 2] if ordered else None

    def to_dict(self) -> dict:
        return {
            **{f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "repeats"},
            "repeats": [repeat.to_dict() for repeat in self.repeats],
            "median": self.median,
            "spread": self.spread,
        }

    @classmethod
    def from_dict(cls, values, where: str = "lane") -> LaneResult:
        """Validate and build; RaceFileError names the field at fault."""
        if not isinstance(values, dict):
            raise RaceFileError(f"`{where}` should be an object, but it is {_json_type(values)}.")
        fields = _scalars(cls, values, where)
        repeats = tuple(
            RepeatResult.from_dict(repeat, f"{where}.repeats[{index}]")
            for index, repeat in enumerate(_field(values, "repeats", "list", where))
        )
        if fields["available"] and not repeats:
            raise RaceFileError(f"`{where}` is marked available but has no repeats.")
        if not fields["available"] and not fields["unavailable_reason"]:
            raise RaceFileError(f"`{where}` is unavailable but gives no `unavailable_reason`.")
        for name, allowed in (("backend", tuple(BACKENDS)), ("kind", LANE_KINDS)):
            value = _field(values, name, "str", where)  # Required since version 2 (_upgrade fills them in).
            if value not in allowed:
                raise RaceFileError(f"`{where}.{name}` should be one of {', '.join(allowed)}; found {value[:40]!r}.")
        precision = _field(values, "precision", "str | None", where)  # Required since version 3.
        if precision not in (*PRECISIONS, None) or (precision is None and repeats):
            raise RaceFileError(
                f"`{where}.precision` should be one of {', '.join(PRECISIONS)} for a lane that ran; "
                f"found {str(precision)[:40]!r}."
            )
        return cls(**fields, repeats=repeats)


@dataclass(frozen=True)
class RaceResult:
    """A whole race: where it ran, what every lane ran, and how each lane did."""

    created: str  # ISO time the race finished, with the UTC offset.
    machine: dict  # race.race_machine(): host, library versions, each backend's GPUs, nvidia-smi's GPUs and driver.
    workload: Workload
    repeats: int  # Planned repeats per lane.
    lanes: tuple[LaneResult, ...]

    @property
    def finish_order(self) -> list[str]:
        """Lane ids by scored time of their representative repeat, fastest first."""
        finished = [lane for lane in self.lanes if lane.representative is not None]
        return [lane.lane_id for lane in sorted(finished, key=lambda lane: lane.representative.race_seconds)]

    @property
    def baseline(self) -> LaneResult | None:
        """The lane speed-ups are measured against: the first all-CPU-cores lane, else the slowest lane that ran."""
        ran = {lane.lane_id: lane for lane in self.lanes if lane.repeats}
        all_cores = [lane for lane in ran.values() if lane.kind == BASELINE_KIND]
        if all_cores:
            return all_cores[0]
        return ran[self.finish_order[-1]] if ran else None

    @property
    def speedups(self) -> dict:
        """{"baseline": lane id, "train": {lane id: ×}, "inference": {...}}: baseline time / lane time (medians)."""
        baseline = self.baseline
        if baseline is None:
            return {"baseline": None, "train": {}, "inference": {}}
        return {
            "baseline": baseline.lane_id,
            **{
                phase: {
                    lane.lane_id: baseline.median[f"{phase}_seconds"] / lane.median[f"{phase}_seconds"]
                    for lane in self.lanes
                    if lane.repeats
                }
                for phase in SCORED_PHASES
            },
        }

    @property
    def recorded_label(self) -> str:
        """'recorded on gpu-box (NVIDIA H100, AMD EPYC, 16 cores), 2026-11-25 19:40'."""
        machine = self.machine
        listed = machine.get("gpus") if isinstance(machine.get("gpus"), list) else []
        gpus = [str(gpu.get("name", "GPU")) for gpu in listed if isinstance(gpu, dict)]
        hardware = ", ".join(
            [*gpus, str(machine.get("cpu_model", "unknown CPU")), f"{machine.get('cpu_cores', '?')} cores"]
        )
        when = self.created[:16].replace("T", " ")
        return f"recorded on {machine.get('hostname', 'an unnamed machine')} ({hardware}), {when}"

    def summary_rows(self) -> list[dict]:
        """One row per lane that ran and scored phase: median, min, max, images/s and speed-up."""
        speedups = self.speedups
        rows = []
        for lane in self.lanes:
            if not lane.repeats:
                continue
            for phase in SCORED_PHASES:
                rows.append(
                    {
                        "lane_id": lane.lane_id,
                        "lane": lane.label,
                        "precision": lane.precision,
                        "phase": phase,
                        "seconds": lane.median[f"{phase}_seconds"],
                        "min_seconds": lane.spread[f"{phase}_seconds"]["min"],
                        "max_seconds": lane.spread[f"{phase}_seconds"]["max"],
                        "images_per_second": lane.median[f"{phase}_images_per_second"],
                        "speedup": speedups[phase][lane.lane_id],
                    }
                )
        return rows

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "created": self.created,
            "machine": self.machine,
            "workload": self.workload.to_dict(),
            "repeats": self.repeats,
            "lanes": [lane.to_dict() for lane in self.lanes],
            "speedups": self.speedups,
            "finish_order": self.finish_order,
        }

    @classmethod
    def from_dict(cls, values) -> RaceResult:
        """Validate and build; every problem raises RaceFileError naming the field."""
        if not isinstance(values, dict):
            raise RaceFileError(f"A race file holds a JSON object; this one holds {_json_type(values)}.")
        if "schema" not in values:
            raise RaceFileError(
                "This JSON has no `schema` field, so it is not a race file "
                "(race files come from `python -m fmnist_core race --out race.json`)."
            )
        if values["schema"] != SCHEMA:
            raise RaceFileError(
                f"This is not a race file: `schema` is {str(values['schema'])[:60]!r}, expected {SCHEMA!r}."
            )
        version = _field(values, "schema_version", "int", "")
        if not 1 <= version <= SCHEMA_VERSION:
            newer = " Update this app, or record the race again with it." if version > SCHEMA_VERSION else ""
            raise RaceFileError(
                f"Unsupported race file version: schema_version {version}; this app reads "
                f"versions 1 to {SCHEMA_VERSION}.{newer}"
            )
        values = _upgrade(values, version)
        workload_values = _field(values, "workload", "dict", "")
        spec = ModelSpec(**_scalars(ModelSpec, _field(workload_values, "spec", "dict", "workload"), "workload.spec"))
        try:
            workload = Workload(**{**_scalars(Workload, workload_values, "workload", skip=("spec",)), "spec": spec})
        except ConfigError as error:
            raise RaceFileError(f"`workload` is not valid: {error}") from None
        lanes = tuple(
            LaneResult.from_dict(lane, f"lanes[{index}]")
            for index, lane in enumerate(_field(values, "lanes", "list", ""))
        )
        identifiers = [lane.lane_id for lane in lanes]
        if len(set(identifiers)) != len(identifiers):
            raise RaceFileError(f"Lane ids must be unique; found {', '.join(identifiers)}.")
        return cls(
            created=_field(values, "created", "str", ""),
            machine=_field(values, "machine", "dict", ""),
            workload=workload,
            repeats=_field(values, "repeats", "int", ""),
            lanes=lanes,
        )


def kind_from_id(lane_id: str) -> str:
    """'gpu-0', 'jax-gpu-1' → 'gpu'; 'cpu-1', 'torch-cpu-1' → 'cpu-1'; anything else → 'cpu-all'."""
    if lane_id.startswith("gpu") or "-gpu" in lane_id:
        return "gpu"
    return "cpu-1" if lane_id.endswith("cpu-1") else "cpu-all"


def _upgrade(values: dict, version: int) -> dict:
    """An older file in the current shape. Version 1: every lane ran on TensorFlow; its kind follows from its id.
    Versions 1 and 2: every lane that ran, ran the workload's one precision.

    Only the fields later versions added are filled in; anything malformed is left for the current checks to name.
    """
    lanes = values.get("lanes")
    if version == SCHEMA_VERSION or not isinstance(lanes, list):
        return values
    workload = values.get("workload")
    precision = workload.get("precision") if isinstance(workload, dict) else None
    upgraded = []
    for lane in lanes:
        if isinstance(lane, dict) and version == 1 and isinstance(lane.get("lane_id"), str):
            kind = kind_from_id(lane["lane_id"])
            label = f"TensorFlow · {lane['label']}" if isinstance(lane.get("label"), str) else lane.get("label")
            lane = {**lane, "backend": "tensorflow", "kind": kind, "label": label}
        if isinstance(lane, dict):
            lane = {**lane, "precision": precision if lane.get("repeats") else None}
        upgraded.append(lane)
    return {**values, "lanes": upgraded}


# Validation: each field read through the project's one JSON validator (fmnist_core.json_checks), its message
# naming the field, as a RaceFileError.


def _json_type(value) -> str:
    return check.describe(value)


def _field(values: dict, key: str, kind: str, where: str):
    """`values[key]` checked as a field annotated `kind` ("int", "str | None", "dict", "list", …)."""
    try:
        return check.of_annotation(kind, check.required(values, key, where), check.join(where, key))
    except check.FieldError as error:
        raise RaceFileError(f"{error}.") from None


def _scalars(cls, values: dict, where: str, skip: tuple[str, ...] = ()) -> dict:
    """Read the fields of dataclass `cls` whose types are plain JSON values, checking each one's type.

    A field with a default may be absent, so files recorded before a field was added still load.
    """
    return {
        f.name: _field(values, f.name, f.type, where)
        for f in dataclasses.fields(cls)
        if f.name not in skip and check.checks(f.type) and (f.name in values or f.default is dataclasses.MISSING)
    }


# Files ------------------------------------------------------------------------------------------------


def parse_race(payload: bytes | str, source: str = "The file") -> RaceResult:
    """A RaceResult from a race file's content; RaceFileError says what is wrong with it."""
    try:
        values = check.parse(payload, source, max_bytes=MAX_RACE_FILE_BYTES)
    except check.FieldError as error:
        raise RaceFileError(f"{error}: not a race file.") from None
    return RaceResult.from_dict(values)


def load_race(path: Path | str) -> RaceResult:
    """Read and validate a race file (its size is checked before it is read)."""
    path = Path(path)
    try:
        values = check.read_file(path, max_bytes=MAX_RACE_FILE_BYTES)
    except check.FieldError as error:
        raise RaceFileError(f"{error}: not a race file.") from None
    return RaceResult.from_dict(values)


def race_json(result: RaceResult) -> str:
    """The race file's content."""
    return json.dumps(result.to_dict(), indent=1)


def races_dir() -> Path:
    """Where past races are kept: `<cache root>/races`."""
    return cache_root() / "races"


def store_race(result: RaceResult) -> Path:
    """Keep the race in the races folder as `<created time>.json`; returns its path."""
    stem = result.created[:19].replace(":", "-")
    path, number = races_dir() / f"{stem}.json", 2
    while path.exists():
        path, number = races_dir() / f"{stem}-{number}.json", number + 1
    try:
        with atomic_file(path) as stream:
            stream.write(race_json(result).encode("utf-8"))
    except OSError as error:
        raise CacheError(f"Cannot keep the race in {path.parent} ({error.strerror or error}).") from error
    return path


@dataclass(frozen=True)
class StoredRace:
    """A race file found in the races folder or in recorded_races/."""

    path: Path
    origin: str  # "this machine" (races folder) or "recorded" (recorded_races/).
    result: RaceResult | None  # None when the file cannot be read.
    problem: str | None  # Why not.

    @property
    def label(self) -> str:
        if self.result is None:
            return f"{self.path.name} (unreadable: {self.problem})"
        finish = ", ".join(self.result.finish_order) or "no lane ran"
        return f"{self.result.recorded_label} · {finish}"


def list_races() -> list[StoredRace]:
    """Past races of this machine, then the recorded ones shipped in recorded_races/; newest first in each."""
    found = []
    for folder, origin in ((races_dir(), "this machine"), (recorded_races_dir(), "recorded")):
        paths = folder.glob("*.json") if folder.is_dir() else []
        paths = sorted(paths, key=lambda path: (path.stat().st_mtime_ns, path.name), reverse=True)
        for path in paths:
            try:
                found.append(StoredRace(path, origin, load_race(path), None))
            except RaceFileError as error:
                found.append(StoredRace(path, origin, None, str(error)))
    return found
