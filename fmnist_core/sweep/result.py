"""What a sweep found: its runs, each model's spread, the paired comparisons, and where the JSON is kept.

A sweep's JSON (`<cache root>/sweeps/<sweep id>.json`, or shipped with the app in `recorded_sweeps/`) is the one
source the CLI prints, the Compare page draws and the report quotes; nothing here imports TensorFlow or Dask, so
the app reads sweeps without either.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from fmnist_core import json_checks as check
from fmnist_core.config import TrainConfig
from fmnist_core.data.fashion_mnist import data_fingerprint
from fmnist_core.errors import CacheError, ConfigError
from fmnist_core.models.registry import ModelSpec
from fmnist_core.statistics import PairedDifference, Summary, paired_difference, summarize

SWEEP_FORMAT = 1  # Bump when the JSON changes incompatibly.
MAX_SWEEP_FILE_BYTES = 16 * 2**20  # A sweep of 100 seeds × 3 models is ~100 kB: anything this large is not one.
SWEEPS_FOLDER = "sweeps"  # Inside the model cache root, beside the entries the runs are.


@dataclass(frozen=True)
class RunResult:
    """One finished (model, seed) training: the figures of its cache entry."""

    model: str  # Registry name, e.g. "model3".
    title: str  # "Model 3".
    seed: int
    entry_id: str  # The cache entry holding the trained model.
    test_accuracy: float  # 0..1, of the saved model (the one the app uses).
    training_seconds: float  # Training plus per-epoch validation, as the entry records it.
    images_per_second: float  # Training images per second (validation excluded).
    reused: bool  # True when the entry was already cached (no training this time).
    host: str  # Machine that trained it.
    threads: int | None  # TensorFlow threads it trained with.

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Any, where: str = "run") -> RunResult:
        """Check and build; json_checks.FieldError names the field at fault."""
        return cls(**check.dataclass_values(cls, values, where))


@dataclass(frozen=True)
class ModelSummary:
    """One model over all its seeds."""

    model: str
    title: str
    first_filters: int
    test_accuracy: Summary  # In percentage points.
    training_seconds: Summary
    images_per_second: Summary

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "title": self.title,
            "first_filters": self.first_filters,
            "test_accuracy": self.test_accuracy.to_dict(),
            "training_seconds": self.training_seconds.to_dict(),
            "images_per_second": self.images_per_second.to_dict(),
        }

    @classmethod
    def from_dict(cls, values: Any, where: str = "model") -> ModelSummary:
        arguments = check.dataclass_values(cls, values, where)
        for name in ("test_accuracy", "training_seconds", "images_per_second"):
            arguments[name] = Summary.from_dict(arguments[name], check.join(where, name))
        return cls(**arguments)


@dataclass(frozen=True)
class SweepResult:
    """Every run of a sweep and what they add up to; saved as JSON, read back by the app and the report."""

    sweep_id: str  # "<preset>-<digest>": the same request always gets the same id (and file).
    preset: str  # Preset name, or "custom".
    config: dict  # The training settings shared by every run (each run replaces the seed).
    seeds: tuple[int, ...]
    runs: tuple[RunResult, ...]  # In (seed, model) order.
    models: tuple[ModelSummary, ...]
    comparisons: tuple[PairedDifference, ...]  # Every pair, later model minus earlier one.
    engine: dict  # How the runs were scheduled: kind ("local" or "scheduler"), address, workers, threads.
    created: str  # ISO time the sweep finished.
    recorded: bool = False  # Read from recorded_sweeps/ (shipped with the app), not the user's cache; not saved.

    @property
    def seed_count(self) -> int:
        return len(self.seeds)

    def summary_of(self, model: str) -> ModelSummary | None:
        return next((summary for summary in self.models if summary.model == model), None)

    def to_dict(self) -> dict:
        return {
            "format": SWEEP_FORMAT,
            "sweep_id": self.sweep_id,
            "preset": self.preset,
            "config": self.config,
            "seeds": list(self.seeds),
            "runs": [run.to_dict() for run in self.runs],
            "models": [summary.to_dict() for summary in self.models],
            "comparisons": [comparison.to_dict() for comparison in self.comparisons],
            "engine": self.engine,
            "created": self.created,
        }

    @classmethod
    def from_dict(cls, values: Any) -> SweepResult:
        """Check and build; json_checks.FieldError names the field at fault."""
        values = check.obj(values, "sweep")
        layout = check.integer(check.required(values, "format"), "format")
        if layout != SWEEP_FORMAT:
            raise check.FieldError(f"`format` is {layout}; this version reads sweep format {SWEEP_FORMAT}")
        arguments = check.dataclass_values(cls, values, "")
        arguments["recorded"] = False  # Where it was read from decides, never the file.
        arguments["seeds"] = check.items(check.integer, arguments["seeds"], "seeds")
        arguments["runs"] = check.items(RunResult.from_dict, arguments["runs"], "runs")
        arguments["models"] = check.items(ModelSummary.from_dict, arguments["models"], "models")
        arguments["comparisons"] = check.items(PairedDifference.from_dict, arguments["comparisons"], "comparisons")
        return cls(**arguments)


def sweep_id(preset: str, specs: Sequence[ModelSpec], config: TrainConfig, seeds: Sequence[int]) -> str:
    """`<preset>-<10 hex digits>` naming the request: models, settings (seed aside), seeds and data."""
    payload = json.dumps(
        {
            "specs": [spec.to_dict() for spec in specs],
            "config": {**config.to_dict(), "seed": None},
            "seeds": list(seeds),
            "data": data_fingerprint(),
        },
        sort_keys=True,
    )
    return f"{preset}-{hashlib.sha256(payload.encode()).hexdigest()[:10]}"


def summarize_runs(
    specs: Sequence[ModelSpec], runs: Iterable[RunResult]
) -> tuple[tuple[ModelSummary, ...], tuple[PairedDifference, ...]]:
    """Per-model summaries (accuracy in points) and the paired accuracy difference of every pair of models."""
    runs = list(runs)
    accuracy_by_model: dict[str, dict[int, float]] = {}
    summaries = []
    for spec in specs:
        own = [run for run in runs if run.model == spec.name]
        if not own:
            continue
        accuracy_by_model[spec.name] = {run.seed: 100 * run.test_accuracy for run in own}
        summaries.append(
            ModelSummary(
                spec.name,
                spec.title,
                spec.first_filters,
                summarize([100 * run.test_accuracy for run in own]),
                summarize([run.training_seconds for run in own]),
                summarize([run.images_per_second for run in own]),
            )
        )
    comparisons = []
    for index, baseline in enumerate(summaries):
        for other in summaries[index + 1 :]:
            difference = paired_difference(
                baseline.title, accuracy_by_model[baseline.model], other.title, accuracy_by_model[other.model]
            )
            if difference is not None:
                comparisons.append(difference)
    return tuple(summaries), tuple(comparisons)


def sweeps_folder(cache_root: Path) -> Path:
    return Path(cache_root) / SWEEPS_FOLDER


def sweep_path(cache_root: Path, sweep_id: str) -> Path:
    """Where the cache keeps the sweep `sweep_id`."""
    return sweeps_folder(cache_root) / f"{sweep_id}.json"


def save_sweep(result: SweepResult, cache_root: Path, also_to: Path | None = None) -> Path:
    """Write the sweep's JSON into the cache's sweeps folder (and to `also_to`); returns the kept file's path."""
    payload = json.dumps(result.to_dict(), indent=1)
    kept = sweep_path(cache_root, result.sweep_id)
    try:
        _write_atomically(kept, payload)
    except OSError as error:
        raise CacheError(f"Cannot write the sweep to {kept} ({error.strerror or error}).") from error
    if also_to is not None:
        try:
            _write_atomically(Path(also_to), payload)
        except OSError as error:
            raise ConfigError(
                f"Cannot write {also_to} ({error.strerror or error}); the sweep is saved in {kept}."
            ) from error
    return kept


