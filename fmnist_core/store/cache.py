"""The model cache: one folder per trained model, written atomically, checked before every load.

Layout: `<root>/<model>-<key>/model.keras` + `meta.json` (a `ModelRecord`, fmnist_core.store.record). The key is a
digest of the model spec, the training config and the dataset, so asking for the same thing twice reuses the
entry.

Two roots (fmnist_core.paths): the models shipped with the app (the repository's `cached_models/`, read-only)
under the user's own cache (written). The user's folder is laid over the shipped one: an entry id names the
user's entry when they have one, else the shipped one. So a shipped model answers a request for its settings
(nothing to train), an explicit retrain writes the user's own entry, which then answers in its place, and
deleting that entry brings the shipped one back; nothing here ever writes or deletes a shipped entry.

An entry is written in a temporary folder inside the user's root and renamed into place under a file lock: a
killed process leaves at most a temporary folder (removed on the next start), never a half entry, and two
processes saving the same key leave exactly one. An entry whose meta.json does not check out, or whose
`model.keras` does not match the SHA-256 in it, is listed as damaged with the reason (a user's stays deletable) and is
never handed to Keras.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from fmnist_core import json_checks as check
from fmnist_core.config import RECIPE_VERSION, TrainConfig, for_this_machine
from fmnist_core.data.fashion_mnist import data_fingerprint
from fmnist_core.display import format_accuracy, format_size, format_timestamp
from fmnist_core.errors import CacheError, RecordError
from fmnist_core.machine import import_tensorflow, process_alive
from fmnist_core.models.registry import MODEL_NAMES, MODEL_SPECS, ModelSpec
from fmnist_core.paths import cache_root, shipped_models_root
from fmnist_core.store.record import ENTRY_ID_PATTERN, ModelRecord

# Part of every key: changing it (or anything else in the key's payload) orphans every cached model.
KEY_VERSION = 1
MODEL_FILE = "model.keras"
META_FILE = "meta.json"
MAX_META_BYTES = 8 * 2**20  # A record (curves, confusion matrix, per-class report) is tens of kB.
TEMPORARY_PREFIX = ".tmp-"
TRAINING_LOCK_POLL_SECONDS = 1.0  # How often a process waiting for another's training of the same run checks in.
ENTRY_PATTERN = re.compile(f"^{ENTRY_ID_PATTERN}$")
DELETE_DAMAGED_COMMAND = "python -m fmnist_core cache delete --damaged"  # The clean-up every damage message offers.
# What a damaged shipped entry needs instead: the app never writes the repository's copy.
RESTORE_SHIPPED = "restore it with `git checkout -- cached_models`, or train the shipped set again with `make models`"


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
        {"format": KEY_VERSION, "spec": spec.to_dict(), "config": config.to_dict(), "data": data_fingerprint()},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class CacheEntry:
    """One folder of the cache as found on disk: its record when usable, the reason when damaged."""

    entry_id: str  # Folder name, e.g. "model1-3f2a9c0b1d4e".
    path: Path
    record: ModelRecord | None  # The checked meta.json; None exactly when the entry is damaged.
    problem: str | None  # Why the entry is damaged; None when it is usable.
    shipped: bool = False  # Found among the models shipped with the app (read-only), not in the user's cache.

    def __post_init__(self) -> None:
        if (self.record is None) == (self.problem is None):
            raise ValueError("A cache entry has either a record (usable) or a problem (damaged).")

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def model_name(self) -> str:
        """The registry name ("model1"), from the record or, for a damaged entry, from the folder name."""
        return self.record.spec.name if self.record else self.entry_id.split("-")[0]

    @property
    def title(self) -> str:
        if self.record:
            return self.record.spec.title
        return MODEL_SPECS[self.model_name].title if self.model_name in MODEL_SPECS else self.model_name

    @property
    def owner(self) -> str | None:
        """The app visitor who trained it (in classroom mode only they may replace it); None: CLI, shipped, damaged."""
        return self.record.owner if self.record else None

    @property
    def label(self) -> str:
        """Short human label for pickers: 'Model 1 · 88.10% · 3 epochs × 18,000 images · 2026-11-25 19:40'."""
        if self.record is None:
            return f"{self.entry_id} (damaged)"
        record, config = self.record, self.record.config
        images = "all images" if config.train_limit is None else f"{config.train_limit:,} images"
        # Trained by an earlier recipe (its presets and defaults): still loadable, but say so.
        earlier = f" · recipe {record.recipe_version} (earlier)" if record.recipe_version < RECIPE_VERSION else ""
        return (
            f"{self.title} · {format_accuracy(record.test_accuracy)} · {config.epochs} epochs × {images} · "
            f"{format_timestamp(record.created)}{earlier}"
        )

    @property
    def repair(self) -> str:
        """What to do about this entry when it is damaged, as a sentence."""
        if self.shipped:
            return f"It ships with the app, which never changes it: {RESTORE_SHIPPED}."
        return f"Delete it ({DELETE_DAMAGED_COMMAND}) and train again."

    @property
    def provenance(self) -> str:
        """Where the model came from: 'shipped with the app (trained on <machine>, <date>)' or 'trained on this
        machine'."""
        if not self.shipped:
            return "trained on this machine"
        if self.record is None:
            return "shipped with the app"
        return f"shipped with the app (trained on {machine_summary(self.record)}, {self.record.created[:10]})"


