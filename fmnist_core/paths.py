"""Where things live on disk: the project folder and the model cache. A leaf module: it imports nothing of ours."""

from __future__ import annotations

import os
from pathlib import Path

from fmnist_core.errors import CacheError

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
