"""Reading untrusted JSON into typed values: the one validator of every JSON file the project reads.

Model records (`meta.json`), race files, sweep results and the benchmarks' result lines are all read here: `parse`
and `read_file` turn bytes into JSON with the same messages for a file that is too large, not text or not JSON, and
the checks below name the field at fault and say what it should be ("evaluation.per_class[3].f1"). Everything
raises `FieldError`, which each format's reader turns into its own project error (the cache's `RecordError`, the
race file's `RaceFileError`, a sweep's `CacheError`), so the user reads one sentence instead of a traceback.

A leaf module (nothing of ours imported).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


class FieldError(ValueError):
    """One JSON field is missing or is not what it should be."""


def parse(payload: bytes | str, source: str, *, max_bytes: int | None = None) -> Any:
    """JSON from a file's content; `source` names the file in messages ("race.json", "meta.json of model1-…")."""
    raw = payload.encode("utf-8") if isinstance(payload, str) else payload
    _check_size(len(raw), source, max_bytes)
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise FieldError(f"{source} is not text, so it is not a JSON file") from None
    except json.JSONDecodeError as error:
        raise FieldError(
            f"{source} is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})"
        ) from None
    except RecursionError:  # Nothing but nested brackets: no file this project writes.
        raise FieldError(f"{source} nests its values too deeply to be a JSON file of this app") from None


def read_file(path: Path | str, *, max_bytes: int | None = None, source: str | None = None) -> Any:
    """JSON from a file, its size checked before it is read; FieldError for anything wrong, unreadable included."""
    path = Path(path)
    source = source or path.name
    try:
        _check_size(path.stat().st_size, source, max_bytes)
        return parse(path.read_bytes(), source, max_bytes=max_bytes)
    except OSError as error:
        raise FieldError(f"Cannot read {path}: {error.strerror or error}") from None


def _check_size(size: int, source: str, max_bytes: int | None) -> None:
    if max_bytes is not None and size > max_bytes:
        raise FieldError(f"{source} is {size / 2**20:.1f} MB; this kind of file is at most {max_bytes / 2**20:g} MB")


def describe(value: Any) -> str:
    """How a JSON value reads in a message: `text ('0.9')`, `null`, `the number nan`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (true/false)"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"text ({value[:40]!r})"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def fail(path: str, expectation: str, value: Any) -> FieldError:
    return FieldError(f"`{path}` should be {expectation}, but it is {describe(value)}")


def join(where: str, key: str | int) -> str:
    """The path of a field inside `where`: `spec.name`, `history.loss[2]`."""
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else key


def required(values: Mapping, key: str, where: str = "") -> Any:
    if key not in values:
        raise FieldError(f"`{join(where, key)}` is missing")
    return values[key]


def obj(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise fail(path, "an object", value)
    return value


def array(value: Any, path: str, *, min_length: int = 0) -> list:
    if not isinstance(value, list):
        raise fail(path, "a list", value)
    if len(value) < min_length:
        raise FieldError(f"`{path}` should hold at least {min_length} item(s), but it holds {len(value)}")
    return value


def text(value: Any, path: str, *, pattern: str | None = None, meaning: str = "text") -> str:
    if not isinstance(value, str) or (pattern is not None and not re.fullmatch(pattern, value)):
        raise fail(path, meaning, value)
    return value


def boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise fail(path, "true or false", value)
    return value


def integer(value: Any, path: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    # JSON has no separate integers, but 3.0 is not what this app writes for a count; true is not a number.
    if isinstance(value, bool) or not isinstance(value, int) or not _within(value, minimum, maximum):
        raise fail(path, _range_words("a whole number", minimum, maximum), value)
    return value


def number(
    value: Any, path: str, *, minimum: float | None = None, maximum: float | None = None, finite: bool = True
) -> float:
    """A JSON number as float. finite=False lets NaN and ±inf through (e.g. the loss of a run that diverged)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(path, _range_words("a finite number" if finite else "a number", minimum, maximum), value)
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        if finite:
            raise fail(path, _range_words("a finite number", minimum, maximum), value)
        return value
    if not _within(value, minimum, maximum):
        raise fail(path, _range_words("a finite number", minimum, maximum), value)
    return value


def one_of(value: Any, path: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise fail(path, f"one of {', '.join(allowed)}", value)
    return value


def items(check: Callable, value: Any, path: str, **limits) -> tuple:
    """A JSON list whose every item passes `check` (given the item's path)."""
    return tuple(check(item, join(path, index), **limits) for index, item in enumerate(array(value, path)))


def optional(check, value: Any, path: str, **limits) -> Any:
    """`check(value, path, **limits)`, or None when the value is null."""
    return None if value is None else check(value, path, **limits)


def _within(value: float, minimum: float | None, maximum: float | None) -> bool:
    return (minimum is None or value >= minimum) and (maximum is None or value <= maximum)


def _range_words(kind: str, minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"{kind} from {minimum:g} to {maximum:g}"
    if minimum is not None:
        return f"{kind} ≥ {minimum:g}"
    if maximum is not None:
        return f"{kind} ≤ {maximum:g}"
    return kind


# The JSON check for each annotation a dataclass field may carry (annotations are strings under
# `from __future__ import annotations`). A field of another type is handed to the dataclass unchecked, so a
# field added later never makes old files unreadable; the dataclass's own validation still applies.
_ANNOTATION_CHECKS = {
    "int": integer,
    "float": number,
    "str": text,
    "bool": boolean,
    "int | None": lambda value, path: optional(integer, value, path),
    "float | None": lambda value, path: optional(number, value, path),
    "str | None": lambda value, path: optional(text, value, path),
    "bool | None": lambda value, path: optional(boolean, value, path),
    "dict": obj,
    "list": array,
}


def checks(annotation: str) -> bool:
    """Whether `of_annotation` knows how to check a field annotated so."""
    return annotation in _ANNOTATION_CHECKS


def of_annotation(annotation: str, value: Any, path: str) -> Any:
    """`value` checked as a dataclass field annotated `annotation` ("int", "str | None", "dict", …) would be."""
    return _ANNOTATION_CHECKS[annotation](value, path)


def dataclass_values(cls, values: Any, where: str) -> dict:
    """Keyword arguments for dataclass `cls` from a JSON object, each checked against the field's annotation.

    A field with a default may be absent (files written before it existed); unknown keys are ignored (files
    written by a newer version that added a field).
    """
    values = obj(values, where)
    arguments = {}
    for field in dataclasses.fields(cls):
        if field.name not in values:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise FieldError(f"`{join(where, field.name)}` is missing")
            continue
        check = _ANNOTATION_CHECKS.get(field.type)
        value = values[field.name]
        arguments[field.name] = check(value, join(where, field.name)) if check else value
    return arguments
