"""Settings and rules for one server shared by a class: classroom mode, the training queue, who may do what.

The settings live in `.streamlit/classroom.toml`, next to Streamlit's own config.toml (which refuses options it
does not know), and each can be overridden by an environment variable for a one-off run:

    FMNIST_CLASSROOM=1            classroom mode on (shipped and teacher-trained models read-only in the app)
    FMNIST_TRAINING_WORKERS=2     trainings that run at once
    FMNIST_QUEUE_LIMIT=40         training requests that may wait
    FMNIST_SCHEDULER=tcp://HOST:8786   train on that Dask cluster (a classroom's PCs each running `dask worker`)
                                  instead of the local worker process the server starts (fmnist_core/engine)

A visitor is one browser, known by a random id the app keeps in that browser's cookie (fmnist_app/visitor.py),
never in the page address, so a reload finds the same requests and a shared address grants nothing. The id names
no file, and the rules below only ever let it act on what that same visitor asked for.
"""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from fmnist_core.config import whole_number
from fmnist_core.errors import ConfigError
from fmnist_core.paths import PROJECT_ROOT

SETTINGS_FILE = PROJECT_ROOT / ".streamlit" / "classroom.toml"
ENVIRONMENT = {
    "classroom": "FMNIST_CLASSROOM",
    "training_workers": "FMNIST_TRAINING_WORKERS",
    "queue_limit": "FMNIST_QUEUE_LIMIT",
    "scheduler": "FMNIST_SCHEDULER",
}
TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
VISITOR_PATTERN = re.compile(r"[0-9a-f]{32}")
MAX_WORKERS, MAX_QUEUE = 64, 1000
SCHEDULER_PATTERN = re.compile(r"|(tcp|tls)://[\w.\-\[\]:]+:\d{1,5}")


@dataclass(frozen=True)
class ClassroomSettings:
    """How the app shares one machine between visitors."""

    classroom: bool = False  # True: models the CLI or another visitor trained are read-only; no deleting in the app.
    training_workers: int = 1  # Trainings at once; 1 on 2 cores (docs/results/classroom-load.md).
    queue_limit: int = 30  # Requests that may wait (each visitor may have one); one more is refused.
    scheduler: str = ""  # A Dask scheduler's address (tcp://HOST:8786) to train on; empty: a local worker process.

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.classroom, bool):
            problems.append(f"classroom must be true or false (got {self.classroom!r})")
        if not isinstance(self.training_workers, int) or not 1 <= self.training_workers <= MAX_WORKERS:
            problems.append(
                f"training_workers must be a whole number from 1 to {MAX_WORKERS} (got {self.training_workers!r})"
            )
        if not isinstance(self.queue_limit, int) or not 0 <= self.queue_limit <= MAX_QUEUE:
            problems.append(f"queue_limit must be a whole number from 0 to {MAX_QUEUE} (got {self.queue_limit!r})")
        if not isinstance(self.scheduler, str) or not SCHEDULER_PATTERN.fullmatch(self.scheduler):
            problems.append(f"scheduler must be empty or an address like tcp://10.0.0.5:8786 (got {self.scheduler!r})")
        if problems:
            raise ConfigError("Invalid classroom settings: " + "; ".join(problems) + ".")


def load_settings(path: Path = SETTINGS_FILE, environment: dict[str, str] | None = None) -> ClassroomSettings:
    """The settings file (absent: defaults) with environment overrides; ConfigError naming the file or variable."""
    environment = os.environ if environment is None else environment
    values: dict = {}
    if path.is_file():
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise ConfigError(f"{path} is not valid TOML ({error}). Fix it or delete it to use the defaults.") from None
        unknown = sorted(set(values) - {field.name for field in fields(ClassroomSettings)})
        if unknown:
            raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}. Known: {', '.join(ENVIRONMENT)}.")
    for name, variable in ENVIRONMENT.items():
        if environment.get(variable, "").strip():
            text = environment[variable].strip()
            values[name] = text if name == "scheduler" else _parse_variable(variable, text, name == "classroom")
    try:
        return ClassroomSettings(**values)
    except ConfigError as error:
        raise ConfigError(f"{error} (read from {path} and the FMNIST_* environment variables)") from None


def _parse_variable(variable: str, text: str, boolean: bool) -> bool | int:
    if boolean:
        if text.lower() in TRUE_WORDS + FALSE_WORDS:
            return text.lower() in TRUE_WORDS
        raise ConfigError(f"{variable} must be 1 or 0 (true/false, yes/no, on/off); got {text!r}.")
    try:
        return whole_number(text)
    except ValueError:
        raise ConfigError(f"{variable} must be a whole number; got {text!r}.") from None


# Visitors ----------------------------------------------------------------------------------------------------


def new_visitor_id() -> str:
    """A fresh random visitor id (128 bits, hex)."""
    return secrets.token_hex(16)


def is_visitor_id(text: object) -> bool:
    """True for an id `new_visitor_id` could have made; anything else a browser sends is ignored."""
    return isinstance(text, str) and VISITOR_PATTERN.fullmatch(text) is not None


# Who may do what ---------------------------------------------------------------------------------------------


def may_delete_in_app(settings: ClassroomSettings) -> bool:
    """Deleting cached models from the app: never in classroom mode (the teacher uses `cache delete`)."""
    return not settings.classroom


def may_replace(entry_owner: str | None, visitor: str, settings: ClassroomSettings) -> bool:
    """Retraining a cached model (its entry is replaced): in classroom mode only the visitor who trained it."""
    return not settings.classroom or (entry_owner is not None and entry_owner == visitor)


def may_stop(job_owner: str | None, visitor: str, settings: ClassroomSettings) -> bool:
    """Stopping a job or withdrawing a request: one's own always; anyone's only outside classroom mode."""
    return job_owner == visitor or not settings.classroom
