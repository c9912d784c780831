"""The training recipe's own Keras objects: the learning-rate schedule and the label-smoothed loss.

A saved model carries its compile settings (a mirror-averaged model carries them inside its trained network, and
Keras rebuilds those even when loading with `compile=False`), so these classes are registered: importing this
module lets `keras.saving.load_model` find them. The cache imports it before loading a model; training imports
it to compile one.
"""

from __future__ import annotations

import math

from fmnist_core.machine import import_keras

# This process's backend (TensorFlow quietly first when it is the backend): the race's JAX and PyTorch lanes build
# their optimizer with this schedule in processes where TensorFlow cannot be imported.
keras = import_keras()
ops = keras.ops


@keras.saving.register_keras_serializable(package="fmnist_core")
class WarmupThenDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `peak` over `warmup_steps`, then `shape` until `total_steps`.

    shape: "constant" (hold the peak), "cosine" or "linear" (decay to 0 at the last step). Without warm-up,
    "cosine" computes exactly what keras.optimizers.schedules.CosineDecay(peak, total_steps) does, operation for
    operation, so runs of the earlier recipe learn the same weights.
    """

    def __init__(self, peak: float, total_steps: int, warmup_steps: int = 0, shape: str = "constant"):
        self.peak, self.total_steps, self.warmup_steps, self.shape = peak, total_steps, warmup_steps, shape

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak = ops.convert_to_tensor(self.peak)
        # A cast count and a clip before dividing, as CosineDecay does: dividing by a Python number let the graph
        # rewrite the division and move the last bit of some rates (tests/test_recipe.py).
        decay_steps = ops.cast(max(1, self.total_steps - self.warmup_steps), "float32")
        fraction = ops.divide(ops.clip(step - self.warmup_steps, 0.0, decay_steps), decay_steps)
        if self.shape == "cosine":
            pi = ops.array(math.pi, dtype="float32")
            after_warmup = ops.multiply(peak, 0.5 * (1.0 + ops.cos(ops.multiply(pi, fraction))))
        elif self.shape == "linear":
            after_warmup = peak * (1.0 - fraction)
        else:
            after_warmup = peak
        if not self.warmup_steps:
            return after_warmup
        return ops.where(step < self.warmup_steps, peak * step / self.warmup_steps, after_warmup)

    def get_config(self) -> dict:
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "shape": self.shape,
        }


@keras.saving.register_keras_serializable(package="fmnist_core")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy on integer labels against smoothed targets: 1 − s on the label, s spread over all classes."""

    def __init__(self, label_smoothing: float, name: str = "smoothed_sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        targets = ops.one_hot(ops.cast(ops.reshape(y_true, [-1]), "int32"), y_pred.shape[-1])
        return keras.losses.categorical_crossentropy(targets, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
