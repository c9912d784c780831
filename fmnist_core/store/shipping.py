"""Installing the models that ship with the app: trained entries from a cache folder into `cached_models/`.

`make models` trains Model 1, 2 and 3 on the full preset through the CLI into a temporary cache
(scripts/ship_models.py) and then calls `install_shipped`. Nothing else writes to the shipped folder: the app
and the CLI only read it (fmnist_core.store.cache).

Installing checks every entry first, as the app will read it (the record is valid, the model file matches its
checksum, the settings are the preset's), so a failed check changes nothing. Then each entry is copied into a
temporary folder beside its place and renamed into place, and the older shipped entries of the same models
(another preset or recipe) are removed: the repository ships one entry per model. An entry trained before the
CLI recorded its command gets the command that reproduces it (the record is checked again; the model file and
its checksum are untouched).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path

from fmnist_core.config import TrainConfig
from fmnist_core.errors import CacheError
from fmnist_core.models.registry import get_spec
from fmnist_core.store.cache import ENTRY_PATTERN, META_FILE, MODEL_FILE, TEMPORARY_PREFIX, CacheEntry, ModelCache
from fmnist_core.store.record import ModelRecord

SHIPPED_MODELS = ("model1", "model2", "model3")
SHIPPED_PRESET = "full"


def train_command(model_name: str, preset: str) -> str:
    """The CLI command that trains a shipped model (default seed, nothing but the preset): what the train command
    records (fmnist_core.cli.train_command.command_line, which the core does not import; a test keeps them equal)."""
    return f"python -m fmnist_core train --model {model_name} --preset {preset}"


def entries_to_ship(source: Path, model_names: tuple[str, ...], preset: str, config: TrainConfig) -> list[CacheEntry]:
    """The usable entry of each model trained with `config` in the cache folder `source`; CacheError naming every
    one that is missing or damaged."""
    cache = ModelCache(source)
    found, problems = [], []
    for name in model_names:
        spec = get_spec(name)
        entry = cache.lookup(spec, config)
        if entry is None or entry.shipped:  # A shipped entry was not trained in `source`.
            problems.append(f"{spec.title} on the {preset} preset is not in {source}: {train_command(name, preset)}")
        elif not entry.ok:
            problems.append(f"{spec.title} on the {preset} preset in {source} is damaged ({entry.problem})")
        else:
            found.append(entry)
    if problems:
        raise CacheError("Nothing was installed. " + "; ".join(problems) + ".")
    return found


def install_shipped(
    source: Path | str,
    destination: Path | str,
    config: TrainConfig,
    preset: str = SHIPPED_PRESET,
    model_names: tuple[str, ...] = SHIPPED_MODELS,
) -> list[CacheEntry]:
    """Install the entries of `model_names` trained with `config` in `source` into the shipped folder `destination`.

    Returns the installed entries as the app reads them (shipped). Raises CacheError, having changed nothing, when
    an entry is missing or damaged.
    """
    source, destination = Path(source), Path(destination)
    entries = entries_to_ship(source, model_names, preset, config)
    destination.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        _copy_into_place(entry, destination, train_command(entry.model_name, preset))
    installed = {entry.entry_id for entry in entries}
    for folder in destination.iterdir():
        stale = ENTRY_PATTERN.match(folder.name) and folder.name.split("-")[0] in model_names
        if stale and folder.name not in installed:
            shutil.rmtree(folder)
    with tempfile.TemporaryDirectory() as nothing_of_its_own:
        app = ModelCache(nothing_of_its_own, shipped_root=destination)  # What the app will find there.
        return [app.inspect(entry_id) for entry_id in sorted(installed)]


def _copy_into_place(entry: CacheEntry, destination: Path, command: str) -> None:
    temporary = destination / f"{TEMPORARY_PREFIX}{entry.entry_id}-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    try:
        shutil.copy2(entry.path / MODEL_FILE, temporary / MODEL_FILE)
        record = entry.record if entry.record.command else dataclasses.replace(entry.record, command=command)
        values = record.to_dict()
        ModelRecord.from_dict(values)  # Checked as the app will read it.
        (temporary / META_FILE).write_text(json.dumps(values, indent=1), encoding="utf-8")
        final = destination / entry.entry_id
        if final.exists():  # The same model shipped again: the old copy goes once the new one is complete.
            old = destination / f"{TEMPORARY_PREFIX}old-{entry.entry_id}-{os.getpid()}"
            os.replace(final, old)
            shutil.rmtree(old)
        os.replace(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
