"""Training settings: one frozen dataclass, validated, with named presets."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import asdict, dataclass

from fmnist_core.errors import ConfigError

# Bump when the training recipe changes what the same settings produce; every cache record stores it, and
# records written before it existed read as 1. 2: the time-to-accuracy recipe (issue 13): new presets (quick,
# class, full) and settings (warm-up, linear decay, label smoothing, weight averaging, Adam beta 2, erasing).
RECIPE_VERSION = 2
PRECISIONS = ("mixed_bfloat16", "float32", "mixed_float16")
SCHEDULES = ("constant", "cosine", "linear")
# NumPy's and Keras' seeding take unsigned 32-bit seeds: anything else ends in a NumPy traceback mid-run.
SEED_MAX = 2**32 - 1


# Numbers typed by users are ASCII: int() and float() also take other scripts' digits ('٣' is 3), underscores and
# spaces, so `test:٣` or `--epochs ３` would run as if typed in ASCII. Every number read from user text (arguments,
# environment variables, `test:N`) goes through these two; a pattern matching digits in user text uses [0-9].
WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")
DECIMAL_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def whole_number(text: str) -> int:
    """The whole number written in `text` (ASCII digits, optional sign); ValueError otherwise."""
    if not WHOLE_NUMBER.fullmatch(text):
        raise ValueError(f"not a whole number in ASCII digits: {text!r}")
    return int(text)


def decimal_number(text: str) -> float:
    """The finite number written in `text` (ASCII digits, optional sign, point and exponent); ValueError otherwise."""
    if not DECIMAL_NUMBER.fullmatch(text):
        raise ValueError(f"not a number in ASCII digits: {text!r}")
    return float(text)


def seed_problem(seed) -> str | None:
    """Why `seed` cannot seed a run, or None: every seed (training, race) is a whole number from 0 to 2³²−1."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        return f"seed must be a whole number from 0 to {SEED_MAX:,} (got {seed!r})"
    return None


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a training run does. Same config + same data = same cache entry."""

    epochs: int = 3  # Passes over the training images (early stopping may end sooner).
    batch_size: int = 256  # Larger batches keep both cores busy; 256 measured fastest here.
    learning_rate: float = 2e-3  # Peak Adam learning rate (reached after the warm-up).
    seed: int = 42  # Seeds weights, shuffling, augmentation and the validation split.
    train_limit: int | None = 18000  # Training images used (None = all that the split leaves).
    validation_split: float = 0.1  # Share of the 60 000 training images held out for validation curves.
    augment: bool = False  # Random horizontal flips of training images, plus the shifts and erasing below.
    shift_pixels: int = 2  # With augment: random shifts of up to ± this many pixels (0 = flips only).
    erase_probability: float = 0.0  # With augment: share of images given one random-noise rectangle.
    schedule: str = "constant"  # After the warm-up: "constant", or "cosine" / "linear" decay to 0 at the end.
    warmup_fraction: float = 0.0  # Share of all steps over which the learning rate rises linearly from 0.
    label_smoothing: float = 0.0  # Share of each target spread evenly over the 10 classes.
    ema_momentum: float | None = None  # Keep an exponential moving average of the weights; it is what is saved.
    weight_decay: float = 0.0  # Decoupled weight decay (AdamW) when > 0, scaled by the learning rate.
    adam_beta_2: float = 0.999  # Decay of Adam's squared-gradient average (lower adapts faster).
    early_stopping_patience: int | None = None  # Stop after this many epochs without val_accuracy gain.
    precision: str = "mixed_bfloat16"  # 1.5–2× faster than float32 with native bfloat16; see for_this_machine.
    jit_compile: bool = False  # XLA: slower on the team's 2-core CPU, so off unless asked for.

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.epochs, int) or self.epochs < 1:
            problems.append(f"epochs must be a whole number ≥ 1 (got {self.epochs!r})")
        if not isinstance(self.batch_size, int) or not 1 <= self.batch_size <= 8192:
            problems.append(f"batch size must be between 1 and 8192 (got {self.batch_size!r})")
        if seed_problem(self.seed):
            problems.append(seed_problem(self.seed))
        if not 0 < self.learning_rate <= 1:
            problems.append(f"learning rate must be in (0, 1] (got {self.learning_rate!r})")
        if self.train_limit is not None and (not isinstance(self.train_limit, int) or self.train_limit < 1):
            problems.append(f"train limit must be ≥ 1 image or None for all (got {self.train_limit!r})")
        if not 0 <= self.validation_split < 0.5:
            problems.append(f"validation split must be in [0, 0.5) (got {self.validation_split!r})")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {', '.join(SCHEDULES)} (got {self.schedule!r})")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {', '.join(PRECISIONS)} (got {self.precision!r})")
        if self.weight_decay < 0:
            problems.append(f"weight decay must be ≥ 0 (got {self.weight_decay!r})")
        if not isinstance(self.shift_pixels, int) or not 0 <= self.shift_pixels <= 8:
            problems.append(f"shift pixels must be a whole number from 0 to 8 (got {self.shift_pixels!r})")
        if not 0 <= self.erase_probability <= 1:
            problems.append(f"erase probability must be in [0, 1] (got {self.erase_probability!r})")
        if not 0 <= self.warmup_fraction < 1:
            problems.append(f"warm-up fraction must be in [0, 1) (got {self.warmup_fraction!r})")
        if not 0 <= self.label_smoothing < 1:
            problems.append(f"label smoothing must be in [0, 1) (got {self.label_smoothing!r})")
        if not 0 < self.adam_beta_2 < 1:
            problems.append(f"Adam beta 2 must be in (0, 1) (got {self.adam_beta_2!r})")
        if self.ema_momentum is not None and not 0 < self.ema_momentum < 1:
            problems.append(f"EMA momentum must be in (0, 1), or None for no averaging (got {self.ema_momentum!r})")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            problems.append("early stopping patience must be ≥ 1 or None")
        if problems:
            raise ConfigError("Invalid training settings: " + "; ".join(problems) + ".")

    def to_dict(self) -> dict:
        return asdict(self)

    def replace(self, **changes) -> TrainConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


# The short-run recipe (issue 13), every part chosen on the validation images (benchmarks/recipe_search.py,
# docs/results/training.md): a 10 % warm-up then linear decay to 0, batches of 64 (more steps per image),
# a 3e-3 peak and a faster-adapting Adam (beta 2 0.99). No augmentation: in two or three epochs it only cost.
SHORT_RUN = TrainConfig(batch_size=64, learning_rate=3e-3, schedule="linear", warmup_fraction=0.1, adam_beta_2=0.99)

PRESETS: dict[str, TrainConfig] = {
    # Seconds, not minutes, on a 2-core CPU: 3 short epochs of 18 000 images, so the curves still have a shape.
    "quick": SHORT_RUN,
    # A live demo for a class: two epochs of all 54 000 training images, curves growing as the class watches.
    "class": SHORT_RUN.replace(epochs=2, train_limit=None),
    # The accuracy run at half the earlier cost: 15 epochs of all 54 000 images, flipped and shifted by at most
    # 1 px at random (±2 px cost at 15 epochs), the short-run schedule with a 6e-3 peak, saved mirror-averaged.
    # The small AdamW decay and the early stopping are kept from the earlier recipe, not levers of this search.
    "full": TrainConfig(
        epochs=15,
        learning_rate=6e-3,
        train_limit=None,
        augment=True,
        shift_pixels=1,
        schedule="linear",
        warmup_fraction=0.1,
        adam_beta_2=0.99,
        weight_decay=1e-4,
        early_stopping_patience=5,
    ),
}


def get_preset(name: str) -> TrainConfig:
    """A named preset; unknown names raise ConfigError listing the valid ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"Unknown preset {name!r}. Valid presets: {', '.join(PRESETS)}.") from None


