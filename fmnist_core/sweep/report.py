"""A sweep, read for people: which sweep belongs to a comparison, its tables (for error bars) and its report section.

The Compare page and `python -m fmnist_core report` both call these, on the sweep's JSON as saved by
`python -m fmnist_core sweep`; no figure is typed in twice. Where there is no sweep, they say plainly that every
figure is one seed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

from fmnist_core.config import PRESETS, TrainConfig
from fmnist_core.statistics import CONFIDENCE
from fmnist_core.sweep.result import SweepResult

SWEEP_COMMAND = "python -m fmnist_core sweep --models model1,model2,model3 --seeds 5 --preset quick"
ONE_SEED_NOTE = (
    "One seed: each model here was trained once, with one seed. Another seed starts from other weights and sees "
    "the pictures in another order, so differences of a few tenths of a point between the models may be luck. "
    f"`{SWEEP_COMMAND}` trains every model with 5 seeds and says which differences are real."
)
# Figures the error-bar charts and the summary table show (fields of ModelSummary and RunResult), as people read them.
MEASURES = {
    "test_accuracy": "Test accuracy (%)",
    "training_seconds": "Training time (s)",
    "images_per_second": "Training images/s",
}


def _comparable(config: TrainConfig | dict) -> dict:
    values = config.to_dict() if isinstance(config, TrainConfig) else dict(config)
    return {**values, "seed": None}


def pick_sweep(sweeps: Sequence[SweepResult], configs: Iterable[TrainConfig | None]) -> SweepResult | None:
    """The newest sweep run with the same settings (seed aside) as one of `configs`, else the newest sweep."""
    wanted = [_comparable(config) for config in configs if config is not None]
    matching = [sweep for sweep in sweeps if _comparable(sweep.config) in wanted]
    return (matching or list(sweeps) or [None])[0]


def matches(sweep: SweepResult, config: TrainConfig | None) -> bool:
    """True when `sweep` ran with `config`'s settings (any seed)."""
    return config is not None and _comparable(sweep.config) == _comparable(config)


def describe(sweep: SweepResult) -> str:
    """'quick preset · Model 1, Model 2, Model 3 × 5 seeds (42–46) · 2026-11-30 15:20'."""
    preset = f"{sweep.preset} preset" if sweep.preset in PRESETS else "custom settings"
    seeds = f"{sweep.seeds[0]}–{sweep.seeds[-1]}" if sweep.seed_count > 1 else str(sweep.seeds[0])
    models = ", ".join(summary.title for summary in sweep.models)
    plural = "s" if sweep.seed_count > 1 else ""
    when = sweep.created[:16].replace("T", " ")
    shipped = " · shipped with the app" if sweep.recorded else ""
    return f"{preset} · {models} × {sweep.seed_count} seed{plural} ({seeds}) · {when}{shipped}"


def summary_table(sweep: SweepResult) -> pd.DataFrame:
    """One row per (model, measure): mean, the ends of its 95 % interval, standard deviation and seed count."""
    rows = []
    for summary in sweep.models:
        for measure, label in MEASURES.items():
            figures = getattr(summary, measure)
            rows.append(
                {
                    "model": summary.title,
                    "first_filters": summary.first_filters,
                    "measure": label,
                    "mean": figures.mean,
                    "low": figures.low,
                    "high": figures.high,
                    "standard_deviation": figures.standard_deviation,
                    "seeds": figures.count,
                }
            )
    return pd.DataFrame(rows)


def runs_table(sweep: SweepResult) -> pd.DataFrame:
    """One row per (run, measure): the single results behind the error bars."""
    titles = {summary.model: summary.title for summary in sweep.models}
    rows = [
        {
            "model": titles.get(run.model, run.title),
            "seed": run.seed,
            "measure": label,
            "value": 100 * run.test_accuracy if measure == "test_accuracy" else getattr(run, measure),
        }
        for run in sweep.runs
        for measure, label in MEASURES.items()
    ]
    return pd.DataFrame(rows)


def interval_text(mean: float, low: float | None, high: float | None, digits: int = 2, unit: str = "") -> str:
    """'86.41 % ± 0.12' or '86.41 % (one seed)'."""
    if low is None or high is None:
        return f"{mean:,.{digits}f}{unit} (one seed)"
    return f"{mean:,.{digits}f}{unit} ± {(high - low) / 2:,.{digits}f}"


def markdown_section(sweep: SweepResult | None, table_config: TrainConfig | None = None) -> str:
    """The report's "Seeds" section: per-model intervals and the verdicts, or the one-seed note.

    table_config: the settings of the models in the report's table, to say when the sweep used other ones.
    """
    if sweep is None:
        return f"*{ONE_SEED_NOTE}*"
    level = f"{CONFIDENCE:.0%}"
    lines = [
        f"Sweep: {describe(sweep)}. Mean over the seeds ± the half-width of its {level} Student-t confidence "
        "interval; standard deviation in brackets.",
    ]
    if table_config is not None and not matches(sweep, table_config):
        lines.append(
            "*These seeds were trained with other settings than the models in the table above; compare the "
            "verdicts, not the figures.*"
        )
    lines += [
        "",
        "| Model | First-layer filters | Test accuracy | Training time | Training images/s |",
        "|---|--:|--:|--:|--:|",
    ]
    for summary in sweep.models:
        cells = [
            _with_deviation(summary.test_accuracy, 2, " %"),
            _with_deviation(summary.training_seconds, 1, " s"),
            _with_deviation(summary.images_per_second, 0, ""),
        ]
        lines.append(f"| {summary.title} | {summary.first_filters} | " + " | ".join(cells) + " |")
    lines += ["", "Paired differences in test accuracy (same seeds, later model minus earlier):", ""]
    lines += [f"- {comparison.verdict}" for comparison in sweep.comparisons]
    lines += [
        "",
        "Training times were measured while the runs shared their machine as the sweep scheduled them "
        f"({_engine_words(sweep.engine)}); accuracy with a fixed seed does not depend on that.",
    ]
    return "\n".join(lines)


def _with_deviation(summary, digits: int, unit: str) -> str:
    text = interval_text(summary.mean, summary.low, summary.high, digits, unit)
    if summary.standard_deviation is None:
        return text
    return f"{text} ({summary.standard_deviation:,.{digits}f})"


def _engine_words(engine: dict) -> str:
    threads = engine.get("threads_per_run")
    threads_text = f", {threads} TensorFlow threads per run" if threads else ""
    workers = engine.get("workers")
    workers_text = f"{workers} worker process{'es' if workers != 1 else ''}" if workers else "runs from the cache"
    where = "a local Dask cluster" if engine.get("kind") == "local" else f"the Dask scheduler {engine.get('address')}"
    return f"{where}, {workers_text}{threads_text}"
