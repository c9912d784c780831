"""Adversarial pictures: the smallest change of a picture that changes a saved model's answer, and the model's
accuracy when every test picture may be changed by up to ε grey levels.

The attack is projected gradient descent in the L∞ ball (Madry et al., 2018) on pictures in [0, 1]: each step moves
every pixel by a fixed amount in the direction that lowers the true class against the strongest other class, then
clips the picture back into [original − ε, original + ε] ∩ [0, 1]. Its first step is one full ε (exactly the
one-step FGSM of Goodfellow et al., 2015), the later ones `STEP_FRACTION` of ε; there is no random start, so the
same model and pictures always give the same answer, and the iterate kept for each picture is the one that fooled
the model by the widest margin, so PGD is never weaker than FGSM.

Two copies of the model take part. The gradients come from a float32 copy of the saved weights: the shipped models
compute in bfloat16, whose gradients this CPU (no native bfloat16) runs several times slower (Model 3, 500 pictures
forward and backward: 4 a second against 22 for the float32 copy, both on the loaded 2-core machine, 2026-12-08).
Whether a picture fools the model is always decided by the saved model itself, as the app calls it
(`predict_probabilities`), mirror averaging included: a picture counts as fooled only when the saved
model gives another class for it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from fmnist_core.data.fashion_mnist import IMAGE_SIZE
from fmnist_core.errors import ConfigError
from fmnist_core.evaluate.evaluation import predict_probabilities
from fmnist_core.evaluate.predict import ClassScore, top_k
from fmnist_core.machine import import_tensorflow
from fmnist_core.pixels import to_unit_range

GREY_LEVELS = 255  # ε is quoted on the 0–1 scale and in grey levels of 255, as people see pictures.
STEPS = 10  # PGD steps per ε (PGD-10): benchmarks/attack_speed.py --steps 20 shows what twice the steps would add.
STEP_FRACTION = 0.25  # The steps after the first move each pixel by a quarter of ε: 2.5 ε over ten steps.
# A picture stops being attacked once a wrong class leads the true one by this much probability in the float32
# copy: stopping at the first crossing would leave it on the boundary, where bfloat16 rounding may undo it.
STOP_MARGIN = 0.1
BATCH_SIZE = 256  # Pictures per gradient call: Model 3's activations for 256 pictures and their mirrors fit easily.
# The budgets the search tries, in grey levels: every level up to 8 (where most pictures fall), coarser beyond.
SEARCH_LEVELS = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 20, 24, 32, 48, 64, 96, 128, 192, 255)
ROBUSTNESS_LEVELS = (0, 1, 2, 4, 8)  # The ε ∈ {0, 1, 2, 4, 8}/255 for the robustness curves.


def grey_levels(epsilon: float) -> float:
    """ε on the 0–1 scale as grey levels of 255 (3/255 → 3.0)."""
    return float(epsilon) * GREY_LEVELS


def check_epsilon(epsilon: float) -> float:
    """ε as a float, refused with the reason when it is not a number from 0 to 1."""
    if not isinstance(epsilon, int | float) or not np.isfinite(epsilon) or not 0 <= epsilon <= 1:
        raise ConfigError(
            f"ε must be a number from 0 to 1 on the 0–1 pixel scale (got {epsilon!r}); 8 grey levels is {8 / 255:.4f}."
        )
    return float(epsilon)


@dataclass(frozen=True)
class SmallestChange:
    """The smallest L∞ change found that makes a model give another class for one picture."""

    original: np.ndarray  # (28, 28) float32 in [0, 1].
    adversarial: np.ndarray  # (28, 28) float32 in [0, 1], exactly as given to the model; the original if not fooled.
    label: int | None  # The picture's true class, when known.
    before: tuple[ClassScore, ...]  # The saved model's top three for the original, most probable first.
    after: tuple[ClassScore, ...]  # Its top three for the adversarial picture.
    budget_levels: int  # The smallest budget (grey levels of 255) of SEARCH_LEVELS at which the attack succeeded.
    fooled: bool  # False: no budget up to 255 grey levels changed the answer (then adversarial is the original).
    seconds: float  # Wall time of the search.

    @property
    def epsilon(self) -> float:
        """The L∞ distance actually used, on the 0–1 scale (at most budget_levels / 255)."""
        return float(np.max(np.abs(self.adversarial - self.original)))

    @property
    def change(self) -> np.ndarray:
        """adversarial − original, (28, 28) float32 in [−ε, ε]."""
        return self.adversarial - self.original


@dataclass(frozen=True)
class RobustAccuracy:
    """Accuracy under attack on a fixed set of pictures, at several ε."""

    epsilons: tuple[float, ...]  # Ascending, on the 0–1 scale.
    accuracy: tuple[float, ...]  # The fraction of pictures still classified correctly after the attack, per ε.
    images: int  # How many pictures (the first N of the test set in the CLI and the recorded file).
    steps: int  # Attack steps per ε (1: FGSM).
    seconds: float  # Wall time of the whole measurement.

    def at(self, epsilon: float) -> float:
        """The accuracy at one of the measured ε."""
        return self.accuracy[self.epsilons.index(epsilon)]


def _unit_pictures(images) -> np.ndarray:
    pictures = to_unit_range(images).astype(np.float32, copy=False)
    if pictures.ndim != 3 or pictures.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ConfigError(f"Expected 28×28 pictures, got an array of shape {pictures.shape}.")
    return pictures


def float32_copy(model):
    """`model` (the same architecture and weights) computing in float32; the model itself when it already does."""
    if all(layer.dtype_policy.name == "float32" for layer in _all_layers(model)):
        return model

    def float32_config(config):
        if isinstance(config, dict):
            if config.get("class_name") == "DTypePolicy":
                return {**config, "config": {**config["config"], "name": "float32"}}
            return {key: float32_config(value) for key, value in config.items()}
        return [float32_config(value) for value in config] if isinstance(config, list) else config

    copy = model.__class__.from_config(float32_config(model.get_config()))
    copy.set_weights(model.get_weights())
    return copy


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


class Attacker:
    """A saved model ready to be attacked: its float32 copy with a compiled gradient, the saved model as the judge."""

    def __init__(self, model):
        tf = import_tensorflow()
        self.model = model
        self.copy = float32_copy(model)
        pictures = tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 1], tf.float32)
        classes = tf.TensorSpec([None], tf.int32)

        def margins(batch, labels):
            # log p(strongest wrong class) − log p(true class): positive exactly when the answer is wrong. Logs,
            # not probabilities: a confident answer's probability is flat, so its gradient would vanish.
            probabilities = self.copy(batch, training=False)
            true = tf.one_hot(labels, tf.shape(probabilities)[1])
            logs = tf.math.log(probabilities + 1e-30)
            wrong = tf.reduce_max(logs - 1e4 * true, axis=1)
            return wrong - tf.reduce_sum(logs * true, axis=1), probabilities

        def gradient(batch, labels):
            with tf.GradientTape() as tape:
                tape.watch(batch)
                margin, probabilities = margins(batch, labels)
            return tape.gradient(margin, batch), probabilities

        # One trace per model (the batch size is left open); no XLA, which runs ~2× slower on this CPU.
        self._gradient = tf.function(gradient, input_signature=[pictures, classes], jit_compile=False)
        self._probabilities = tf.function(
            lambda batch: self.copy(batch, training=False), input_signature=[pictures], jit_compile=False
        )

    def judge(self, pictures: np.ndarray) -> np.ndarray:
        """The saved model's class for each (N, 28, 28) float32 picture, as the app computes it."""
        return predict_probabilities(self.model, pictures).argmax(axis=1)

    def attack(self, originals: np.ndarray, labels: np.ndarray, epsilons: np.ndarray, steps: int = STEPS):
        """(pictures, wrong-class lead) after `steps` steps of PGD, one ε per picture, judged by the float32 copy.

        Each picture's kept iterate is the one with the widest lead of a wrong class over the true one (probability);
        a lead above 0 means the float32 copy is fooled by it. A picture whose lead passes STOP_MARGIN is left alone.
        """
        count = len(originals)
        labels = np.asarray(labels, np.int32)
        epsilons = np.asarray(epsilons, np.float32)[:, None, None]
        lower, upper = np.maximum(originals - epsilons, 0), np.minimum(originals + epsilons, 1)
        current, best = originals.copy(), originals.copy()
        best_lead = np.full(count, -np.inf, np.float32)
        active = np.arange(count)
        for step in range(steps + 1):
            if len(active) == 0:
                break
            last = step == steps
            for start in range(0, len(active), BATCH_SIZE):
                chunk = active[start : start + BATCH_SIZE]
                batch = current[chunk][..., None]
                if last:
                    probabilities = self._probabilities(batch).numpy()
                else:
                    gradient, probabilities = (value.numpy() for value in self._gradient(batch, labels[chunk]))
                true = probabilities[np.arange(len(chunk)), labels[chunk]]
                others = probabilities.copy()
                others[np.arange(len(chunk)), labels[chunk]] = -1
                lead = others.max(axis=1) - true
                better = lead > best_lead[chunk]
                best_lead[chunk[better]] = lead[better]
                best[chunk[better]] = current[chunk[better]]
                if not last:
                    size = epsilons[chunk] * (1.0 if step == 0 else STEP_FRACTION)
                    moved = current[chunk] + size * np.sign(gradient[..., 0])
                    current[chunk] = np.clip(moved, lower[chunk], upper[chunk])
            active = active[best_lead[active] < STOP_MARGIN]
        return best, best_lead

    def fooled(self, originals: np.ndarray, labels: np.ndarray, epsilons: np.ndarray, steps: int = STEPS):
        """(pictures, fooled): the attack's pictures and whether the saved model gives another class for each."""
        pictures, lead = self.attack(originals, labels, epsilons, steps)
        fooled = np.zeros(len(originals), bool)
        candidates = np.flatnonzero(lead > 0)
        if len(candidates):
            fooled[candidates] = self.judge(pictures[candidates]) != np.asarray(labels)[candidates]
        return pictures, fooled


