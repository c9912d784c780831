"""Where things live on disk. A leaf module: it imports nothing of ours but the error family and `files`.

Two roots, one rule each:
- **What ships with the app** is read from the repository (`cached_models/`: trained models, `recorded_races/`:
  races recorded with the CLI, `recorded_sweeps/`: sweeps of the shipped models' preset,
  `recorded_robustness/`: the shipped models' accuracy under attack), and never written by the
  app or the CLI. `$FMNIST_SHIPPED_DIR` stands in for the repository folder; the tests point it at an empty folder,
  so no test sees a shipped model unless it asks.
- **The user's own cache** (their trainings, the parsed dataset arrays, races, sweeps, job markers) is
  `$FMNIST_CACHE_DIR`, else `$XDG_CACHE_HOME/fmnist-explorer`, else `~/.cache/fmnist-explorer`: per user and outside
  the repository, so the app works from a read-only or shared checkout (a classroom server).
"""

from __future__ import annotations

import os
from pathlib import Path

from fmnist_core.errors import CacheError
from fmnist_core.files import folder_problem

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_MODELS_FOLDER = "cached_models"
RECORDED_RACES_FOLDER = "recorded_races"
RECORDED_SWEEPS_FOLDER = "recorded_sweeps"
RECORDED_ROBUSTNESS_FOLDER = "recorded_robustness"
USER_CACHE_FOLDER = "fmnist-explorer"  # Under $XDG_CACHE_HOME or ~/.cache.


def shipped_dir() -> Path:
    """The folder holding what ships with the app: the repository, or $FMNIST_SHIPPED_DIR."""
    configured = os.environ.get("FMNIST_SHIPPED_DIR")
    return Path(configured).expanduser() if configured else PROJECT_ROOT


def shipped_models_root() -> Path:
    """The models shipped with the app (read-only to the app and the CLI; `make models` installs them)."""
    return shipped_dir() / SHIPPED_MODELS_FOLDER


def recorded_races_dir() -> Path:
    """Races recorded with the CLI and shipped with the app."""
    return shipped_dir() / RECORDED_RACES_FOLDER


def recorded_sweeps_dir() -> Path:
    """Sweeps recorded with the CLI and shipped with the app (the Compare page's error bars on a fresh clone)."""
    return shipped_dir() / RECORDED_SWEEPS_FOLDER


def recorded_robustness_dir() -> Path:
    """The shipped models' accuracy under attack (scripts/record_robustness.py): the Fool page's curves."""
    return shipped_dir() / RECORDED_ROBUSTNESS_FOLDER


def default_cache_root() -> Path:
    """The per-user cache folder when FMNIST_CACHE_DIR is not set (XDG base directory rules)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG rules ignore a relative path; Path.home() fails only without HOME and without a passwd entry.
    if not os.path.isabs(base):
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:
            raise CacheError(
                "Cannot tell where your model cache should go: this account has no home folder. "
                "Set FMNIST_CACHE_DIR to a folder you can write to."
            ) from None
    return Path(base) / USER_CACHE_FOLDER


def cache_root() -> Path:
    """The user's own cache folder: $FMNIST_CACHE_DIR, else the per-user default (created when first written)."""
    configured = os.environ.get("FMNIST_CACHE_DIR")
    root = Path(configured).expanduser() if configured else default_cache_root()
    if root.exists() and not root.is_dir():
        raise CacheError(
            f"The model cache path {root} is a file, not a folder. "
            "Point FMNIST_CACHE_DIR at a folder (it is created if missing)."
        )
    if root.resolve() == shipped_models_root().resolve():
        raise CacheError(
            f"FMNIST_CACHE_DIR points at {root}, the folder of the models shipped with the app, which the app "
            "never writes. Point it at a folder of your own (or unset it to use the default, "
            f"{default_cache_root()})."
        )
    return root


def writable_cache_folder(*parts: str, root: Path | None = None) -> Path:
    """The cache root (or the folder `parts` inside it) once checked that it can be created and written.

    Every command that writes into the cache calls this before its work, so a FMNIST_CACHE_DIR under a file or
    on a read-only place costs a one-line CacheError (exit 4), not a finished training that cannot be saved.
    root: a cache root other than $FMNIST_CACHE_DIR's (a ModelCache's own).
    """
    folder = (root if root is not None else cache_root()).joinpath(*parts)
    problem = folder_problem(folder)
    if problem:
        raise CacheError(
            f"The cache folder {folder} cannot be used ({problem}). "
            "Point FMNIST_CACHE_DIR at a folder you can write to (it is created if missing)."
        )
    return folder
