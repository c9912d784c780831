"""A damaged array cache (`<cache>/fashion-mnist.npz`, issue 19.4) is ignored with a note and rebuilt from the
verified .gz files: by the loader (so `data`, `train` and every page), never a traceback, nothing else lost.

The loader runs on a tiny stand-in of the four official files (their counts and hashes swapped in), so every damage
and the property test take milliseconds; tests/test_cli_contract.py runs the real commands on the real files.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fmnist_core.data import loading as data
from fmnist_core.data.fashion_mnist import IdxFile
from tests.test_data import idx_bytes, write_gz

COUNTS = {"train_images": 6, "train_labels": 6, "test_images": 4, "test_labels": 4}


@pytest.fixture
def tiny_fashion_mnist(tmp_path, monkeypatch):
    """Four tiny official-format files in FMNIST_DATA_DIR, the loader's FILES pointing at them, an empty cache."""
    rng = np.random.default_rng(7)
    folder, arrays, specs = tmp_path / "gz", {}, {}
    folder.mkdir()
    for name, count in COUNTS.items():
        images = name.endswith("images")
        arrays[name] = rng.integers(0, 256 if images else 10, size=(count, 28, 28) if images else count, dtype=np.uint8)
        raw = idx_bytes(arrays[name], 2051 if images else 2049)
        specs[name] = IdxFile(f"{name}.gz", hashlib.sha256(raw).hexdigest(), 2051 if images else 2049, count)
        write_gz(folder / f"{name}.gz", raw)
    monkeypatch.setattr(data, "FILES", specs)
    monkeypatch.setenv("FMNIST_DATA_DIR", str(folder))
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(tmp_path / "cache"))
    return arrays


def loaded_arrays(loaded) -> dict[str, np.ndarray]:
    (train_images, train_labels), (test_images, test_labels) = loaded
    return {
        "train_images": train_images,
        "train_labels": train_labels,
        "test_images": test_images,
        "test_labels": test_labels,
    }


def assert_same(loaded, expected: dict[str, np.ndarray]) -> None:
    for name, array in loaded_arrays(loaded).items():
        np.testing.assert_array_equal(array, expected[name])
        assert array.dtype == np.uint8


def npz_of(arrays: dict[str, np.ndarray], source_sha256: str) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, source_sha256=source_sha256, **arrays)
    return buffer.getvalue()


def official_hashes() -> str:
    return ",".join(spec.sha256 for spec in data.FILES.values())