def smallest_change(attacker: Attacker, image, label: int | None = None, steps: int = STEPS) -> SmallestChange:
    """The smallest budget of SEARCH_LEVELS at which PGD changes the saved model's answer for one picture.

    image: (28, 28) uint8 or float in [0, 1]. label: the true class; without it, the attack moves the picture away
    from the class the model gives it. All budgets are attacked at once, as one batch: each step costs one gradient
    call, however many budgets are tried.
    """
    started = time.perf_counter()
    original = _unit_pictures(np.asarray(image)[None])[0]
    before_probabilities = predict_probabilities(attacker.model, original[None])[0]
    before = int(before_probabilities.argmax())
    levels = np.array(SEARCH_LEVELS)
    originals = np.repeat(original[None], len(levels), axis=0)
    # The attack pushes away from the model's own answer: "change the answer" is what is asked, right or wrong.
    targets = np.full(len(levels), before, np.int32)
    pictures, fooled = attacker.fooled(originals, targets, levels / GREY_LEVELS, steps)
    adversarial, budget, after_probabilities = original, 0, before_probabilities
    for index in np.flatnonzero(fooled):
        # Checked once more alone, exactly as it will be shown and saved: one picture, one call.
        probabilities = predict_probabilities(attacker.model, pictures[index][None])[0]
        if probabilities.argmax() != before:
            adversarial, budget, after_probabilities = pictures[index], int(levels[index]), probabilities
            break
    return SmallestChange(
        original=original,
        adversarial=adversarial,
        label=label,
        before=top_k(before_probabilities),
        after=top_k(after_probabilities),
        budget_levels=budget,
        fooled=budget > 0,
        seconds=time.perf_counter() - started,
    )


