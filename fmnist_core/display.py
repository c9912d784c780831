"""How figures read wherever they are shown (pages, CLI, report): durations, sizes, times, learning rates. A leaf."""

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


def format_size(size: int) -> str:
    """'22 bytes' / '12 KB' / '3.4 MB' (units of 1024, as Streamlit's upload limit counts them)."""
    if size < 1024:
        return f"{size} byte{'s' if size != 1 else ''}"
    if size < 1024**2:
        return f"{size / 1024:.0f} KB"
    return f"{size / 1024**2:.1f} MB"


def format_timestamp(created: str) -> str:
    """An ISO time to the minute, as people read it: '2026-11-25T19:40:12' → '2026-11-25 19:40'."""
    return created[:16].replace("T", " ")


# printf style, the one format Streamlit's number input takes, so the Train page's field reads a rate as the text does.
LEARNING_RATE_FORMAT = "%g"


def format_learning_rate(rate: float) -> str:
    """'0.002', '1e-05': every rate as set, never rounded away to '0.0000'."""
    return LEARNING_RATE_FORMAT % rate


def format_accuracy(share: float | None) -> str:
    """'93.81%': an accuracy (a share from 0 to 1) as every view shows it, to a hundredth of a point (one test
    image in 10,000), so that no view rounds a model to '94%' beside another's '93.81%'; '—' when unknown."""
    if share is None or math.isnan(share):
        return "—"
    return f"{share:.2%}"


def styled_accuracies(table, columns: tuple[str, ...]):
    """`table` (a pandas DataFrame) as a Styler whose `columns` read as `format_accuracy` writes them; the values
    stay numbers, so a page's table still sorts by them."""
    present = [column for column in columns if column in table.columns]
    return table.style.format(format_accuracy, subset=present)
