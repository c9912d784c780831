"""The model cache: one folder per trained model, written atomically, checked before every load.

Layout: `<root>/<model>-<key>/model.keras` + `meta.json`. The key is a digest of the model spec, the
training config and the dataset, so asking for the same thing twice reuses the entry. An entry is
written in a temporary folder inside the root and renamed into place under a file lock: a killed
process leaves at most a temporary folder (removed on the next start), never a half entry, and two
processes saving the same key leave exactly one. `meta.json` carries the SHA-256 of `model.keras`;
a mismatch marks the entry damaged, and a damaged entry is never handed to Keras.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from fmnist_core.config import TrainConfig
from fmnist_core.errors import CacheError
from fmnist_core.fashion_mnist import data_fingerprint
from fmnist_core.machine import import_tensorflow, process_alive
from fmnist_core.models import ModelSpec
from fmnist_core.paths import cache_root

CACHE_FORMAT = 1  # Bump when meta.json changes incompatibly.
MODEL_FILE = "model.keras"
META_FILE = "meta.json"
TEMPORARY_PREFIX = ".tmp-"
ENTRY_PATTERN = re.compile(r"^[a-z0-9]+-[0-9a-f]{12}$")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_key(spec: ModelSpec, config: TrainConfig) -> str:
    """12 hex digits identifying (spec, config, data); the same request always gives the same key."""

    # Every config field is in the key: even precision and XLA change the numbers a model learns.
    payload = json.dumps(
        {"format": CACHE_FORMAT, "spec": spec.to_dict(), "config": config.to_dict(), "data": data_fingerprint()},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class CacheEntry:
    """One folder of the cache as found on disk."""

    entry_id: str  # Folder name, e.g. "model1-3f2a9c0b1d4e".
    path: Path
    meta: dict | None  # Parsed meta.json (None when unreadable).
    problem: str | None  # Why the entry is damaged; None when it is usable.

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def model_name(self) -> str:
        return (self.meta or {}).get("spec", {}).get("name") or self.entry_id.split("-")[0]

    @property
    def title(self) -> str:
        return (self.meta or {}).get("spec", {}).get("title", self.model_name)

    @property
    def test_accuracy(self) -> float | None:
        return (self.meta or {}).get("evaluation", {}).get("test_accuracy")

    @property
    def single_view_accuracy(self) -> float | None:
        """Test accuracy from the picture alone, for a model saved mirror-averaged (fmnist_core.mirror); else None."""
        return (self.meta or {}).get("single_view_accuracy")

    @property
    def config(self) -> TrainConfig | None:
        values = (self.meta or {}).get("config")
        return TrainConfig.from_dict(values) if values else None

    @property
    def owner(self) -> str | None:
        """The app visitor who trained it (in classroom mode only they may replace it); None: CLI or shipped."""
        owner = (self.meta or {}).get("owner")
        return owner if isinstance(owner, str) else None

    @property
    def created(self) -> str:
        return (self.meta or {}).get("created", "")

    @property
    def label(self) -> str:
        """Short human label for pickers: 'Model 1 · 88.1% · 3 epochs × 18,000 images · 2026-11-25 19:40'."""
        if not self.ok or self.config is None:
            return f"{self.entry_id} (damaged)"
        config = self.config
        images = "all images" if config.train_limit is None else f"{config.train_limit:,} images"
        accuracy = f"{self.test_accuracy:.1%}" if self.test_accuracy is not None else "no accuracy"
        when = self.created[:16].replace("T", " ")
        return f"{self.title} · {accuracy} · {config.epochs} epochs × {images} · {when}"


class ModelCache:
    """List, save, load and delete trained models under one root folder."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else cache_root()
        if self.root.exists() and not self.root.is_dir():
            raise CacheError(f"The model cache path {self.root} is a file, not a folder.")

    # Paths and keys -------------------------------------------------------------------------------

    def entry_id(self, spec: ModelSpec, config: TrainConfig) -> str:
        return f"{spec.name}-{cache_key(spec, config)}"

    def _entry_path(self, entry_id: str) -> Path:
        # Entry ids come from folder names we create; anything else (e.g. "../x") is refused.
        if not ENTRY_PATTERN.match(entry_id):
            raise CacheError(f"{entry_id!r} is not a cache entry id (expected e.g. model1-0123456789ab).")
        return self.root / entry_id

    def _lock(self, entry_id: str) -> FileLock:
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        return FileLock(str(locks / f"{entry_id}.lock"), timeout=600)

    # Reading --------------------------------------------------------------------------------------

    def inspect(self, entry_id: str) -> CacheEntry:
        """Read one entry and check it: meta.json parses, matches its folder, model checksum matches."""
        path = self._entry_path(entry_id)
        meta_path, model_path = path / META_FILE, path / MODEL_FILE
        if not path.is_dir():
            raise CacheError(f"No cached model {entry_id!r} in {self.root}.")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if not isinstance(meta, dict):
                raise ValueError("not a JSON object")
        except FileNotFoundError:
            return CacheEntry(entry_id, path, None, "meta.json is missing")
        except (OSError, ValueError) as error:
            return CacheEntry(entry_id, path, None, f"meta.json is unreadable ({error})")
        if meta.get("format") != CACHE_FORMAT or meta.get("entry_id") != entry_id:
            return CacheEntry(entry_id, path, meta, "meta.json was not written by this cache version")
        if not model_path.is_file():
            return CacheEntry(entry_id, path, meta, "model.keras is missing")
        if _sha256_file(model_path) != meta.get("model_sha256"):
            return CacheEntry(entry_id, path, meta, "model.keras does not match its checksum (damaged)")
        return CacheEntry(entry_id, path, meta, None)

    def list(self) -> list[CacheEntry]:
        """All entries, newest first; damaged ones included with their problem."""
        if not self.root.is_dir():
            return []
        self.cleanup_temporary()
        entries = [self.inspect(p.name) for p in self.root.iterdir() if p.is_dir() and ENTRY_PATTERN.match(p.name)]
        return sorted(entries, key=lambda entry: entry.created, reverse=True)

    def find(self, spec: ModelSpec, config: TrainConfig) -> CacheEntry | None:
        """The valid entry for (spec, config), or None (a damaged one counts as absent)."""
        entry_id = self.entry_id(spec, config)
        if not (self.root / entry_id).is_dir():
            return None
        entry = self.inspect(entry_id)
        return entry if entry.ok else None

    def load_model(self, entry_id: str):
        """Load a verified entry's Keras model (safe mode on, checksum checked just before)."""
        import_tensorflow()
        import keras

        import fmnist_core.fused_norm  # noqa: F401  (registers the fused batch-norm layer the models use)
        import fmnist_core.mirror  # noqa: F401  (registers the mirror-averaging layers of saved models)

        entry = self.inspect(entry_id)
        if not entry.ok:
            raise CacheError(f"Cached model {entry_id} is damaged: {entry.problem}. Delete it and train again.")
        try:
            return keras.saving.load_model(entry.path / MODEL_FILE, compile=False, safe_mode=True)
        except Exception as error:  # Keras raises many types for a bad archive; all mean "damaged".
            raise CacheError(f"Cached model {entry_id} could not be loaded ({error}). Delete it.") from error

    # Writing --------------------------------------------------------------------------------------

    def save(self, model, meta: dict, spec: ModelSpec, config: TrainConfig, replace: bool = False) -> CacheEntry:
        """Write model + meta atomically.

        If a valid entry for this key appears meanwhile (another process trained the same request), keep that
        one, unless `replace` (an explicit retrain): then the new model takes its place.
        """
        entry_id = self.entry_id(spec, config)
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock(entry_id):
            final = self.root / entry_id
            if final.is_dir():
                existing = self.inspect(entry_id)
                if existing.ok and not replace:
                    return existing
                self._remove(final)
            temporary = Path(tempfile.mkdtemp(prefix=f"{TEMPORARY_PREFIX}{entry_id}-{os.getpid()}-", dir=self.root))
            try:
                model.save(temporary / MODEL_FILE)
                record = dict(
                    meta,
                    format=CACHE_FORMAT,
                    entry_id=entry_id,
                    spec=spec.to_dict(),
                    config=config.to_dict(),
                    model_sha256=_sha256_file(temporary / MODEL_FILE),
                    created=meta.get("created") or time.strftime("%Y-%m-%dT%H:%M:%S"),
                )
                _write_durably(temporary / META_FILE, json.dumps(record, indent=1).encode())
                os.replace(temporary, final)
            except BaseException:
                shutil.rmtree(temporary, ignore_errors=True)
                raise
        return self.inspect(entry_id)

    def delete(self, entry_id: str) -> None:
        """Remove an entry (damaged or not)."""
        path = self._entry_path(entry_id)
        if not path.exists():
            raise CacheError(f"No cached model {entry_id!r} to delete.")
        with self._lock(entry_id):
            self._remove(path)

    def _remove(self, path: Path) -> None:
        # Rename first so a crash mid-delete leaves a temporary folder, not a half entry.
        doomed = self.root / f"{TEMPORARY_PREFIX}deleted-{path.name}-{os.getpid()}-{time.time_ns()}"
        os.replace(path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)

    def cleanup_temporary(self) -> list[str]:
        """Remove temporary folders left by processes that are no longer running."""
        removed = []
        if not self.root.is_dir():
            return removed
        for path in self.root.glob(f"{TEMPORARY_PREFIX}*"):
            owner = _owner_pid(path.name)
            # Our own pid counts as alive: another thread of this process may be saving right now.
            if owner is not None and process_alive(owner):
                continue
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            removed.append(path.name)
        return removed


def _owner_pid(name: str) -> int | None:
    match = re.search(r"-(\d+)-[^-]*$", name)
    return int(match.group(1)) if match else None


def _write_durably(path: Path, payload: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