def preset_name(config: TrainConfig) -> str | None:
    """The name of the preset `config` is, in whichever precision (`for_this_machine` may train one in float32),
    or None for custom settings."""
    return next(
        (name for name, preset in PRESETS.items() if config.replace(precision=preset.precision) == preset), None
    )


def for_this_machine(config: TrainConfig) -> TrainConfig:
    """`config` as this machine trains it when nobody chose the precision: the presets' bfloat16 where it is fast
    (a CPU with native bfloat16, or a GPU), float32 elsewhere (`machine.bfloat16_is_fast`). The presets themselves
    stay as defined, so a model trained with bfloat16 elsewhere is still the same preset's model here."""
    from fmnist_core.machine import bfloat16_is_fast

    if config.precision == "mixed_bfloat16" and not bfloat16_is_fast():
        return config.replace(precision="float32")
    return config


def machine_precision_reason() -> str:
    """Why this machine trains in the precision `for_this_machine` gives the presets, in words."""
    from fmnist_core.machine import bfloat16_is_fast, native_bfloat16_flags

    if not bfloat16_is_fast():
        return "this CPU has no native bfloat16 (AVX512-BF16 or AMX), where bfloat16 trains several times slower"
    flags = native_bfloat16_flags()
    return f"this CPU computes bfloat16 natively ({', '.join(flags)})" if flags else "a GPU computes bfloat16 fast"


def precision_note(config: TrainConfig) -> str | None:
    """Why `for_this_machine` changed `config`'s precision, in a sentence; None when it did not."""
    if for_this_machine(config) == config:
        return None
    return (
        f"Training in float32: {machine_precision_reason()}; on the full preset the two precisions scored within "
        "0.11 points."
    )
