"""The Fashion-MNIST loader: IDX parsing, header and hash checks, search order, errors, array cache."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

from fmnist_core.data import loading as data
from fmnist_core.data.fashion_mnist import FILES
from fmnist_core.errors import DataError


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = struct.pack(">II", magic, array.shape[0])
    if array.ndim == 3:
        header += struct.pack(">II", *array.shape[1:])
    return header + array.astype(np.uint8).tobytes()


def tiny_specs(images: np.ndarray, labels: np.ndarray) -> dict[str, data.IdxFile]:
    """IdxFile specs whose counts and hashes match the given tiny arrays."""
    specs = {}
    for name, array, magic in (("images", images, 2051), ("labels", labels, 2049)):
        raw = idx_bytes(array, magic)
        specs[name] = data.IdxFile(f"{name}.gz", hashlib.sha256(raw).hexdigest(), magic, len(array))
    return specs


def write_gz(path: Path, payload: bytes) -> Path:
    path.write_bytes(gzip.compress(payload))
    return path


@pytest.fixture
def tiny_files(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=5, dtype=np.uint8)
    specs = tiny_specs(images, labels)
    write_gz(tmp_path / "images.gz", idx_bytes(images, 2051))
    write_gz(tmp_path / "labels.gz", idx_bytes(labels, 2049))
    return tmp_path, specs, images, labels


def test_parses_valid_idx_files_exactly(tiny_files):
    folder, specs, images, labels = tiny_files
    np.testing.assert_array_equal(data.read_verified(folder / "images.gz", specs["images"]), images)
    np.testing.assert_array_equal(data.read_verified(folder / "labels.gz", specs["labels"]), labels)


def test_wrong_hash_is_reported_by_name(tiny_files):
    folder, specs, images, _ = tiny_files
    images[0, 0, 0] ^= 1
    write_gz(folder / "images.gz", idx_bytes(images, 2051))
    with pytest.raises(DataError, match=r"images\.gz does not match the official"):
        data.read_verified(folder / "images.gz", specs["images"])


def test_wrong_magic_is_reported(tiny_files):
    folder, specs, images, _ = tiny_files
    write_gz(folder / "images.gz", idx_bytes(images, 2049 + 7))
    with pytest.raises(DataError, match="magic number 2056, expected 2051"):
        data.read_verified(folder / "images.gz", specs["images"])


def test_truncated_payload_is_reported(tiny_files):
    folder, specs, images, _ = tiny_files
    write_gz(folder / "images.gz", idx_bytes(images, 2051)[:-100])
    with pytest.raises(DataError, match="truncated"):
        data.read_verified(folder / "images.gz", specs["images"])


def test_truncated_gzip_is_reported(tiny_files):
    folder, specs, _, _ = tiny_files
    path = folder / "images.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataError, match=r"images\.gz is not a readable gzip file"):
        data.read_verified(path, specs["images"])


def test_wrong_count_and_dimensions(tiny_files):
    folder, specs, images, _ = tiny_files
    with pytest.raises(DataError, match="holds 4 items, expected 5"):
        data.parse_idx(idx_bytes(images[:4], 2051), specs["images"], "x")
    wide = np.zeros((5, 28, 30), np.uint8)
    with pytest.raises(DataError, match="28x30 images, expected 28x28"):
        data.parse_idx(idx_bytes(wide, 2051), specs["images"], "x")


def test_out_of_range_label_is_rejected(tmp_path):
    labels = np.array([1, 2, 11], np.uint8)
    specs = tiny_specs(np.zeros((3, 28, 28), np.uint8), labels)
    write_gz(tmp_path / "labels.gz", idx_bytes(labels, 2049))
    with pytest.raises(DataError, match="label 11"):
        data.read_verified(tmp_path / "labels.gz", specs["labels"])


def test_search_order_puts_env_folder_first(monkeypatch, tmp_path):
    monkeypatch.setenv("FMNIST_DATA_DIR", str(tmp_path))
    dirs = data.search_dirs()
    assert dirs[0] == tmp_path
    assert dirs[1:] == [
        Path("data/fashion-mnist"),
        Path("~/.keras/datasets/fashion-mnist").expanduser(),
        Path("/usr/share/datasets/fashion-mnist"),
    ]


def test_find_data_dir_needs_all_four_files(tmp_path):
    for spec in list(FILES.values())[:3]:
        (tmp_path / spec.filename).write_bytes(b"")
    assert data.find_data_dir([tmp_path]) is None
    (tmp_path / FILES["test_labels"].filename).write_bytes(b"")
    assert data.find_data_dir([tmp_path]) == tmp_path


def test_missing_data_names_places_and_fixes(monkeypatch, tmp_path, cache_dir):
    monkeypatch.setattr(data, "search_dirs", lambda: [tmp_path / "nowhere"])
    with pytest.raises(DataError) as raised:
        data.load_fashion_mnist()
    message = str(raised.value)
    assert str(tmp_path / "nowhere") in message
    assert "apt-get install -y dataset-fashion-mnist" in message
    assert "FMNIST_DATA_DIR" in message
    assert "--download" in message


def test_download_failure_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="Could not download"):
        data.download(tmp_path, base_url="http://127.0.0.1:9/")
    assert not list(tmp_path.glob("*.gz")), "a failed download must not leave a file that looks complete"
