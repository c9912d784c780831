"""`make models`' installing step (fmnist_core.store.shipping, scripts/ship_models.py) on stand-in entries: no training.

The entries are real cache entries (valid records, checksummed files) whose model file is a stand-in, so what is
tested is the installing itself: checks, atomic copy, one entry per model, the command in meta.json, and nothing
changed when a check fails.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from fmnist_core.cli.train_command import command_line
from fmnist_core.config import PRESETS
from fmnist_core.errors import CacheError
from fmnist_core.models.registry import get_spec
from fmnist_core.store.cache import ModelCache
from fmnist_core.store.shipping import SHIPPED_MODELS, install_shipped, train_command
from tests.records import StandInModel, make_record

ROOT = Path(__file__).resolve().parent.parent
FULL = PRESETS["full"]


def trained_in(folder: Path, names=SHIPPED_MODELS, config=FULL, command: str | None = None) -> dict[str, str]:
    """Stand-in entries of `names` trained with `config` in the cache folder `folder`; model name → entry id."""
    cache = ModelCache(folder)
    return {
        name: cache.save(
            StandInModel(), dataclasses.replace(make_record(name, config, accuracy_seed=index), command=command)
        ).entry_id
        for index, name in enumerate(names)
    }


@pytest.mark.parametrize("preset", list(PRESETS))
def test_the_shipped_command_is_the_one_the_cli_writes_for_the_preset(preset):
    for name in SHIPPED_MODELS:
        assert train_command(name, preset) == command_line(name, PRESETS[preset])


def already_shipped(shipped: Path, name: str, config) -> str:
    """A shipped entry from an earlier `make models` (another preset or recipe); returns its id."""
    earlier = shipped.parent / "earlier"
    entry_id = trained_in(earlier, names=(name,), config=config)[name]
    shipped.mkdir(exist_ok=True)
    (earlier / entry_id).rename(shipped / entry_id)
    return entry_id


def tree(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_installs_one_shipped_entry_per_model_with_the_command_that_trains_it(tmp_path):
    source, shipped = tmp_path / "trained", tmp_path / "cached_models"
    ids = trained_in(source)
    already_shipped(shipped, "model1", PRESETS["quick"])
    (shipped / ".gitkeep").write_text("")

    installed = install_shipped(source, shipped, FULL)

    assert [entry.entry_id for entry in installed] == sorted(ids.values())
    assert sorted(path.name for path in shipped.iterdir()) == sorted([".gitkeep", *ids.values()])  # Old one gone.
    app = ModelCache(tmp_path / "user", shipped_root=shipped)  # The app, with an empty cache of its own.
    for name, entry_id in ids.items():
        entry = app.find(get_spec(name), FULL)
        assert entry is not None and entry.ok and entry.shipped and entry.entry_id == entry_id
        assert (
            entry.record.command
            == train_command(name, "full")
            == f"python -m fmnist_core train --model {name} --preset full"
        )
        assert (entry.path / "model.keras").read_bytes() == (source / entry_id / "model.keras").read_bytes()
        assert entry.provenance == "shipped with the app (trained on Test CPU, 2 cores, 2026-11-25)"
    assert not [path for path in shipped.iterdir() if path.name.startswith(".tmp-")]


def test_a_command_recorded_by_the_cli_is_kept_and_shipping_again_replaces_the_entry(tmp_path):
    source, shipped = tmp_path / "trained", tmp_path / "cached_models"
    ids = trained_in(source, names=("model2",), command="python -m fmnist_core train --model model2 --preset full")
    install_shipped(source, shipped, FULL, model_names=("model2",))
    meta = source / ids["model2"] / "meta.json"
    values = json.loads(meta.read_text(encoding="utf-8"))
    values["command"] = "python -m fmnist_core train --model model2 --preset full --seed 42"
    meta.write_text(json.dumps(values), encoding="utf-8")

    (entry,) = install_shipped(source, shipped, FULL, model_names=("model2",))

    assert entry.record.command.endswith("--seed 42")
    assert [path.name for path in shipped.iterdir()] == [ids["model2"]]


@pytest.mark.parametrize("trouble", ["missing", "damaged", "other settings"])
def test_nothing_is_installed_when_an_entry_is_missing_or_damaged(tmp_path, trouble):
    source, shipped = tmp_path / "trained", tmp_path / "cached_models"
    ids = trained_in(source, names=("model1", "model2"))
    if trouble == "damaged":
        (source / ids["model2"] / "model.keras").write_bytes(b"changed")
        ids.update(trained_in(source, names=("model3",)))
    elif trouble == "other settings":
        ids.update(trained_in(source, names=("model3",), config=FULL.replace(seed=7)))
    already_shipped(shipped, "model1", PRESETS["quick"])
    before = tree(shipped)

    with pytest.raises(CacheError, match="Nothing was installed") as raised:
        install_shipped(source, shipped, FULL)

    expected = {"missing": "Model 3 on the full preset is not in", "damaged": "Model 2", "other settings": "Model 3"}
    assert expected[trouble] in str(raised.value)
    assert tree(shipped) == before


@pytest.mark.slow  # Starts the script in its own process.
def test_the_script_installs_from_a_cache_folder_and_says_what_it_installed(tmp_path):
    source, shipped = tmp_path / "trained", tmp_path / "cached_models"
    ids = trained_in(source)
    finished = subprocess.run(
        [sys.executable, "scripts/ship_models.py", "--from", str(source), "--to", str(shipped)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    assert sorted(path.name for path in shipped.iterdir()) == sorted(ids.values())
    assert finished.stdout.count("installed ") == 3 and "shipped with the app (trained on Test CPU" in finished.stdout

    missing = subprocess.run(
        [sys.executable, "scripts/ship_models.py", "--from", str(tmp_path / "empty"), "--to", str(shipped)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == CacheError.exit_code and "Nothing was installed" in missing.stderr
    assert "Traceback" not in missing.stderr