def machine_summary(record: ModelRecord) -> str:
    """The machine that trained a model, in a few words: 'AMD EPYC 7B13, 2 cores' (plus the GPU it trained on)."""
    machine = record.machine
    cores = machine.get("cpu_cores")
    words = [str(machine.get("cpu_model") or "an unnamed CPU")]
    if isinstance(cores, int):
        words.append(f"{cores} core{'s' if cores != 1 else ''}")
    gpus = machine.get("gpus")
    if str(record.speed_settings.get("device", "")).startswith("GPU") and isinstance(gpus, list) and gpus:
        first = gpus[0]
        words.append(str(first.get("name", "a GPU") if isinstance(first, dict) else first))
    return ", ".join(words)


def entries_by_model(entries: Iterable[CacheEntry]) -> dict[str, list[CacheEntry]]:
    """Usable entries of each registry model, most accurate first, equal accuracy newest first ([] when none)."""
    grouped: dict[str, list[CacheEntry]] = {name: [] for name in MODEL_NAMES}
    for entry in entries:
        if entry.ok and entry.model_name in grouped:
            grouped[entry.model_name].append(entry)
    for candidates in grouped.values():
        candidates.sort(key=lambda entry: (entry.record.test_accuracy, entry.record.created), reverse=True)
    return grouped


def best_entries(entries: Iterable[CacheEntry]) -> dict[str, CacheEntry | None]:
    """For each registry model (in registry order), its most accurate usable entry, or None."""
    return {name: (candidates[0] if candidates else None) for name, candidates in entries_by_model(entries).items()}


