"""The benchmarks' results files: one JSON object a line, appended as each figure is measured."""

from __future__ import annotations

import json
from pathlib import Path

from fmnist_core import json_checks as check


def read_rows(path: Path) -> list[dict]:
    """Every row recorded in `path`, oldest first; none when the file does not exist yet. A damaged line raises
    json_checks.FieldError naming the file and the line."""
    if not path.is_file():
        return []
    lines = enumerate(path.read_bytes().splitlines(), start=1)
    return [
        check.obj(check.parse(line, f"{path}:{number}"), f"{path}:{number}") for number, line in lines if line.strip()
    ]


def append_row(path: Path, row: dict) -> None:
    """One result as a JSON line at the end of `path`, written as soon as it is measured (a stopped run keeps it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps(row) + "\n")
