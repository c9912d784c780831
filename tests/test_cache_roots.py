"""Two cache roots: the models shipped with the app (read-only) under the user's own cache.

A shipped model answers a request for its settings with no training; an explicit retrain writes the user's own
entry, which answers in its place, and replaces nothing shipped; the app and the CLI say where each model came
from; nothing ever writes, renames or deletes anything in the shipped folder. The folders follow one rule each
(fmnist_core.paths), and the tests see nothing shipped unless they ask.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fmnist_core import paths
from fmnist_core.cli import main
from fmnist_core.errors import CacheError
from fmnist_core.store.cache import ModelCache
from fmnist_core.training.pipeline import train_and_cache
from tests.test_pipeline import trained_without_fitting


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file and folder under `folder` with its modification time and bytes: any write shows."""
    return {
        str(path.relative_to(folder)): (path.stat().st_mtime_ns, path.read_bytes() if path.is_file() else b"")
        for path in sorted(folder.rglob("*"))
    }


@pytest.fixture
def roots(trained_cache_dir, tmp_path, monkeypatch) -> tuple[Path, Path]:
    """(user cache, shipped folder): the tiny trained model ships with the app; the user's cache is empty. Both are
    set through the environment, as a user sets them."""
    shipped_dir = tmp_path / "repository"
    shutil.copytree(trained_cache_dir, shipped_dir / paths.SHIPPED_MODELS_FOLDER, ignore=shutil.ignore_patterns(".*"))
    user = tmp_path / "user-cache"
    monkeypatch.setenv("FMNIST_SHIPPED_DIR", str(shipped_dir))
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(user))
    return user, shipped_dir / paths.SHIPPED_MODELS_FOLDER


def test_a_shipped_model_answers_a_request_for_its_settings_without_training(
    roots, tiny_spec, tiny_config, monkeypatch
):
    user, shipped = roots
    before = snapshot(shipped)
    monkeypatch.setattr(
        "fmnist_core.training.pipeline.train", lambda *args, **kwargs: pytest.fail("nothing should train")
    )

    outcome = train_and_cache(tiny_spec, tiny_config, data=object())

    assert outcome.reused and outcome.entry.shipped and outcome.entry.path.parent == shipped
    assert outcome.entry.provenance.startswith("shipped with the app (trained on ")
    assert ModelCache().load_model(outcome.entry.entry_id) is not None
    assert snapshot(shipped) == before


def test_a_retrain_writes_the_users_own_entry_which_answers_until_deleted(
    roots, tiny_data, tiny_spec, tiny_config, monkeypatch
):
    user, shipped = roots
    before = snapshot(shipped)
    monkeypatch.setattr("fmnist_core.training.pipeline.train", trained_without_fitting)
    cache = ModelCache()

    outcome = train_and_cache(tiny_spec, tiny_config, data=tiny_data, retrain=True)

    mine = outcome.entry
    assert not outcome.reused and not mine.shipped and mine.path.parent == user
    assert mine.provenance == "trained on this machine"
    assert cache.find(tiny_spec, tiny_config) == mine
    assert [(entry.entry_id, entry.shipped) for entry in cache.list()] == [(mine.entry_id, False)]
    assert snapshot(shipped) == before  # Nothing shipped was replaced.

    cache.delete(mine.entry_id)
    back = cache.find(tiny_spec, tiny_config)
    assert back is not None and back.shipped
    with pytest.raises(CacheError, match="ships with the app .* read-only"):
        cache.delete(back.entry_id)
    assert snapshot(shipped) == before


def test_listing_merges_both_roots_and_says_which_is_which(
    roots, tiny_data, tiny_spec, tiny_config, monkeypatch, capsys
):
    user, shipped = roots
    monkeypatch.setattr("fmnist_core.training.pipeline.train", trained_without_fitting)
    mine = train_and_cache(tiny_spec, tiny_config.replace(seed=7), data=tiny_data).entry

    entries = ModelCache().list()
    assert sorted((entry.shipped, entry.path.parent) for entry in entries) == [(False, user), (True, shipped)]

    assert main(["cache", "list"]) == 0
    printed = capsys.readouterr().out
    yours, theirs = printed.split("Shipped with the app")
    assert mine.entry_id in yours and "trained on this machine" in yours
    assert "shipped with the app (trained on" in theirs and str(shipped) in theirs
    assert main(["cache", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(item["shipped"] for item in listed) == [False, True]


def test_a_damaged_shipped_entry_is_listed_kept_and_never_loaded(roots, capsys):
    user, shipped = roots
    (entry_folder,) = [path for path in shipped.iterdir() if path.is_dir()]
    (entry_folder / "model.keras").write_bytes(b"damaged")
    before = snapshot(shipped)

    (entry,) = ModelCache().list()
    assert entry.shipped and not entry.ok and "git checkout -- cached_models" in entry.repair
    with pytest.raises(CacheError, match="git checkout -- cached_models"):
        ModelCache().load_model(entry.entry_id)
    assert main(["cache", "delete", "--damaged"]) == 0
    assert f"kept {entry.entry_id}" in capsys.readouterr().out
    assert snapshot(shipped) == before


def test_the_user_cache_is_per_user_and_outside_the_repository(tmp_path, monkeypatch):
    monkeypatch.delenv("FMNIST_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert paths.cache_root() == tmp_path / "xdg" / "fmnist-explorer"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # The XDG rules ignore relative paths.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert paths.cache_root() == tmp_path / "home" / ".cache" / "fmnist-explorer"
    # The parsed dataset arrays, races and sweeps go with the user's trainings.
    from fmnist_core.data.loading import arrays_cache_path
    from fmnist_core.race.file import races_dir

    assert arrays_cache_path().parent == races_dir().parent == paths.cache_root()


def test_the_shipped_folder_is_never_the_users_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FMNIST_SHIPPED_DIR", str(tmp_path))
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(tmp_path / "cached_models"))
    with pytest.raises(CacheError, match="the folder of the models shipped with the app, which the app never writes"):
        paths.cache_root()


def test_one_variable_moves_everything_shipped_and_the_tests_see_nothing_shipped(tmp_path, monkeypatch):
    assert paths.shipped_dir() != paths.PROJECT_ROOT  # tests/conftest.py hides the repository's shipped files.
    assert ModelCache().list() == [] and paths.recorded_races_dir().parent == paths.shipped_dir()
    monkeypatch.delenv("FMNIST_SHIPPED_DIR")
    assert paths.shipped_models_root() == paths.PROJECT_ROOT / "cached_models"
    assert paths.recorded_races_dir() == paths.PROJECT_ROOT / "recorded_races"
