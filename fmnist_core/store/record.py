"""The model record: everything known about one trained model, as the cache stores it in `meta.json`.

The pipeline builds a `ModelRecord` after training and evaluating, the cache stamps it (entry id, checksum)
and writes `to_dict()`; reading goes through `from_dict`, which checks every field (type, range, required,
finite) because meta.json is a file anyone can edit or half-restore. A record that does not check out raises
`RecordError` naming the field, and the cache lists that entry as damaged, with the reason.

Layouts: format 2 is this record. Format 1 (entries written before the typed record) is read through
`_from_format_1`, the one place that knows the old layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from fmnist_core import json_checks as check
from fmnist_core.config import RECIPE_VERSION, TrainConfig
from fmnist_core.errors import ConfigError, RecordError
from fmnist_core.evaluate.evaluation import Evaluation
from fmnist_core.jobs.classroom import VISITOR_PATTERN
from fmnist_core.models.registry import ModelSpec

RECORD_FORMAT = 2  # The meta.json layout written now; bump when it changes, and read the old one in from_dict.
ENTRY_ID_PATTERN = r"[a-z0-9]+-[0-9a-f]{12}"  # "<model name>-<12 hex digits of the cache key>".
SHA256_PATTERN = r"[0-9a-f]{64}"
SPEED_SETTINGS_REQUIRED = {"precision": check.text, "batch_size": check.integer, "device": check.text}


@dataclass(frozen=True)
class ModelRecord:
    """One trained model: what it is, how it was trained, how it did, where and when. JSON through to/from_dict."""

    spec: ModelSpec  # The architecture trained.
    config: TrainConfig  # The settings it was trained with.
    evaluation: Evaluation  # How the saved model did on the test set.
    history: Mapping[str, tuple[float, ...]]  # Per-epoch loss, accuracy, val_loss, val_accuracy.
    epoch_seconds: tuple[float, ...]  # Wall time of each epoch, validation included.
    wall_seconds: float  # All epochs together.
    images_per_second: float  # Training images per second, validation excluded.
    train_images: int  # Images in the training split actually used.
    validation_images: int  # Held out for the validation curves (0 when none).
    best_epoch: int  # 1-based epoch whose weights the model holds (early stopping keeps the best).
    speed_settings: Mapping[str, Any]  # precision, batch_size, device (required), threads, jit_compile, ...
    parameters: int  # Every weight, batch-norm statistics included.
    forward_flops: int  # Per image; a multiply-add counts as 2.
    single_view_accuracy: float | None  # Test accuracy without mirror averaging; None when saved as trained.
    machine: Mapping[str, Any]  # machine_info() of the computer that trained it.
    created: str  # ISO time the record was made, e.g. "2026-11-25T19:40:12".
    recipe_version: int = RECIPE_VERSION  # The training recipe (fmnist_core.config.RECIPE_VERSION) it ran.
    command: str | None = None  # The CLI command that trained it; None when trained from the app.
    owner: str | None = None  # The app visitor who asked for it (classroom mode: only they may replace it); else None.
    entry_id: str = ""  # Cache folder name; set by ModelCache.save.
    model_sha256: str = ""  # SHA-256 of model.keras; set by ModelCache.save.
    format: int = RECORD_FORMAT  # meta.json layout.

    @property
    def test_accuracy(self) -> float:
        return self.evaluation.test_accuracy

    @property
    def epochs_run(self) -> int:
        """Epochs actually trained (early stopping may end before config.epochs)."""
        return len(self.history["loss"])

    def to_dict(self) -> dict:
        values = {field.name: getattr(self, field.name) for field in fields(self)}
        return {
            **values,
            "spec": self.spec.to_dict(),
            "config": self.config.to_dict(),
            "evaluation": self.evaluation.to_dict(),
            "history": {key: list(series) for key, series in self.history.items()},
            "epoch_seconds": list(self.epoch_seconds),
            "speed_settings": dict(self.speed_settings),
            "machine": dict(self.machine),
        }

    @classmethod
    def from_dict(cls, values: Any) -> ModelRecord:
        """Check and build a record from meta.json's content (any layout this app ever wrote).

        Raises RecordError naming the first field that is missing, mistyped, out of range or not finite.
        """
        try:
            values = check.obj(values, "meta.json")
            layout = check.integer(check.required(values, "format"), "format", minimum=1)
            if layout > RECORD_FORMAT:
                raise check.FieldError(
                    f"`format` is {layout}: written by a newer version of this app (this one reads up to "
                    f"{RECORD_FORMAT})"
                )
            return cls._from_current_layout(_from_format_1(values) if layout == 1 else values)
        except check.FieldError as error:
            raise RecordError(str(error)) from None

    @classmethod
    def _from_current_layout(cls, values: dict) -> ModelRecord:
        def field(key: str):
            return check.required(values, key)

        history = _history(field("history"))
        epochs = len(history["loss"])
        return cls(
            spec=_spec(field("spec")),
            config=_config(field("config")),
            evaluation=Evaluation.from_dict(field("evaluation")),
            history=history,
            epoch_seconds=tuple(
                check.number(seconds, f"epoch_seconds[{index}]", minimum=0)
                for index, seconds in enumerate(check.array(field("epoch_seconds"), "epoch_seconds", min_length=1))
            ),
            wall_seconds=check.number(field("wall_seconds"), "wall_seconds", minimum=0),
            images_per_second=check.number(field("images_per_second"), "images_per_second", minimum=0),
            train_images=check.integer(field("train_images"), "train_images", minimum=1),
            validation_images=check.integer(field("validation_images"), "validation_images", minimum=0),
            best_epoch=check.integer(field("best_epoch"), "best_epoch", minimum=1, maximum=epochs),
            speed_settings=_speed_settings(field("speed_settings")),
            parameters=check.integer(field("parameters"), "parameters", minimum=1),
            forward_flops=check.integer(field("forward_flops"), "forward_flops", minimum=1),
            single_view_accuracy=check.optional(
                check.number, field("single_view_accuracy"), "single_view_accuracy", minimum=0, maximum=1
            ),
            machine=check.obj(field("machine"), "machine"),
            created=_timestamp(field("created")),
            recipe_version=check.integer(field("recipe_version"), "recipe_version", minimum=1),
            # Optional: records written before the command was kept have none.
            command=check.optional(check.text, values.get("command"), "command"),
            # Optional too: records written before the training queue have no owner (nor do CLI or shipped ones).
            owner=check.optional(
                check.text,
                values.get("owner"),
                "owner",
                pattern=VISITOR_PATTERN.pattern,
                meaning="a visitor id (32 hexadecimal digits)",
            ),
            entry_id=check.text(
                field("entry_id"),
                "entry_id",
                pattern=ENTRY_ID_PATTERN,
                meaning="a cache entry id like model1-0123456789ab",
            ),
            model_sha256=check.text(
                field("model_sha256"), "model_sha256", pattern=SHA256_PATTERN, meaning="64 hexadecimal digits"
            ),
            format=RECORD_FORMAT,
        )


def _from_format_1(values: dict) -> dict:
    """meta.json as written before the typed record: the same fields, minus two.

    `recipe_version` did not exist (those runs are recipe 1), and entries saved before mirror averaging
    (architecture 3) have no `single_view_accuracy` (they answered from the picture alone: None).
    """
    return {"recipe_version": 1, "single_view_accuracy": None, **values, "format": RECORD_FORMAT}


def _spec(values: Any) -> ModelSpec:
    spec = ModelSpec(**check.dataclass_values(ModelSpec, values, "spec"))
    check.text(spec.name, "spec.name", pattern=r"[a-z0-9]+", meaning="a model name like model1")
    for name in ("first_filters", "block2_filters", "block3_filters", "dense_units", "architecture_version"):
        check.integer(getattr(spec, name), f"spec.{name}", minimum=1)
    check.number(spec.dropout, "spec.dropout", minimum=0, maximum=0.99)
    return spec


def _config(values: Any) -> TrainConfig:
    arguments = check.dataclass_values(TrainConfig, values, "config")
    try:
        return TrainConfig(**arguments)
    except (ConfigError, TypeError) as error:  # TypeError: a value of a type the settings cannot compare.
        raise check.FieldError(f"`config` is not valid: {error}") from None


def _history(values: Any) -> dict[str, tuple[float, ...]]:
    """Per-epoch series; `loss` is required and every series has one value per epoch. Losses and accuracies may
    be NaN or infinite: a run that diverged records that honestly."""
    values = check.obj(values, "history")
    check.required(values, "loss", "history")
    history = {
        key: tuple(
            check.number(value, f"history.{key}[{index}]", finite=False)
            for index, value in enumerate(check.array(series, f"history.{key}", min_length=1))
        )
        for key, series in values.items()
    }
    epochs = len(history["loss"])
    for key, series in history.items():
        if len(series) != epochs:
            raise check.FieldError(
                f"`history.{key}` has {len(series)} value(s) but `history.loss` has {epochs}: one per epoch each"
            )
    return history


def _speed_settings(values: Any) -> dict:
    values = check.obj(values, "speed_settings")
    for key, check_value in SPEED_SETTINGS_REQUIRED.items():
        check_value(check.required(values, key, "speed_settings"), f"speed_settings.{key}")
    return values


def _timestamp(value: Any) -> str:
    check.text(value, "created", meaning="a date and time like 2026-11-25T19:40:12")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise check.fail("created", "a date and time like 2026-11-25T19:40:12", value) from None
    return value