def read_sweep(path: Path) -> SweepResult:
    """One sweep JSON; a file that is not one raises CacheError naming it."""
    try:
        return SweepResult.from_dict(check.read_file(path, max_bytes=MAX_SWEEP_FILE_BYTES))
    except check.FieldError as error:
        raise CacheError(f"{path} is not a sweep result this version can read ({error}).") from None


def load_sweeps(cache_root: Path, recorded_dir: Path | None = None) -> tuple[list[SweepResult], list[str]]:
    """Every readable sweep in the cache, newest first, then those shipped in `recorded_dir` (marked recorded) that
    the cache does not hold under the same id; and one problem line per file that is not readable."""
    found, problems = {}, []
    for folder, recorded in ((sweeps_folder(cache_root), False), (recorded_dir, True)):
        if folder is None or not folder.is_dir():
            continue
        sweeps = []
        for path in sorted(folder.glob("*.json")):
            try:
                sweeps.append(read_sweep(path))
            except CacheError as error:
                problems.append(str(error))
        for sweep in sorted(sweeps, key=lambda sweep: sweep.created, reverse=True):
            found.setdefault(sweep.sweep_id, replace(sweep, recorded=recorded))
    return list(found.values()), problems


def _write_atomically(path: Path, payload: str) -> None:
    # A reader (the app) never sees half a file: write beside it, then rename over it.
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(payload)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
