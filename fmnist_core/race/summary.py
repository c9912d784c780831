"""Races summarised for people: the one summary table the Race page, the Compare page and the report all show,
the workload in one sentence, and the lanes that did not run. Pure functions of a `RaceResult` (race_file.py).
"""

from __future__ import annotations

import pandas as pd

from fmnist_core.display import format_duration
from fmnist_core.race.file import RaceResult, StoredRace, list_races
from fmnist_core.race.plan import RECORDED, unavailable_note

# The summary table's columns and how a person reads them (page column headers and the Markdown header).
SUMMARY_COLUMNS: dict[str, str] = {
    "lane": "Lane",
    "precision": "Precision",
    "phase": "Phase",
    "seconds": "Median time",
    "min_seconds": "Fastest",
    "max_seconds": "Slowest",
    "images_per_second": "Images/s",
    "speedup": "Speed-up",
}
PHASE_WORDS = {"train": "Training", "inference": "Inference"}


def summary_table(result: RaceResult) -> pd.DataFrame:
    """One row per lane that ran and scored phase: median seconds, fastest and slowest run, images/s, speed-up."""
    table = pd.DataFrame(result.summary_rows(), columns=["lane_id", *SUMMARY_COLUMNS])
    table["phase"] = table["phase"].map(PHASE_WORDS)
    return table[list(SUMMARY_COLUMNS)]


def baseline_label(result: RaceResult) -> str:
    """The lane the speed-ups are measured against, as people know it."""
    labels = {lane.lane_id: lane.label for lane in result.lanes}
    return labels.get(result.speedups["baseline"], "the slowest lane")


def workload_sentence(result: RaceResult) -> str:
    """What every lane of a race ran, in one sentence."""
    workload = result.workload
    return (
        f"Every lane trained {workload.spec.title} for {workload.train_batches} batches of {workload.batch_size} "
        f"images ({workload.precision_text}, {workload.jit_text}) after "
        f"{workload.warmup_batches} untimed warm-up batches, then predicted {workload.inference_images:,} "
        f"images; times are the median of {result.repeats} repeat(s), each in a fresh process."
    )


def lanes_not_run(result: RaceResult) -> list[str]:
    """'TensorFlow · GPU: did not run (no GPU on the recording machine)' for each lane that could not run."""
    return [
        f"{lane.label}: did not run ({unavailable_note(lane, RECORDED)})" for lane in result.lanes if not lane.available
    ]


def summary_markdown(result: RaceResult) -> str:
    """The summary table in Markdown, with the same columns as on the pages."""
    header = {**SUMMARY_COLUMNS, "speedup": f"Speed-up vs {baseline_label(result)}"}
    lines = ["| " + " | ".join(header.values()) + " |", "|---|---|---|--:|--:|--:|--:|--:|"]
    lines += [
        f"| {row.lane} | {row.precision} | {row.phase} | {format_duration(row.seconds)} | "
        f"{format_duration(row.min_seconds)} | "
        f"{format_duration(row.max_seconds)} | {row.images_per_second:,.0f} | {row.speedup:.1f}× |"
        for row in summary_table(result).itertuples()
    ]
    return "\n".join(lines)


def load_races() -> list[StoredRace]:
    """Every readable race: this machine's, newest first, then the recorded ones (unreadable ones are the Race
    page's to explain)."""
    return [stored for stored in list_races() if stored.result is not None]
