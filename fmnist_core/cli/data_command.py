"""`data`: find, verify and load Fashion-MNIST; report where it came from and how long loading took."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from fmnist_core.cli.output import print_json
from fmnist_core.data import loading as data
from fmnist_core.data.fashion_mnist import CLASS_NAMES, NUM_CLASSES
from fmnist_core.paths import writable_cache_folder


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data",
        help="check, load or download Fashion-MNIST",
        description="Find Fashion-MNIST (offline first), verify SHA-256, parse, cache.",
    )
    parser.add_argument("--check", action="store_true", help="only check the data can be loaded (exit 3 if not)")
    parser.add_argument("--download", action="store_true", help="download from the Keras mirror if not found")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    parser.set_defaults(handler=run)


def run(arguments: argparse.Namespace) -> int:
    # The parsed arrays are cached beside the models: a cache folder that cannot take them is said first (exit 4).
    writable_cache_folder()
    (x_train, y_train), (x_test, y_test) = data.load_fashion_mnist(allow_download=arguments.download)
    first = data.last_load_report()
    # A second load shows what the parsed-array cache buys (docs/results/responsiveness.md quotes both figures).
    data.load_fashion_mnist()
    second = data.last_load_report()
    notes = list(dict.fromkeys(report.note for report in (first, second) if report.note))
    summary = {
        "source": first.source,
        "first_load_seconds": round(first.seconds, 4),
        "first_load_from_array_cache": first.from_cache,
        "second_load_seconds": round(second.seconds, 4),
        "second_load_from_array_cache": second.from_cache,
        "notes": notes,
        "train": {"images": list(x_train.shape), "labels": list(y_train.shape)},
        "test": {"images": list(x_test.shape), "labels": list(y_test.shape)},
        "class_counts_train": np.bincount(y_train, minlength=NUM_CLASSES).tolist(),
        "classes": list(CLASS_NAMES),
    }
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if arguments.json:
        print_json(summary)
    elif arguments.check:
        print(f"Fashion-MNIST OK ({first.source})")
    else:
        print(f"Fashion-MNIST loaded from {first.source}; SHA-256 of all four files verified.")
        print(
            f"  train: {x_train.shape[0]:,} images {x_train.shape[1]}x{x_train.shape[2]}, "
            f"test: {x_test.shape[0]:,} images"
        )
        print(
            f"  first load {first.seconds * 1000:.0f} ms{' (array cache)' if first.from_cache else ''}, "
            f"second load {second.seconds * 1000:.0f} ms"
            + (" (array cache)" if second.from_cache else " (from the .gz files again: no array cache)")
        )
    return 0
