"""Fashion-MNIST: find the four official files, verify them, parse IDX, cache the arrays.

Offline first: the files are looked for in a fixed list of folders and downloaded only when none has them.
The `.gz` bytes differ between mirrors (Debian recompresses them), so the SHA-256 is checked on the
*decompressed* IDX bytes, which are identical everywhere.

No TensorFlow here: the dataset browser and the CLI's `data` command must stay light.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import time
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmnist_core.data.fashion_mnist import FILES, IMAGE_SIZE, IdxFile
from fmnist_core.errors import DataError
from fmnist_core.files import atomic_file
from fmnist_core.paths import cache_root

# The official Keras mirror; the real download path, used only when no local copy exists.
DOWNLOAD_BASE_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
DEBIAN_PACKAGE = "dataset-fashion-mnist"


Arrays = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def search_dirs() -> list[Path]:
    """Folders searched for the four `.gz` files, in order."""
    dirs = []
    if os.environ.get("FMNIST_DATA_DIR"):
        dirs.append(Path(os.environ["FMNIST_DATA_DIR"]).expanduser())
    dirs += [
        Path("data/fashion-mnist"),
        Path("~/.keras/datasets/fashion-mnist").expanduser(),
        Path("/usr/share/datasets/fashion-mnist"),
    ]
    return dirs


def keras_cache_dir() -> Path:
    """Where a download goes: the same folder `keras.datasets.fashion_mnist` uses."""
    return Path("~/.keras/datasets/fashion-mnist").expanduser()


def _help_text(searched: list[Path]) -> str:
    places = "\n".join(f"  - {path}" for path in searched)
    return (
        f"Searched:\n{places}\n"
        "Fix it one of these ways:\n"
        f"  1. Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y {DEBIAN_PACKAGE}\n"
        "  2. Put the four official .gz files in a folder and set FMNIST_DATA_DIR=/that/folder\n"
        "  3. Go online and run `python -m fmnist_core data --download` (fetches from the Keras mirror)"
    )


def _damaged_help_text(folder: Path) -> str:
    return (
        f"Replace the files in {folder} with official copies:\n"
        f"  1. Debian/Ubuntu: sudo apt-get install --reinstall -y {DEBIAN_PACKAGE}\n"
        "  2. Put fresh copies of the four official .gz files in a folder and set FMNIST_DATA_DIR=/that/folder"
    )


def _check_configured_dir() -> None:
    """A FMNIST_DATA_DIR that is set but unusable is an error, not something to silently look past."""
    configured = os.environ.get("FMNIST_DATA_DIR")
    if not configured:
        return
    folder = Path(configured).expanduser()
    if not folder.is_dir():
        raise DataError(
            f"FMNIST_DATA_DIR={configured} is not a folder. Point it at the folder holding the four "
            "Fashion-MNIST .gz files, or unset it to use the default places."
        )
    missing = [spec.filename for spec in FILES.values() if not (folder / spec.filename).is_file()]
    if missing:
        raise DataError(
            f"FMNIST_DATA_DIR={configured} lacks {', '.join(missing)}. Put all four official files "
            "there, or unset it to use the default places."
        )


def find_data_dir(dirs: list[Path] | None = None) -> Path | None:
    """The first folder holding all four files, or None."""
    for folder in dirs if dirs is not None else search_dirs():
        if all((folder / spec.filename).is_file() for spec in FILES.values()):
            return folder
    return None


def parse_idx(raw: bytes, spec: IdxFile, name: str) -> np.ndarray:
    """Parse decompressed IDX bytes after checking the header against what the file must hold."""
    if len(raw) < 8:
        raise DataError(f"{name} is truncated: {len(raw)} bytes, not even an IDX header.")
    magic, count = struct.unpack(">II", raw[:8])
    if magic != spec.magic:
        raise DataError(f"{name} has IDX magic number {magic}, expected {spec.magic}: not the right file.")
    if count != spec.count:
        raise DataError(f"{name} holds {count} items, expected {spec.count}.")
    if spec.magic == 2051:
        if len(raw) < 16:
            raise DataError(f"{name} is truncated inside its IDX header.")
        rows, cols = struct.unpack(">II", raw[8:16])
        if (rows, cols) != (IMAGE_SIZE, IMAGE_SIZE):
            raise DataError(f"{name} has {rows}x{cols} images, expected 28x28.")
        offset, shape = 16, (count, rows, cols)
    else:
        offset, shape = 8, (count,)
    expected = offset + int(np.prod(shape))
    if len(raw) != expected:
        raise DataError(f"{name} is {len(raw)} bytes decompressed, expected {expected}: truncated or padded.")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(shape).copy()


def read_verified(path: Path, spec: IdxFile, verify: bool = True) -> np.ndarray:
    """Decompress one file, check its hash and header, and return its array."""
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path} is not a readable gzip file ({error}); it is truncated or damaged.") from error
    # The header is checked first: "truncated" or "wrong magic" tells a user more than a hash mismatch.
    array = parse_idx(raw, spec, str(path))
    if verify:
        digest = hashlib.sha256(raw).hexdigest()
        if digest != spec.sha256:
            raise DataError(
                f"{path} does not match the official Fashion-MNIST content "
                f"(SHA-256 {digest[:16]}…, expected {spec.sha256[:16]}…). Delete it and get a fresh copy."
            )
    if spec.magic == 2049 and array.max(initial=0) >= 10:
        raise DataError(f"{path} has label {array.max()}, but Fashion-MNIST labels are 0-9.")
    return array


def download(target: Path | None = None, base_url: str = DOWNLOAD_BASE_URL) -> Path:
    """Fetch the four files from the Keras mirror into `target` (default: the Keras cache)."""
    target = target or keras_cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    for spec in FILES.values():
        destination = target / spec.filename
        if destination.is_file():
            continue
        try:
            with urllib.request.urlopen(base_url + spec.filename, timeout=60) as response:
                payload = response.read()
        except OSError as error:
            raise DataError(
                f"Could not download {spec.filename} from {base_url} ({error}).\n" + _help_text(search_dirs())
            ) from error
        # Write then rename, so an interrupted download never leaves a file that looks complete.
        partial = destination.with_suffix(".part")
        partial.write_bytes(payload)
        os.replace(partial, destination)
    return target


def arrays_cache_path() -> Path:
    """Where parsed arrays are kept so the second load skips gzip and hashing."""
    return cache_root() / "fashion-mnist.npz"


@dataclass(frozen=True)
class LoadReport:
    """Where the data came from and how long it took."""

    source: str  # The folder the .gz files were read from, or the .npz cache.
    seconds: float  # Wall time of the load.
    from_cache: bool  # True when the parsed-array cache answered.
    note: str | None = None  # What went wrong with the array cache, when it was damaged or could not be written.


_last_report: LoadReport | None = None


def last_load_report() -> LoadReport | None:
    """How the most recent `load_fashion_mnist` call got its data (for the CLI and the UI)."""
    return _last_report


class _DamagedArrayCache(Exception):
    """The `.npz` cannot be used; the message says why. Never leaves this module: the cache is rebuilt instead."""


def _array_shape(spec: IdxFile) -> tuple[int, ...]:
    return (spec.count, IMAGE_SIZE, IMAGE_SIZE) if spec.magic == 2051 else (spec.count,)


def _read_array_cache(path: Path) -> Arrays:
    """The arrays in the `.npz`, checked as strictly as the `.gz` files they stand for, short of re-hashing them."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in FILES}
            stored_hashes = str(archive["source_sha256"])
    # It is a derived file: whatever NumPy or zipfile raise for it (BadZipFile, a CRC mismatch, a bad header,
    # "no context manager" for a lone .npy, an impossible shape) means the same thing, rebuild it.
    except Exception as error:
        raise _DamagedArrayCache(f"{type(error).__name__}: {str(error)[:120]}") from None
    # The cache is trusted only if it was made from files with the official hashes.
    if stored_hashes != ",".join(spec.sha256 for spec in FILES.values()):
        raise _DamagedArrayCache("it was made from other files than the official ones")
    for name, spec in FILES.items():
        if arrays[name].dtype != np.uint8 or arrays[name].shape != _array_shape(spec):
            found = f"{arrays[name].dtype} {arrays[name].shape}"
            raise _DamagedArrayCache(f"{name} is {found}, not uint8 {_array_shape(spec)}")
    for name in ("train_labels", "test_labels"):
        if arrays[name].max(initial=0) >= 10:
            raise _DamagedArrayCache(f"{name} holds label {arrays[name].max()}, but labels are 0-9")
    return (arrays["train_images"], arrays["train_labels"]), (arrays["test_images"], arrays["test_labels"])


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_file(path) as stream:
        np.savez(stream, source_sha256=",".join(spec.sha256 for spec in FILES.values()), **arrays)


