"""Training as a user would, through `python -m fmnist_core train … --json`, into a cache the benchmark owns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class CliTraining:
    command: list[str]
    output: dict  # What `train --json` printed: accuracy, images/s, wall time, the entry's id and path…
    seconds: float  # The whole command, start-up, data loading and saving included.
    peak_memory_gb: float  # The training process's peak resident memory.


def train_through_cli(
    arguments: list[str], cache_dir: Path, extra_variables: dict[str, str] | None = None
) -> CliTraining:
    """Run `python -m fmnist_core train ARGUMENTS --json` with `cache_dir` as its cache, no shipped models (the
    shipped full-preset entries would answer a preset's run without training it) and `extra_variables` set; a run
    that fails, or that reuses an entry instead of training, stops the benchmark with the command's own error."""
    command = [sys.executable, "-m", "fmnist_core", "train", *arguments, "--json"]
    no_shipped = cache_dir / "no-shipped-models"
    no_shipped.mkdir(parents=True, exist_ok=True)
    environment = {
        **os.environ,
        "FMNIST_CACHE_DIR": str(cache_dir),
        "FMNIST_SHIPPED_DIR": str(no_shipped),
        **(extra_variables or {}),
    }
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as output, tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=output, stderr=errors, text=True)
        _, status, usage = os.wait4(process.pid, 0)  # wait4: the child's resource use, peak memory included.
        seconds = time.perf_counter() - started
        output.seek(0)
        errors.seek(0)
        if (code := os.waitstatus_to_exitcode(status)) != 0:
            raise SystemExit(f"{' '.join(command)} failed ({code}):\n{errors.read()[-3000:]}")
        printed = json.loads(output.read())
    if printed.get("reused"):
        raise SystemExit(f"{' '.join(command)} reused cache entry {printed['entry_id']} instead of training it.")
    return CliTraining(command, printed, seconds, usage.ru_maxrss / 1024**2)  # ru_maxrss is in KiB on Linux.