def robust_accuracy(attacker: Attacker, images, labels, epsilons, steps: int = STEPS) -> RobustAccuracy:
    """The saved model's accuracy on `images` when each may be changed by up to ε (L∞), for every ε given.

    ε = 0 is the model's plain accuracy on these pictures. The ε are worked through in ascending order, and a picture
    fooled at a smaller ε counts as fooled at every larger one (its fooled picture is within the larger budget too),
    so only the pictures still standing are attacked again. steps=1 is FGSM.
    """
    started = time.perf_counter()
    epsilons = sorted({check_epsilon(epsilon) for epsilon in epsilons})
    originals, labels = _unit_pictures(images), np.asarray(labels).astype(np.int32)
    if len(originals) == 0 or len(originals) != len(labels):
        raise ConfigError(f"Need one label per picture and at least one picture (got {len(originals)}, {len(labels)}).")
    fooled = attacker.judge(originals) != labels
    accuracy = []
    for epsilon in epsilons:
        standing = np.flatnonzero(~fooled)
        if epsilon > 0 and len(standing):
            budgets = np.full(len(standing), epsilon, np.float32)
            _, newly = attacker.fooled(originals[standing], labels[standing], budgets, steps)
            fooled[standing[newly]] = True
        accuracy.append(float((~fooled).mean()))
    return RobustAccuracy(tuple(epsilons), tuple(accuracy), len(originals), steps, time.perf_counter() - started)


def change_picture(change: np.ndarray) -> tuple[np.ndarray, float]:
    """(uint8 (28, 28) picture, scale) of a change: mid grey is no change, white +scale, black −scale.

    The scale is the change's largest magnitude, so even a change of one grey level fills the whole range.
    """
    scale = float(np.max(np.abs(change)))
    normalised = change / scale if scale > 0 else np.zeros_like(change)
    return np.round(127.5 + 127.5 * normalised).astype(np.uint8), scale