def npy_of(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def flipped(payload: bytes, position: int, mask: int = 0xFF) -> bytes:
    damaged = bytearray(payload)
    damaged[position % len(damaged)] ^= mask
    return bytes(damaged)


def damages(arrays: dict[str, np.ndarray], good: bytes) -> dict[str, tuple[bytes, str]]:
    """The damage issue 19 names, and its kin: the file's bytes and a word the note must contain."""
    wrong_shape = {**arrays, "test_images": arrays["test_images"][:, :20, :]}
    wrong_type = {**arrays, "train_labels": arrays["train_labels"].astype(np.int64)}
    bad_label = {**arrays, "test_labels": np.full_like(arrays["test_labels"], 12)}
    one_fewer = {name: array for name, array in arrays.items() if name != "train_labels"}
    member = zipfile.ZipFile(io.BytesIO(good)).getinfo("train_images.npy")
    # A pixel of the first training image: past the zip entry's header and the 128-byte .npy header.
    pixel = member.header_offset + 30 + len(member.filename) + len(member.extra) + 128 + 100
    return {
        "one flipped byte": (flipped(good, pixel, 0x01), "Bad CRC-32 for file 'train_images.npy'"),
        "truncated": (good[: len(good) // 2], "damaged"),
        "empty": (b"", "damaged"),
        "not a zip": (b"these are not the arrays you are looking for", "damaged"),
        "a lone .npy": (npy_of(arrays["train_images"]), "damaged"),
        "an array missing": (npz_of(one_fewer, official_hashes()), "train_labels"),
        "wrong shape": (npz_of(wrong_shape, official_hashes()), "test_images"),
        "wrong dtype": (npz_of(wrong_type, official_hashes()), "train_labels is int64"),
        "labels out of range": (npz_of(bad_label, official_hashes()), "label 12"),
        "made from other files": (npz_of(arrays, "0" * 64), "other files"),
        "pickled object": (npz_of({**arrays, "train_images": np.array([{"x": 1}], dtype=object)}, "x"), "damaged"),
    }


def build_good_cache(expected) -> bytes:
    assert_same(data.load_fashion_mnist(), expected)
    report = data.last_load_report()
    assert not report.from_cache and report.note is None
    return data.arrays_cache_path().read_bytes()


def test_a_good_array_cache_answers_the_second_load(tiny_fashion_mnist):
    build_good_cache(tiny_fashion_mnist)
    assert_same(data.load_fashion_mnist(), tiny_fashion_mnist)
    assert data.last_load_report().from_cache and data.last_load_report().note is None


@pytest.mark.parametrize(
    "damage",
    [
        "one flipped byte",
        "truncated",
        "empty",
        "not a zip",
        "a lone .npy",
        "an array missing",
        "wrong shape",
        "wrong dtype",
        "labels out of range",
        "made from other files",
        "pickled object",
    ],
)
def test_a_damaged_array_cache_is_ignored_with_a_note_and_rebuilt(tiny_fashion_mnist, damage):
    good = build_good_cache(tiny_fashion_mnist)
    payload, word = damages(tiny_fashion_mnist, good)[damage]
    data.arrays_cache_path().write_bytes(payload)

    assert_same(data.load_fashion_mnist(), tiny_fashion_mnist)
    report = data.last_load_report()
    assert not report.from_cache
    assert report.note.startswith(f"The array cache {data.arrays_cache_path()} was damaged (")
    assert word in report.note and "rebuilt from the verified .gz files" in report.note

    assert_same(data.load_fashion_mnist(), tiny_fashion_mnist)
    assert data.last_load_report().from_cache, "the rebuilt cache answers the next load"
    assert data.last_load_report().note is None


def test_an_array_cache_that_cannot_be_rewritten_is_said_not_hidden(tiny_fashion_mnist):
    data.arrays_cache_path().parent.mkdir(parents=True)
    data.arrays_cache_path().mkdir()  # A folder where the file should be: it can be neither read nor replaced.
    assert_same(data.load_fashion_mnist(), tiny_fashion_mnist)
    report = data.last_load_report()
    assert not report.from_cache and "could not be written" in report.note
    assert sorted(path.name for path in data.arrays_cache_path().parent.iterdir()) == ["fashion-mnist.npz"]


damage_strategy = st.one_of(
    st.tuples(st.just("flip"), st.integers(min_value=0), st.integers(min_value=1, max_value=255)),
    st.tuples(st.just("truncate"), st.integers(min_value=0), st.just(0)),
    st.tuples(st.just("append"), st.integers(min_value=1, max_value=64), st.integers(min_value=0, max_value=255)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(damage=st.lists(damage_strategy, min_size=1, max_size=3))
def test_any_byte_damage_leaves_the_data_right_and_the_state_clear(tiny_fashion_mnist, damage):
    """Random flips, truncations and trailing junk: the loader returns exactly the official arrays, either from the
    cache (the damage missed everything that matters) or rebuilt with a note naming the cache; the .gz files and
    the other files of the cache are untouched, and afterwards the cache answers again."""
    cache_folder = data.arrays_cache_path().parent
    cache_folder.mkdir(parents=True, exist_ok=True)
    (cache_folder / "model1-0123456789ab").mkdir(exist_ok=True)
    (cache_folder / "model1-0123456789ab" / "meta.json").write_text("{}")
    gz_before = {path.name: path.read_bytes() for path in Path(data.search_dirs()[0]).iterdir()}
    good = data.arrays_cache_path().read_bytes() if data.arrays_cache_path().is_file() else b""
    if not good:
        good = build_good_cache(tiny_fashion_mnist)
    payload = good
    for kind, where, value in damage:
        if kind == "flip":
            payload = flipped(payload, where, value) if payload else payload
        elif kind == "truncate":
            payload = payload[: where % (len(payload) + 1)]
        else:
            payload = payload + bytes([value]) * where
    data.arrays_cache_path().write_bytes(payload)

    assert_same(data.load_fashion_mnist(), tiny_fashion_mnist)
    report = data.last_load_report()
    if report.from_cache:
        assert report.note is None
    else:
        assert report.note.startswith(f"The array cache {data.arrays_cache_path()} was damaged (")
    assert_same(data.load_fashion_mnist(), tiny_fashion_mnist)
    assert data.last_load_report().from_cache
    assert {path.name: path.read_bytes() for path in Path(data.search_dirs()[0]).iterdir()} == gz_before
    assert (cache_folder / "model1-0123456789ab" / "meta.json").read_text() == "{}"
    assert sorted(path.name for path in cache_folder.iterdir()) == ["fashion-mnist.npz", "model1-0123456789ab"]
