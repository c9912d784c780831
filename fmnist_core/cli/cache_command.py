"""`cache list` and `cache delete`: what is cached, what is damaged, and cleaning up."""

from __future__ import annotations

import argparse

from fmnist_core.cli.output import print_json
from fmnist_core.errors import ConfigError
from fmnist_core.store.cache import ModelCache


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "cache",
        help="list or delete cached models",
        description=(
            "Inspect the model cache: your own trainings ($FMNIST_CACHE_DIR, else ~/.cache/fmnist-explorer) and the "
            "models shipped with the app (cached_models/ in the repository, read-only)."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="list cached models (damaged ones flagged)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=run_list)
    delete = actions.add_parser("delete", help="delete cached models")
    delete.add_argument("entries", nargs="*", metavar="ENTRY_ID")
    delete.add_argument("--damaged", action="store_true", help="delete every damaged entry")
    delete.set_defaults(handler=run_delete)


def run_list(arguments: argparse.Namespace) -> int:
    cache = ModelCache()
    entries = cache.list()
    if arguments.json:
        print_json(
            [
                {
                    "entry_id": entry.entry_id,
                    "ok": entry.ok,
                    "shipped": entry.shipped,
                    "provenance": entry.provenance,
                    "path": str(entry.path),
                    "problem": entry.problem,
                    "model": entry.model_name,
                    "test_accuracy": entry.record.test_accuracy if entry.record else None,
                    "created": entry.record.created if entry.record else None,
                    "config": entry.record.config.to_dict() if entry.record else None,
                }
                for entry in entries
            ]
        )
        return 0
    if not entries:
        print(
            f"No cached models in {cache.root} and none shipped in {cache.shipped_root}. "
            "Train one: python -m fmnist_core train --model model1"
        )
        return 0
    for shipped, heading in (
        (False, f"Yours, in {cache.root}"),
        (True, f"Shipped with the app, in {cache.shipped_root}"),
    ):
        group = [entry for entry in entries if entry.shipped == shipped]
        print(f"{heading}: {len(group) or 'none'}")
        for entry in group:
            status = "ok     " if entry.ok else "DAMAGED"
            print(f"  {status} {entry.entry_id}  {entry.label if entry.ok else entry.problem}  ({entry.provenance})")
    return 0


def run_delete(arguments: argparse.Namespace) -> int:
    cache = ModelCache()
    targets = list(arguments.entries)
    if arguments.damaged:
        damaged = [entry for entry in cache.list() if not entry.ok]
        targets += [entry.entry_id for entry in damaged if not entry.shipped]
        for entry in damaged:
            if entry.shipped:
                print(f"kept {entry.entry_id}: {entry.repair}")
    if not targets:
        if arguments.damaged:
            print("No damaged entries.")
            return 0
        raise ConfigError("Name the entries to delete (see `cache list`) or pass --damaged.")
    for entry_id in targets:
        cache.delete(entry_id)
        print(f"deleted {entry_id}")
    return 0
