"""Repeated-run statistics: mean, spread and a Student-t confidence interval; paired differences and a verdict.

Pure functions on lists of floats (no TensorFlow, no files), so they can be checked against values worked out by
hand. A paired comparison uses only the seeds both models ran with: the seed fixes the weights' start, the
validation split and the batch order, so the difference per seed removes what the two runs share and the interval
of the mean difference is narrower than the two separate intervals suggest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from fmnist_core import json_checks as check

CONFIDENCE = 0.95  # Two-sided confidence level of every interval reported.


def t_quantile(degrees_of_freedom: int, confidence: float = CONFIDENCE) -> float:
    """The two-sided Student-t critical value (12.706 for 1 degree of freedom, 2.776 for 4, at 95 %)."""
    from scipy import stats  # Imported here: reading a saved sweep (the app's pages) never needs it.

    return float(stats.t.ppf(0.5 + confidence / 2, degrees_of_freedom))


@dataclass(frozen=True)
class Summary:
    """Mean and spread of repeated measurements, with the t interval of the mean (None with fewer than 2)."""

    count: int
    mean: float
    standard_deviation: float | None  # Sample standard deviation (n − 1 in the denominator).
    half_width: float | None  # The interval is mean ± half_width.
    confidence: float = CONFIDENCE

    @property
    def low(self) -> float | None:
        return None if self.half_width is None else self.mean - self.half_width

    @property
    def high(self) -> float | None:
        return None if self.half_width is None else self.mean + self.half_width

    @property
    def excludes_zero(self) -> bool:
        """True when there is an interval and 0 lies outside it: the mean is told apart from no effect."""
        return self.half_width is not None and (self.low > 0 or self.high < 0)

    def to_dict(self) -> dict:
        return {**asdict(self), "low": self.low, "high": self.high}

    @classmethod
    def from_dict(cls, values: Any, where: str = "summary") -> Summary:
        """Check and build (json_checks.FieldError names the field at fault); `low`/`high` are derived, not read."""
        return cls(**check.dataclass_values(cls, values, where))


def summarize(values: Sequence[float], confidence: float = CONFIDENCE) -> Summary:
    """Mean, sample standard deviation and the t interval of the mean of `values` (at least one value)."""
    if not values:
        raise ValueError("summarize needs at least one value")
    count = len(values)
    mean = math.fsum(values) / count
    if count < 2:
        return Summary(count, mean, None, None, confidence)
    deviation = math.sqrt(math.fsum((value - mean) ** 2 for value in values) / (count - 1))
    return Summary(count, mean, deviation, t_quantile(count - 1, confidence) * deviation / math.sqrt(count), confidence)


@dataclass(frozen=True)
class PairedDifference:
    """`better` minus `baseline` over the seeds both ran, e.g. Model 3 − Model 1 test accuracy in points."""

    baseline: str  # Title of the first model, e.g. "Model 1".
    other: str  # Title of the second model.
    seeds: tuple[int, ...]  # The seeds both models ran with, in order.
    differences: tuple[float, ...]  # other − baseline, one per seed.
    summary: Summary  # Of the differences.
    agreeing_seeds: int  # Seeds whose difference has the sign of the mean difference (0 when the mean is 0).
    unit: str = "points"

    @property
    def distinguishable(self) -> bool:
        """True when the interval of the mean difference excludes zero."""
        return self.summary.excludes_zero

    @property
    def verdict(self) -> str:
        """One plain sentence: which model is better and by how much, or that the seeds cannot tell them apart."""
        count = self.summary.count
        mean = self.summary.mean
        if count < 2:
            return (
                f"{self.other} − {self.baseline}: {mean:+.2f} {self.unit} on one seed; one seed cannot tell "
                "whether that is the models or the luck of the seed."
            )
        plus_minus = f"{abs(mean):.2f} ± {self.summary.half_width:.2f} {self.unit}"
        agreement = f"{self.agreeing_seeds} of {count} seeds agree"
        if self.distinguishable:
            winner, loser = (self.other, self.baseline) if mean > 0 else (self.baseline, self.other)
            return f"{winner} is better than {loser} by {plus_minus} ({agreement})."
        return (
            f"{self.baseline} and {self.other} are not distinguishable with {count} seeds "
            f"({self.other} − {self.baseline} = {mean:+.2f} ± {self.summary.half_width:.2f} {self.unit}; "
            f"{agreement} on the sign)."
        )

    def to_dict(self) -> dict:
        return {
            "baseline": self.baseline,
            "other": self.other,
            "seeds": list(self.seeds),
            "differences": list(self.differences),
            "summary": self.summary.to_dict(),
            "agreeing_seeds": self.agreeing_seeds,
            "unit": self.unit,
            "distinguishable": self.distinguishable,
            "verdict": self.verdict,
        }

    @classmethod
    def from_dict(cls, values: Any, where: str = "comparison") -> PairedDifference:
        """Check and build; the verdict is derived again, never read."""
        arguments = check.dataclass_values(cls, values, where)
        arguments["seeds"] = check.items(check.integer, arguments["seeds"], check.join(where, "seeds"))
        arguments["differences"] = check.items(check.number, arguments["differences"], check.join(where, "differences"))
        arguments["summary"] = Summary.from_dict(arguments["summary"], check.join(where, "summary"))
        return cls(**arguments)


def paired_difference(
    baseline: str,
    baseline_by_seed: Mapping[int, float],
    other: str,
    other_by_seed: Mapping[int, float],
    unit: str = "points",
    confidence: float = CONFIDENCE,
) -> PairedDifference | None:
    """`other` − `baseline` per shared seed, summarised; None when the two share no seed."""
    seeds = tuple(sorted(set(baseline_by_seed) & set(other_by_seed)))
    if not seeds:
        return None
    differences = tuple(other_by_seed[seed] - baseline_by_seed[seed] for seed in seeds)
    summary = summarize(differences, confidence)
    sign = (summary.mean > 0) - (summary.mean < 0)
    agreeing = sum(1 for difference in differences if sign and (difference > 0) - (difference < 0) == sign)
    return PairedDifference(baseline, other, seeds, differences, summary, agreeing, unit)
