"""`make models`: train the models that ship with the app through the CLI, then install them in cached_models/.

    .venv/bin/python scripts/ship_models.py                  # train Model 1, 2, 3 (full preset), install them
    .venv/bin/python scripts/ship_models.py --from CACHE_DIR # install the ones already trained in CACHE_DIR
    .venv/bin/python scripts/ship_models.py --work-dir DIR   # train into DIR and keep it (run again to resume)

Each model is trained by `python -m fmnist_core train --model M --preset full` (the default seed) in its own
process, with a new temporary folder as its cache and nothing shipped in sight, so every model is really trained
on this machine and records its command, machine, versions and figures in meta.json. Then
fmnist_core.store.shipping.install_shipped checks the three entries and installs them (one per model; older shipped
entries of the same models are removed). On the 2-core development machine the full preset takes minutes to
an hour for the three; the CLI shows each run's progress. If a run fails, the models trained so far stay in the
work folder: run again with `--work-dir` to go on from there (the CLI reuses what is already trained).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from fmnist_core.config import get_preset
from fmnist_core.errors import FmnistError
from fmnist_core.paths import SHIPPED_MODELS_FOLDER
from fmnist_core.store.shipping import SHIPPED_MODELS, SHIPPED_PRESET, install_shipped, train_command

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def train_through_cli(model_names: tuple[str, ...], preset: str, cache_dir: Path) -> None:
    """Train each model with the CLI into `cache_dir`, one process after another; stops at the first failure."""
    nothing_shipped = cache_dir / "nothing-shipped"  # So the CLI trains instead of reusing a shipped entry.
    nothing_shipped.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "FMNIST_CACHE_DIR": str(cache_dir), "FMNIST_SHIPPED_DIR": str(nothing_shipped)}
    for name in model_names:
        command = train_command(name, preset)
        print(f"$ {command}", flush=True)
        argv = [sys.executable, *shlex.split(command)[1:]]  # The same command with this interpreter.
        finished = subprocess.run(argv, cwd=PROJECT_ROOT, env=environment, check=False)
        if finished.returncode != 0:
            raise SystemExit(
                f"`{command}` failed (exit {finished.returncode}); nothing was installed. The models trained so far "
                f"are kept in {cache_dir}: run this script again with --work-dir {cache_dir} to go on."
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, help="install models already trained in this cache folder")
    parser.add_argument(
        "--to", dest="destination", type=Path, default=PROJECT_ROOT / SHIPPED_MODELS_FOLDER, help="shipped folder"
    )
    parser.add_argument("--work-dir", type=Path, help="train into this cache folder and keep it (default: a new one)")
    parser.add_argument("--models", default=",".join(SHIPPED_MODELS), help="comma-separated (default: all three)")
    parser.add_argument("--preset", default=SHIPPED_PRESET)
    arguments = parser.parse_args(argv)
    model_names = tuple(name.strip() for name in arguments.models.split(",") if name.strip())
    try:
        config = get_preset(arguments.preset)
        if arguments.source is not None:
            installed = install_shipped(arguments.source, arguments.destination, config, arguments.preset, model_names)
        else:
            work = arguments.work_dir or Path(tempfile.mkdtemp(prefix="fmnist-ship-"))
            train_through_cli(model_names, arguments.preset, work)
            installed = install_shipped(work, arguments.destination, config, arguments.preset, model_names)
            if arguments.work_dir is None:
                shutil.rmtree(work)
    except FmnistError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    for entry in installed:
        size = (entry.path / "model.keras").stat().st_size
        print(f"installed {entry.path}: {entry.label}, {size / 1e6:.2f} MB, {entry.provenance}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