class ModelCache:
    """List, save, load and delete trained models: the user's own folder, laid over the shipped models."""

    def __init__(self, root: Path | str | None = None, shipped_root: Path | str | None = None):
        """root: the user's cache (written); default fmnist_core.paths.cache_root().
        shipped_root: the models shipped with the app (only read); default fmnist_core.paths.shipped_models_root().
        """
        self.root = Path(root) if root is not None else cache_root()
        self.shipped_root = Path(shipped_root) if shipped_root is not None else shipped_models_root()
        if self.root.exists() and not self.root.is_dir():
            raise CacheError(f"The model cache path {self.root} is a file, not a folder.")

    # Paths and keys -------------------------------------------------------------------------------

    def entry_id(self, spec: ModelSpec, config: TrainConfig) -> str:
        return f"{spec.name}-{cache_key(spec, config)}"

    def _entry_path(self, entry_id: str) -> Path:
        """The entry's folder in the user's cache (which may not exist)."""
        # Entry ids come from folder names we create; anything else (e.g. "../x") is refused.
        if not ENTRY_PATTERN.match(entry_id):
            raise CacheError(f"{entry_id!r} is not a cache entry id (expected e.g. model1-0123456789ab).")
        return self.root / entry_id

    def _located(self, entry_id: str) -> tuple[Path, bool] | None:
        """(folder, shipped) of the entry this id names: the user's when there is one, else the shipped one."""
        own = self._entry_path(entry_id)
        if own.is_dir():
            return own, False
        shipped = self.shipped_root / entry_id
        return (shipped, True) if shipped.is_dir() else None

    def _locks_folder(self) -> Path:
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        return locks

    def _lock(self, entry_id: str) -> FileLock:
        return FileLock(str(self._locks_folder() / f"{entry_id}.lock"), timeout=600)

    @contextmanager
    def training_lock(self, spec: ModelSpec, config: TrainConfig, while_waiting: Callable[[], None]) -> Iterator[None]:
        """Held while a process trains (spec, config): another asking for the same run (two sweeps on one cache,
        `train` in two terminals) waits here, then finds the entry saved instead of training it a second time.

        while_waiting: called about once a second while another process holds the lock (it may raise to give up).
        The lock is the operating system's, so it goes with a process that dies: nobody waits for a dead one.
        """
        lock = FileLock(str(self._locks_folder() / f"{self.entry_id(spec, config)}.training.lock"))
        while True:
            try:
                lock.acquire(timeout=TRAINING_LOCK_POLL_SECONDS)
                break
            except Timeout:
                while_waiting()
        try:
            yield
        finally:
            lock.release()

    # Reading --------------------------------------------------------------------------------------

    def inspect(self, entry_id: str) -> CacheEntry:
        """Read one entry and check it: meta.json is a valid record of this folder, the model matches its checksum."""
        located = self._located(entry_id)
        if located is None:
            raise CacheError(f"No cached model {entry_id!r} in {self.root} (nor among the shipped models).")
        return self._inspect_folder(entry_id, *located)

    def _inspect_folder(self, entry_id: str, path: Path, shipped: bool) -> CacheEntry:
        def damaged(problem: str) -> CacheEntry:
            return CacheEntry(entry_id, path, None, problem, shipped)

        if not (path / META_FILE).exists():
            return damaged("meta.json is missing")
        try:
            values = check.read_file(path / META_FILE, max_bytes=MAX_META_BYTES)
        except check.FieldError as error:
            return damaged(str(error))
        try:
            record = ModelRecord.from_dict(values)
        except RecordError as error:
            return damaged(f"meta.json is not valid: {error}")
        if record.entry_id != entry_id:
            return damaged(f"meta.json belongs to another entry ({record.entry_id})")
        model_path = path / MODEL_FILE
        if not model_path.is_file():
            return damaged("model.keras is missing")
        if _sha256_file(model_path) != record.model_sha256:
            return damaged("model.keras does not match its checksum (damaged)")
        return CacheEntry(entry_id, path, record, None, shipped)

    def list(self) -> list[CacheEntry]:
        """All entries (the user's, and the shipped ones they have not retrained), newest first, then the damaged
        ones (with their problem)."""
        self.cleanup_temporary()
        entry_ids = {
            path.name
            for root in (self.root, self.shipped_root)
            if root.is_dir()
            for path in root.iterdir()
            if path.is_dir() and ENTRY_PATTERN.match(path.name)
        }
        entries = [self.inspect(entry_id) for entry_id in entry_ids]
        return sorted(
            entries,
            key=lambda entry: (entry.ok, entry.record.created if entry.ok else "", entry.entry_id),
            reverse=True,
        )

    def lookup(self, spec: ModelSpec, config: TrainConfig) -> CacheEntry | None:
        """The entry for (spec, config) as found on disk (the user's, else the shipped one), damaged or not; None
        when there is none."""
        entry_id = self.entry_id(spec, config)
        return self.inspect(entry_id) if self._located(entry_id) is not None else None

    def lookup_either_precision(self, spec: ModelSpec, config: TrainConfig) -> CacheEntry | None:
        """`lookup` for settings whose precision nobody chose (`train` without --precision): the entry for `config`
        as given, else the one for the precision this machine trains it in (`config.for_this_machine`)."""
        entry = self.lookup(spec, config)
        return entry if entry is not None else self.lookup(spec, for_this_machine(config))

    def find(self, spec: ModelSpec, config: TrainConfig) -> CacheEntry | None:
        """The usable entry for (spec, config), or None (a damaged one counts as absent)."""
        entry = self.lookup(spec, config)
        return entry if entry is not None and entry.ok else None

    def load_model(self, entry_id: str):
        """Load a verified entry's Keras model (safe mode on, checksum checked just before)."""
        import_tensorflow()
        import keras

        import fmnist_core.models.fused_norm  # noqa: F401  (registers the fused batch-norm layer the models use)
        import fmnist_core.models.mirror  # noqa: F401  (registers the mirror-averaging layers of saved models)
        import fmnist_core.models.recipe_objects  # noqa: F401  (registers the schedule and loss saved models carry)

        entry = self.inspect(entry_id)
        if not entry.ok:
            raise CacheError(f"Cached model {entry_id} is damaged: {entry.problem}. {entry.repair}")
        try:
            return keras.saving.load_model(entry.path / MODEL_FILE, compile=False, safe_mode=True)
        except Exception as error:  # Keras raises many types for a bad archive; all mean "damaged".
            raise CacheError(f"Cached model {entry_id} could not be loaded ({error}). {entry.repair}") from error

    # Writing --------------------------------------------------------------------------------------

    def save(self, model, record: ModelRecord, replace: bool = False) -> CacheEntry:
        """Write the model and its record atomically; the record gets its entry id and the model's checksum.

        If a valid entry for this key appears meanwhile (another process trained the same request), keep that
        one, unless `replace` (an explicit retrain): then the new model takes its place. Always written to the
        user's cache: a shipped entry of the same key stays as it is, and the new one answers in its place.
        """
        entry_id = self.entry_id(record.spec, record.config)
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock(entry_id):
            final = self.root / entry_id
            if final.is_dir():
                existing = self._inspect_folder(entry_id, final, shipped=False)
                if existing.ok and not replace:
                    return existing
            temporary = Path(tempfile.mkdtemp(prefix=f"{TEMPORARY_PREFIX}{entry_id}-{os.getpid()}-", dir=self.root))
            try:
                model.save(temporary / MODEL_FILE)
                stamped = dataclasses.replace(
                    record, entry_id=entry_id, model_sha256=_sha256_file(temporary / MODEL_FILE)
                ).to_dict()
                # Checked as every reader will check it: a record that would read back as damaged is not saved.
                ModelRecord.from_dict(stamped)
                _write_durably(temporary / META_FILE, json.dumps(stamped, indent=1).encode())
                # The entry it replaces goes only now, once the new one is complete: a save that fails (disk full,
                # a bad record) leaves the old entry as it was, and the gap between two renames is all that shows.
                if final.is_dir():
                    self._remove(final)
                os.replace(temporary, final)
            except BaseException as error:
                shutil.rmtree(temporary, ignore_errors=True)
                if isinstance(error, OSError):
                    raise CacheError(_save_failure(error, self.root, model)) from error
                raise
        return self.inspect(entry_id)

    def delete(self, entry_id: str) -> None:
        """Remove one of the user's entries (damaged or not); shipped entries are never deleted."""
        path = self._entry_path(entry_id)
        if not path.exists():
            if (self.shipped_root / entry_id).is_dir():
                raise CacheError(
                    f"{entry_id} ships with the app ({self.shipped_root}) and is read-only: the app never deletes "
                    f"it. If it is damaged, {RESTORE_SHIPPED}."
                )
            raise CacheError(f"No cached model {entry_id!r} to delete.")
        with self._lock(entry_id):
            self._remove(path)

    def _remove(self, path: Path) -> None:
        # Rename first so a crash mid-delete leaves a temporary folder, not a half entry.
        doomed = self.root / f"{TEMPORARY_PREFIX}deleted-{path.name}-{os.getpid()}-{time.time_ns()}"
        os.replace(path, doomed)
        _discard(doomed)

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
            _discard(path)
            removed.append(path.name)
        return removed


