"""`evaluate`: test-set accuracy, confusion matrix and per-class report of a cached model."""

from __future__ import annotations

import argparse

from fmnist_core.cli.output import print_json
from fmnist_core.cli.train_command import add_config_arguments, command_line, config_from_arguments
from fmnist_core.data.fashion_mnist import CLASS_NAMES
from fmnist_core.data.loading import load_fashion_mnist
from fmnist_core.errors import CacheError, ConfigError
from fmnist_core.evaluate.evaluation import evaluate
from fmnist_core.evaluate.gallery import GALLERIES, model_gallery
from fmnist_core.models.registry import MODEL_NAMES, get_spec
from fmnist_core.store.cache import ModelCache


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a cached model on the test set",
        description="Evaluate a cached model: by --entry ID, or by --model + settings.",
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--entry", help="cache entry id (see `cache list`)")
    which.add_argument("--model", choices=MODEL_NAMES, help="the entry trained with these settings")
    add_config_arguments(parser)
    parser.add_argument(
        "--gallery", choices=GALLERIES, help="list the test images it gets wrong most confidently, or least sure ones"
    )
    parser.add_argument("--top", type=int, default=10, help="with --gallery: how many images (default 10)")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=run)


def format_confusion(matrix: list[list[int]]) -> str:
    """Confusion matrix as text: rows true class, columns predicted class."""
    short = [name.split("/")[0][:7] for name in CLASS_NAMES]
    lines = ["true \\ predicted ".ljust(16) + " ".join(f"{name:>7}" for name in short)]
    for name, row in zip(CLASS_NAMES, matrix, strict=True):
        lines.append(f"{name[:15]:<16}" + " ".join(f"{count:>7}" for count in row))
    return "\n".join(lines)


def run(arguments: argparse.Namespace) -> int:
    if arguments.top < 1:
        raise ConfigError(f"--top must be a whole number of 1 or more (got {arguments.top}).")
    cache = ModelCache()
    if arguments.entry:
        entry = cache.inspect(arguments.entry)
    else:
        spec, config = get_spec(arguments.model), config_from_arguments(arguments)
        # Without --precision, `train` may have trained this machine's precision (config.for_this_machine).
        entry = cache.lookup(spec, config) if arguments.precision else cache.lookup_either_precision(spec, config)
        if entry is None:
            raise CacheError(
                f"{spec.title} with these settings is not cached. Train it first: {command_line(spec.name, config)}"
            )
        if not entry.ok:
            raise CacheError(
                f"{spec.title} with these settings is cached, but the entry {entry.entry_id} is damaged "
                f"({entry.problem}). {entry.repair}"
            )
    entry_id = entry.entry_id
    model = cache.load_model(entry_id)
    _, (x_test, y_test) = load_fashion_mnist()
    if arguments.gallery:
        return show_gallery(arguments, model_gallery(model, x_test, y_test, arguments.gallery, arguments.top))
    result = evaluate(model, x_test, y_test)
    if arguments.json:
        payload = result.to_dict()
        payload["entry_id"] = entry_id
        payload["provenance"] = entry.provenance
        print_json(payload)
        return 0
    print(f"{entry_id}, {entry.provenance}")
    print(
        f"test accuracy {result.test_accuracy:.2%}, loss {result.test_loss:.4f}, "
        f"macro F1 {result.macro_f1:.4f}, {result.images_per_second:,.0f} images/s inference"
    )
    print()
    print(format_confusion(result.confusion_matrix))
    print()
    print(f"{'class':<14}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}")
    for row in result.per_class:
        print(f"{row.name:<14}{row.precision:>10.3f}{row.recall:>8.3f}{row.f1:>8.3f}{row.support:>9}")
    return 0


def show_gallery(arguments: argparse.Namespace, images) -> int:
    if arguments.json:
        print_json([image.to_dict(arguments.gallery) for image in images])
        return 0
    for image in images:
        runner_up = f", then {CLASS_NAMES[image.second]} (margin {image.margin:.3f})"
        print(f"{image.caption}{runner_up if arguments.gallery == 'ambiguous' else ''}")
    return 0
