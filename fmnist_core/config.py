"""Training settings: one frozen dataclass, validated, with named presets."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass

from fmnist_core.errors import ConfigError

# Bump when the training recipe changes what the same settings produce; every cache record stores it, and
# records written before it existed read as 1.
RECIPE_VERSION = 1
PRECISIONS = ("mixed_bfloat16", "float32", "mixed_float16")
SCHEDULES = ("constant", "cosine")
# NumPy's and Keras' seeding take unsigned 32-bit seeds: anything else ends in a NumPy traceback mid-run.
SEED_MAX = 2**32 - 1


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
    learning_rate: float = 2e-3  # Peak Adam learning rate.
    seed: int = 42  # Seeds weights, shuffling, augmentation and the validation split.
    train_limit: int | None = 18000  # Training images used (None = all that the split leaves).
    validation_split: float = 0.1  # Share of the 60 000 training images held out for validation curves.
    augment: bool = False  # Random ±2 px shifts and horizontal flips of training images.
    schedule: str = "constant"  # Learning-rate schedule: "constant" or "cosine" decay to 0.
    weight_decay: float = 0.0  # Decoupled weight decay (AdamW) when > 0.
    early_stopping_patience: int | None = None  # Stop after this many epochs without val_accuracy gain.
    precision: str = "mixed_bfloat16"  # "mixed_bfloat16" is 1.5–2× faster than float32 on this CPU.
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


PRESETS: dict[str, TrainConfig] = {
    # Seconds, not minutes, on a 2-core CPU: 3 short epochs, so the curves still have a shape.
    "quick": TrainConfig(),
    # The accuracy run: all 54 000 training images, augmentation, cosine schedule, early stopping.
    "full": TrainConfig(
        epochs=30,
        train_limit=None,
        augment=True,
        schedule="cosine",
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
