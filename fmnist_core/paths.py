"""Where things live on disk: the project folder and the model cache. Imports only the error family and `files`."""

from __future__ import annotations

import os
from pathlib import Path

from fmnist_core.errors import CacheError
from fmnist_core.files import folder_problem

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RECORDED_RACES_DIR = PROJECT_ROOT / "recorded_races"  # Races recorded with the CLI, shipped with the app.


def cache_root() -> Path:
    """The cache folder: $FMNIST_CACHE_DIR, else `cached_models/` next to the package."""
    configured = os.environ.get("FMNIST_CACHE_DIR")
    root = Path(configured).expanduser() if configured else PROJECT_ROOT / "cached_models"
    if root.exists() and not root.is_dir():
        raise CacheError(
            f"The model cache path {root} is a file, not a folder. "
            "Point FMNIST_CACHE_DIR at a folder (it is created if missing)."
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
