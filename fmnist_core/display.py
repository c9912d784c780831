"""How figures read wherever they are shown (pages, CLI, report): durations and timestamps. A leaf module."""

from __future__ import annotations

import math


def format_duration(seconds: float | None) -> str:
    """'1 min 05 s' / '12.3 s' / '0.25 s'; '—' when unknown."""
    if seconds is None or math.isnan(seconds):
        return "—"
    if seconds >= 60:
        minutes, rest = divmod(int(round(seconds)), 60)
        return f"{minutes} min {rest:02d} s"
    return f"{seconds:.1f} s" if seconds >= 1 else f"{seconds:.2f} s"


def format_timestamp(created: str) -> str:
    """An ISO time to the minute, as people read it: '2026-11-25T19:40:12' → '2026-11-25 19:40'."""
    return created[:16].replace("T", " ")