def load_fashion_mnist(allow_download: bool = False, use_cache: bool = True) -> Arrays:
    """Return ((x_train, y_train), (x_test, y_test)) as uint8 arrays, like `keras.datasets.fashion_mnist`.

    allow_download: fetch from the Keras mirror when no local copy exists (off by default: offline first).
    use_cache: read and write the parsed `.npz` next to the model cache.
    """
    global _last_report
    started = time.perf_counter()
    _check_configured_dir()
    npz_path = arrays_cache_path()
    notes = []
    if use_cache and npz_path.is_file():
        try:
            loaded = _read_array_cache(npz_path)
        except _DamagedArrayCache as damage:
            notes.append(
                f"The array cache {npz_path} was damaged ({damage}); it was ignored and rebuilt from the verified "
                ".gz files."
            )
        else:
            _last_report = LoadReport(str(npz_path), time.perf_counter() - started, True)
            return loaded
    searched = search_dirs()
    folder = find_data_dir(searched)
    if folder is None:
        if not allow_download:
            raise DataError("Fashion-MNIST was not found.\n" + _help_text(searched))
        folder = download()
    try:
        arrays = {name: read_verified(folder / spec.filename, spec) for name, spec in FILES.items()}
    except DataError as error:
        raise DataError(f"{error}\n{_damaged_help_text(folder)}") from error
    if use_cache:
        try:
            _save_npz(npz_path, arrays)
        except OSError as error:  # A read-only cache folder only costs speed next time; it is said, not hidden.
            notes.append(f"The array cache {npz_path} could not be written ({error.strerror or error}).")
    _last_report = LoadReport(str(folder), time.perf_counter() - started, False, " ".join(notes) or None)
    return (arrays["train_images"], arrays["train_labels"]), (arrays["test_images"], arrays["test_labels"])
