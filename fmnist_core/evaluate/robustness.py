"""A model's accuracy under attack, measured once and kept as a small versioned JSON file.

`measure` runs PGD and FGSM (fmnist_core.evaluate.attack) at the same ε on the same pictures; `RobustnessRecord` is
what one measurement of one cached model says, JSON-ready through `to_dict` and checked field by field by
`from_dict`, because a file in `recorded_robustness/` is a file anyone can edit. The shipped models' records live
in the repository (fmnist_core.paths.recorded_robustness_dir), written by `scripts/record_robustness.py`, so the
Fool page draws its curves at once on a fresh clone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fmnist_core import json_checks as check
from fmnist_core.evaluate.attack import STEP_FRACTION, STOP_MARGIN, Attacker, robust_accuracy
from fmnist_core.paths import recorded_robustness_dir

FORMAT = 1  # Raised when a field changes meaning; a reader refuses a format it does not know.
KIND = "fmnist-robustness"


@dataclass(frozen=True)
class RobustnessRecord:
    """One cached model's accuracy under PGD and FGSM at several ε, on the first `images` test pictures."""

    model: str  # Registry name, "model1".
    title: str  # "Model 1".
    entry_id: str  # The cache entry measured.
    model_sha256: str  # Its model.keras checksum: the record belongs to exactly that file.
    images: int  # The first N test images.
    epsilons: tuple[float, ...]  # Ascending, on the 0–1 scale.
    pgd_accuracy: tuple[float, ...]  # Per ε: the fraction still classified correctly after PGD.
    fgsm_accuracy: tuple[float, ...]  # Per ε: the same after one FGSM step (never lower than PGD's).
    steps: int  # PGD steps per ε.
    step_fraction: float  # Steps after the first move each pixel by this fraction of ε.
    stop_margin: float  # A picture leaves the attack once a wrong class leads by this much probability.
    pgd_seconds: float  # Wall time of the PGD measurement.
    machine: str  # Where it ran, in a few words.
    created: str  # ISO date and time.
    command: str  # The command that wrote it.

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "kind": KIND,
            **{key: list(value) if isinstance(value, tuple) else value for key, value in self.__dict__.items()},
        }

    @classmethod
    def from_dict(cls, values, where: str = "robustness") -> RobustnessRecord:
        """Check and build; json_checks.FieldError names the field at fault."""
        values = check.obj(values, where)
        if check.required(values, "kind", where) != KIND or check.required(values, "format", where) != FORMAT:
            raise check.FieldError(f"`{where}` is not a robustness record of format {FORMAT}")
        scalars = check.dataclass_values(
            cls, {key: value for key, value in values.items() if key not in ("kind", "format")}, where
        )
        lists = {}
        for key in ("epsilons", "pgd_accuracy", "fgsm_accuracy"):
            items = check.array(values[key], f"{where}.{key}", min_length=1)
            lists[key] = tuple(
                check.number(value, f"{where}.{key}[{index}]", minimum=0, maximum=1)
                for index, value in enumerate(items)
            )
        if len({len(items) for items in lists.values()}) != 1 or list(lists["epsilons"]) != sorted(lists["epsilons"]):
            raise check.FieldError(f"`{where}` needs one accuracy per ε for each attack, the ε in ascending order")
        return cls(**{**scalars, **lists})


def measure(attacker: Attacker, images, labels, epsilons) -> tuple:
    """(PGD's, FGSM's) RobustAccuracy of the attacker's saved model on these pictures, at the same ε."""
    return robust_accuracy(attacker, images, labels, epsilons), robust_accuracy(attacker, images, labels, epsilons, 1)


def record_of(entry, pgd, fgsm, machine: str, created: str, command: str) -> RobustnessRecord:
    """The record of a measurement (`measure`) of a cache entry."""
    return RobustnessRecord(
        model=entry.record.spec.name,
        title=entry.record.spec.title,
        entry_id=entry.entry_id,
        model_sha256=entry.record.model_sha256,
        images=pgd.images,
        epsilons=pgd.epsilons,
        pgd_accuracy=pgd.accuracy,
        fgsm_accuracy=fgsm.accuracy,
        steps=pgd.steps,
        step_fraction=STEP_FRACTION,
        stop_margin=STOP_MARGIN,
        pgd_seconds=round(pgd.seconds, 1),
        machine=machine,
        created=created,
        command=command,
    )


def recorded(folder: Path | None = None) -> tuple[list[RobustnessRecord], list[str]]:
    """(records, problems) of every `*.json` in the folder (default: the shipped recorded_robustness/), by name."""
    folder = folder if folder is not None else recorded_robustness_dir()
    records, problems = [], []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            records.append(RobustnessRecord.from_dict(json.loads(path.read_bytes()), path.name))
        except (OSError, ValueError, RecursionError) as error:  # FieldError is a ValueError, as is bad JSON.
            problems.append(f"{path.name}: {error}")
    return records, problems


def width_sentence(records: list[RobustnessRecord]) -> str:
    """One sentence on what the records say about width: each model's accuracy at the largest ε, and whether the
    spread between them is larger than the sampling error of that many images (95 %, two independent samples)."""
    if not records:
        return ""
    largest = min(record.epsilons[-1] for record in records)
    ranked = sorted(records, key=lambda record: record.title)
    kept = {record.title: record.pgd_accuracy[record.epsilons.index(largest)] for record in ranked}
    images = min(record.images for record in ranked)
    best, worst = max(kept.values()), min(kept.values())
    middle = (best + worst) / 2
    margin = 1.96 * (2 * middle * (1 - middle) / images) ** 0.5
    listed = ", ".join(f"{title} {value:.0%}" for title, value in kept.items())
    if len(kept) < 2:
        verdict = "record the other widths to compare them"
    elif best - worst <= margin:
        verdict = (
            f"a spread of {best - worst:.1%} that {images:,} images cannot tell from luck (±{margin:.1%}): "
            "width buys little robustness"
        )
    else:
        leader = max(kept, key=kept.get)
        verdict = f"{leader} holds best, by more than {images:,} images' luck (±{margin:.1%})"
    return f"At ε = {largest * 255:.0f}/255 the models keep {listed} of the first {images:,} test images: {verdict}."
