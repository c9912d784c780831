"""Files the commands write: folders and output paths checked before the work, outputs written whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fmnist_core.errors import CacheError, ConfigError
from fmnist_core.files import atomic_file, check_output_file, folder_problem, write_output
from fmnist_core.paths import writable_cache_folder

# Never writable, even for root: the kernel's sysfs refuses new files (EACCES, or EROFS in containers).
UNWRITABLE = Path("/sys/kernel/fmnist-explorer")


@pytest.fixture
def regular_file(tmp_path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("keep me")
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_a_writable_folder_passes_and_is_not_created(tmp_path):
    assert folder_problem(tmp_path) is None
    assert folder_problem(tmp_path / "new" / "deeper") is None
    assert leftovers(tmp_path) == [], "the check creates nothing, not even its probe file"


def test_a_path_through_a_regular_file_names_that_file(regular_file):
    assert folder_problem(regular_file) == f"{regular_file} is a file, not a folder"
    assert folder_problem(regular_file / "sub" / "deeper") == f"{regular_file} is a file, not a folder"
    assert regular_file.read_text() == "keep me"


def test_an_unwritable_place_is_found_by_trying():
    problem = folder_problem(UNWRITABLE)
    assert problem is not None and problem.startswith(f"cannot write in {UNWRITABLE.parent}")


@pytest.mark.parametrize("option", ["--out", "--csv"])
def test_output_paths_are_refused_before_the_work(tmp_path, regular_file, option):
    with pytest.raises(ConfigError, match=f"{option} {tmp_path} is a folder") as raised:
        check_output_file(tmp_path, option)
    assert raised.value.exit_code == 2
    with pytest.raises(ConfigError, match=f"{regular_file} is a file, not a folder") as raised:
        check_output_file(regular_file / "x.md", option)
    assert "File exists" not in str(raised.value)
    with pytest.raises(ConfigError, match="cannot write in"):
        check_output_file(UNWRITABLE / "report.md", option)
    assert check_output_file(tmp_path / "new" / "report.md", option) == tmp_path / "new" / "report.md"


def test_write_output_replaces_the_target_whole(tmp_path):
    target = tmp_path / "out" / "result.json"
    write_output(target, "first", "--out")
    write_output(target, b"second", "--out")
    assert target.read_text() == "second"
    assert leftovers(target.parent) == ["result.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_file(target) as stream:
        stream.write(b"half of the new")
        raise RuntimeError("the work failed half-way")
    assert target.read_text() == "old"
    assert leftovers(tmp_path) == ["result.json"]


def test_a_target_that_became_a_folder_is_a_clear_error_without_a_temporary(tmp_path):
    target = tmp_path / "result.json"
    target.mkdir()
    with pytest.raises(ConfigError, match=f"Cannot write --out {target}") as raised:
        write_output(target, "text", "--out")
    assert raised.value.exit_code == 2
    assert leftovers(tmp_path) == ["result.json"] and leftovers(target) == []


def test_writable_cache_folder_checks_the_root_and_its_subfolders(tmp_path, regular_file, monkeypatch):
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(tmp_path / "cache"))
    assert writable_cache_folder("races") == tmp_path / "cache" / "races"
    assert writable_cache_folder(root=tmp_path / "other") == tmp_path / "other"
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "races").write_text("")
    with pytest.raises(CacheError, match="races is a file, not a folder") as raised:
        writable_cache_folder("races")
    assert raised.value.exit_code == 4
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(regular_file / "cache"))
    with pytest.raises(CacheError, match="Point FMNIST_CACHE_DIR at a folder you can write to"):
        writable_cache_folder()


def test_an_unusable_cache_stops_training_before_the_data_is_read(tiny_spec, tiny_config, regular_file):
    from fmnist_core.store.cache import ModelCache
    from fmnist_core.training.pipeline import train_and_cache

    class Untouchable:
        """Data that fails the test if training ever reads it."""

        def __iter__(self):
            raise AssertionError("the data was read before the cache folder was checked")

    with pytest.raises(CacheError, match="is a file, not a folder"):
        train_and_cache(tiny_spec, tiny_config, cache=ModelCache(regular_file / "cache"), data=Untouchable())
    assert os.listdir(regular_file.parent) == ["notes.txt"]
