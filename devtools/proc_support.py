"""Reading Linux's /proc for tests and benchmarks: processes the code started (race lanes, the benchmark's browser),
and the CPU time processes use (the load benchmark)."""

from __future__ import annotations

import os
from pathlib import Path

# Indexes in `stat_fields`: stat(5)'s fields 4 (ppid), 14 and 15 (user and system CPU time, in clock ticks), 19 (nice).
PARENT, USER_TIME, SYSTEM_TIME, NICENESS = 1, 11, 12, 16
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) the process has used so far, all its threads together; None once it has ended."""
    fields = stat_fields(Path(f"/proc/{pid}/stat"))
    return None if fields is None else (int(fields[USER_TIME]) + int(fields[SYSTEM_TIME])) / CLOCK_TICKS


def command_name(pid: int) -> str:
    """The process's command name (/proc/PID/comm); "" once it has ended."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""  # It ended meanwhile.


def processes_named(prefix: str) -> list[int]:
    """The pids of the running processes whose command name starts with `prefix`."""
    pids = (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    return [pid for pid in pids if command_name(pid).startswith(prefix)]
