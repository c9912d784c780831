"""Reading Linux's /proc for tests that check processes the code started (race lanes, the benchmark's browser)."""

from __future__ import annotations

from pathlib import Path

PARENT, NICENESS = 1, 16  # Indexes in `stat_fields`: stat(5)'s fields 4 (ppid) and 19 (nice).


def stat_fields(stat: Path) -> list[str] | None:
    """The fields after the command name of a process's or thread's stat file; None once it has ended."""
    try:
        return stat.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def parents() -> dict[int, int]:
    """pid → parent pid for every process now running."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := stat_fields(entry / "stat")) is not None:
            found[int(entry.name)] = int(fields[PARENT])
    return found
