"""Hostile input, round 3 (issue 44): a full disk while saving, huge seed counts, a restart that must bring back the
request's own settings, a killed race, oversized and repeated `explain` calls, two sweeps on one cache, and small
ones (symlinked entries, non-ASCII digits, a negative wait, a one-model sweep). Each ends in a clear message and the
README's exit code, with nothing half-written left behind."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from fmnist_core.errors import CacheError
from fmnist_core.store.cache import TEMPORARY_PREFIX, ModelCache

# A full disk while saving -------------------------------------------------------------------------------------


def disk_full(*arguments, **keywords):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def cache_files(root: Path) -> dict[str, bytes]:
    """Every file under the cache but its lock files, with its content: what a failed save must leave alone."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".locks" not in path.parts
    }


@pytest.mark.parametrize("failing", ["model", "record"])
def test_a_full_disk_while_saving_is_a_cache_error_that_says_what_to_free(failing, trained_cache, monkeypatch):
    """ENOSPC while the model file or its record is written: exit 4 with what to free, and the entry already there
    (the save was a retrain) left exactly as it was, with no temporary folder beside it."""
    import fmnist_core.store.cache as cache_module

    cache = ModelCache()
    (entry,) = cache.list()
    model = cache.load_model(entry.entry_id)
    before = cache_files(cache.root)
    if failing == "model":
        monkeypatch.setattr(model, "save", disk_full)
    else:
        monkeypatch.setattr(cache_module, "_write_durably", disk_full)
    with pytest.raises(CacheError) as caught:
        cache.save(model, entry.record, replace=True)
    message = str(caught.value)
    assert caught.value.exit_code == 4
    assert "\n" not in message and "is full" in message and "not saved" in message
    assert "free at least" in message and "cache delete" in message and "FMNIST_CACHE_DIR" in message
    assert cache_files(cache.root) == before
    assert not list(cache.root.glob(f"{TEMPORARY_PREFIX}*"))


def test_an_unwritable_cache_while_saving_says_so(trained_cache, monkeypatch):
    """Any other OSError of the save (a folder turned read-only) is a cache error too, never a traceback."""
    cache = ModelCache()
    (entry,) = cache.list()
    model = cache.load_model(entry.entry_id)

    def read_only(*arguments, **keywords):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(model, "save", read_only)
    with pytest.raises(CacheError, match="cannot write in the model cache .*Read-only file system"):
        cache.save(model, entry.record, replace=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs, as the issue's probe mounted it; skipped where this process may not mount (not root)."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2M", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.slow
def test_a_really_full_disk_while_saving(small_disk, trained_cache_dir):
    """The probe on a real full file system: the disk filled but for a few kB, then a model saved there."""
    source = ModelCache(trained_cache_dir)
    (entry,) = source.list()
    model = source.load_model(entry.entry_id)
    cache = ModelCache(small_disk / "cache")
    cache.root.mkdir()
    filler = small_disk / "filler"
    with filler.open("wb", buffering=0) as handle, pytest.raises(OSError) as full:
        while True:
            handle.write(b"\0" * 4096)
    assert full.value.errno == errno.ENOSPC
    with pytest.raises(CacheError, match="is full. The model takes about"):
        cache.save(model, entry.record)
    assert [path.name for path in cache.root.iterdir()] == [".locks"]
    filler.unlink()
    saved = cache.save(model, entry.record)
    assert saved.ok, "once space is freed the same save works"
