"""Argument values that several commands read the same way."""

from __future__ import annotations

from fmnist_core.errors import ConfigError
from fmnist_core.models.registry import MODEL_NAMES, get_spec


def model_names(text: str, option: str = "--models") -> list[str]:
    """The registry names in a comma-separated list, checked: at least one, each known, none twice."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names or len(set(names)) != len(names):
        raise ConfigError(
            f"{option} needs one or more distinct model names separated by commas, from {', '.join(MODEL_NAMES)} "
            f"(got {text!r})."
        )
    for name in names:
        get_spec(name)
    return names
