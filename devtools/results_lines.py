"""The benchmarks' results files: one JSON object a line, appended as each figure is measured."""

from __future__ import annotations

import json
from pathlib import Path


def read_rows(path: Path) -> list[dict]:
    """Every row recorded in `path`, oldest first; none when the file does not exist yet."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def append_row(path: Path, row: dict) -> None:
    """One result as a JSON line at the end of `path`, written as soon as it is measured (a stopped run keeps it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps(row) + "\n")
