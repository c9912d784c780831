"""Terminal output shared by the commands: JSON printing and a Keras-style progress bar."""

from __future__ import annotations

import json
import sys
import time


def print_json(payload) -> None:
    json.dump(payload, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


class ProgressBar:
    """Keras-like `12/71 [====>.....] - 5s - loss: 0.51 - accuracy: 0.82` lines on stderr.

    Redraws at most 10 times a second in a terminal; when stderr is not a terminal (CI logs, pipes) it
    prints one line per epoch only, so logs stay readable.
    """

    def __init__(self, stream=None, width: int = 30):
        self.stream = stream or sys.stderr
        self.width = width
        self.interactive = self.stream.isatty()
        self._last_draw = 0.0

    def line(self, done: int, total: int, elapsed: float, values: dict[str, float], suffix: str = "") -> str:
        filled = int(self.width * done / total) if total else self.width
        arrow = ">" if filled < self.width else ""
        bar = "=" * filled + arrow + "." * (self.width - filled - len(arrow))
        metrics = " - ".join(f"{key}: {value:.4f}" for key, value in values.items())
        digits = len(str(total))
        text = f"{done:>{digits}}/{total} [{bar}] - {elapsed:.0f}s"
        return " - ".join(part for part in (text, metrics, suffix) if part)

    def update(self, done: int, total: int, elapsed: float, values: dict[str, float], suffix: str = "") -> None:
        now = time.monotonic()
        if not self.interactive or (now - self._last_draw < 0.1 and done < total):
            return
        self._last_draw = now
        self.stream.write("\r" + self.line(done, total, elapsed, values, suffix) + "\x1b[K")
        self.stream.flush()

    def finish(self, done: int, total: int, elapsed: float, values: dict[str, float], suffix: str = "") -> None:
        text = self.line(done, total, elapsed, values, suffix)
        self.stream.write(("\r" + text + "\x1b[K" if self.interactive else text) + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
