"""The cache entries a benchmark measures: named by id, or each model's entry for a preset."""

from __future__ import annotations

import argparse
import sys

from fmnist_core.config import PRESETS, get_preset
from fmnist_core.errors import CacheError, FmnistError
from fmnist_core.models.registry import MODEL_NAMES, get_spec
from fmnist_core.store.cache import CacheEntry, ModelCache


def add_entry_arguments(parser: argparse.ArgumentParser, default_preset: str = "full") -> None:
    parser.add_argument(
        "--preset",
        default=default_preset,
        choices=list(PRESETS),
        help=f"each model's entry for this preset (default {default_preset})",
    )
    parser.add_argument("--entry", action="append", default=[], help="measure this cache entry instead (repeatable)")


def chosen_entries(cache: ModelCache, arguments: argparse.Namespace) -> list[CacheEntry]:
    """The entries named by --entry, else every model's entry for --preset; CacheError when there is none."""
    if arguments.entry:
        entries = [cache.inspect(entry_id) for entry_id in arguments.entry]
        damaged = [entry for entry in entries if not entry.ok]
        if damaged:
            raise CacheError(f"Cached model {damaged[0].entry_id} is damaged: {damaged[0].problem}.")
        return entries
    config = get_preset(arguments.preset)
    entries = [entry for name in MODEL_NAMES if (entry := cache.find(get_spec(name), config)) is not None]
    if not entries:
        raise CacheError(
            f"No cached {arguments.preset!r} models: train one first, e.g. "
            f"python -m fmnist_core train --model model1 --preset {arguments.preset}"
        )
    return entries


def cache_and_entries(arguments: argparse.Namespace) -> tuple[ModelCache, list[CacheEntry]] | None:
    """The user's cache and the entries the arguments name; None after a one-line `error:` when there are none."""
    cache = ModelCache()
    try:
        return cache, chosen_entries(cache, arguments)
    except FmnistError as error:
        print(f"error: {error}", file=sys.stderr)
        return None
