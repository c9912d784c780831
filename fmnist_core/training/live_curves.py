"""Curves that grow while a training runs: smoothed training loss and accuracy, and the validation slice's accuracy.

The class demo is two epochs, so per-epoch curves have two points and the first comes after half the run. Keras'
batch logs hold the running mean of the current epoch; the mean of the batches between two reports is recovered from
two running means (n·mean_n − k·mean_k over n − k batches), so a report every batch (in process) and one every half
second (from a Dask worker) give the same curve, and an exponential average over batches smooths it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fmnist_core.training.loop import Progress

SMOOTHING_PER_BATCH = 0.05  # Weight of one batch in the exponential average (about the last 20 batches count).
POINT_SPACING = 0.01  # A new curve point once the run has moved on by this share (≤ ~100 points a run).
METRICS = ("loss", "accuracy")


@dataclass
class LiveCurves:
    """Fed every Progress event of one run; `points` and `checks` are what the live chart draws.

    points: {"fraction", "loss", "accuracy"} of the smoothed training figures, every ~1 % of the run.
    checks: {"fraction", "slice_accuracy"} from the run's "check" events (every ~10 % of the run).
    """

    points: list[dict] = field(default_factory=list)
    checks: list[dict] = field(default_factory=list)
    _smoothed: dict = field(default_factory=dict)
    _last_batch: tuple[int, int] = (0, 0)  # (epoch, batch) of the previous batch report.
    _last_means: dict = field(default_factory=dict)  # That report's running means.

    def add(self, event: Progress) -> bool:
        """Take one event; True when the curves changed."""
        if event.kind == "check":
            self.checks.append({"fraction": event.fraction, "slice_accuracy": event.metrics["slice_accuracy"]})
            return True
        # An epoch's end carries the same running means as its last batch: a run reported sparsely still gets them.
        if event.kind not in ("batch", "epoch") or not all(metric in event.metrics for metric in METRICS):
            return False
        epoch, batch = self._last_batch
        earlier = batch if epoch == event.epoch else 0
        count = event.batch - earlier
        if count <= 0:
            return False
        for metric in METRICS:
            mean_before = self._last_means.get(metric, 0.0) if earlier else 0.0
            block_mean = (event.batch * event.metrics[metric] - earlier * mean_before) / count
            weight = 1 - (1 - SMOOTHING_PER_BATCH) ** count
            previous = self._smoothed.get(metric)
            self._smoothed[metric] = block_mean if previous is None else previous + weight * (block_mean - previous)
        self._last_batch = (event.epoch, event.batch)
        self._last_means = {metric: event.metrics[metric] for metric in METRICS}
        if self.points and event.fraction - self.points[-1]["fraction"] < POINT_SPACING and event.fraction < 1:
            return False
        self.points.append({"fraction": event.fraction, **self._smoothed})
        return True