def _discard(path: Path) -> None:
    """Remove a temporary folder, file or link of the cache. A link (an entry the user linked in from elsewhere) goes
    alone: what it points at is not the cache's to delete, and rmtree refuses links, which left them behind."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _owner_pid(name: str) -> int | None:
    match = re.search(r"-(\d+)-[^-]*$", name)
    return int(match.group(1)) if match else None


def _save_failure(error: OSError, root: Path, model) -> str:
    """What a user reads when the cache could not take a trained model: why, and what to free or change."""
    lost = "The model just trained was not saved (nothing half-written was kept)"
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"{lost}: the disk holding the model cache {root} is full. The model takes about "
            f"{format_size(_saved_size_estimate(model))}: free at least that much there (`python -m fmnist_core cache "
            "list`, then `cache delete ENTRY_ID` for models you no longer need) or set FMNIST_CACHE_DIR to a folder "
            "on a roomier disk, then train again."
        )
    return (
        f"{lost}: cannot write in the model cache {root} ({error.strerror or error}). Make it writable or set "
        "FMNIST_CACHE_DIR to a folder you can write, then train again."
    )


def _saved_size_estimate(model) -> int:
    """Bytes of the model's and its optimizer's variables: what model.keras holds, less a few kB of config."""
    optimizer = getattr(model, "optimizer", None)
    variables = list(model.variables) + (list(optimizer.variables) if optimizer is not None else [])
    return sum(int(variable.numpy().nbytes) for variable in variables)


def _write_durably(path: Path, payload: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
