"""`explain`: what a cached model looks at, as PNG pictures and JSON figures for a teacher's slides."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from fmnist_core.cli.output import print_json
from fmnist_core.config import PRESETS, whole_number
from fmnist_core.data.fashion_mnist import CLASS_NAMES
from fmnist_core.errors import CacheError, ConfigError, ExplainError
from fmnist_core.files import folder_problem
from fmnist_core.models.registry import MODEL_NAMES

IMAGE_PATTERN = re.compile(r"^(test|train):([0-9]+)$")  # ASCII digits (fmnist_core.config.whole_number).
MANIFEST = "explanation.json"  # The figures, and the list of files this call wrote.
OWN_PICTURE = re.compile(r"[a-z0-9-]+\.png")  # The names explain gives its pictures (input.png, saliency-3.png...).


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="show what a cached model looks at (filters, feature maps, saliency, redundant filters)",
        description=(
            "Write the first-layer filter grid, every block's feature maps and the saliency overlay of one image as "
            "PNG files, and the figures (class probabilities, filter redundancy) as explanation.json."
        ),
    )
    add_entry_arguments(parser)
    parser.add_argument(
        "--image", required=True, help="test:N or train:N (a Fashion-MNIST image), or a picture file (PNG, JPEG…)"
    )
    parser.add_argument("--class", dest="class_name", help="also explain this class (number 0-9 or name)")
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        help="folder for the PNG files and explanation.json (a later call there removes the pictures this one listed)",
    )
    parser.add_argument("--json", action="store_true", help="print explanation.json")
    parser.set_defaults(handler=run)


def add_entry_arguments(parser) -> None:
    """--entry, or --model with an optional --preset: the cached model `chosen_entry` picks."""
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--entry", help="cache entry id (see `cache list`)")
    which.add_argument("--model", choices=MODEL_NAMES, help="the most accurate cached entry of this model")
    parser.add_argument("--preset", choices=list(PRESETS), help="with --model: the entry trained with this preset")


def chosen_entry(arguments: argparse.Namespace):
    """The cache entry named by --entry, or --model's (with --preset's settings, else its most accurate).

    A damaged entry is reported as damaged, with the clean-up command, not as missing.
    """
    from fmnist_core.models.registry import get_spec
    from fmnist_core.store.cache import DELETE_DAMAGED_COMMAND, ModelCache, best_entries

    cache = ModelCache()
    if arguments.entry:
        entry = cache.inspect(arguments.entry)
    else:
        spec, preset = get_spec(arguments.model), arguments.preset
        if preset:
            entry = cache.lookup_either_precision(spec, PRESETS[preset])
        else:
            entries = cache.list()
            damaged = (entry for entry in entries if entry.model_name == spec.name and not entry.ok)
            entry = best_entries(entries)[spec.name] or next(damaged, None)
        if entry is None:
            raise CacheError(
                f"{spec.title}{f' with the {preset} preset' if preset else ''} is not cached. Train it first: "
                f"python -m fmnist_core train --model {spec.name} --preset {preset or 'quick'}"
            )
    if not entry.ok:
        raise CacheError(
            f"Cached model {entry.entry_id} is damaged ({entry.problem}). Delete it with `{DELETE_DAMAGED_COMMAND}`, "
            "then train it again."
        )
    return cache, entry


def chosen_image(text: str):
    """(the 28×28 image, its true class or None, a description) for test:N, train:N or a picture file."""
    match = IMAGE_PATTERN.match(text)
    if match:
        from fmnist_core.data.loading import load_fashion_mnist

        split, index = match.group(1), int(match.group(2))
        (train_images, train_labels), (test_images, test_labels) = load_fashion_mnist()
        images, labels = (test_images, test_labels) if split == "test" else (train_images, train_labels)
        if index >= len(images):
            raise ExplainError(
                f"There is no {split} image {index}: the {split} set has {len(images):,} (0 to {len(images) - 1})."
            )
        return images[index], int(labels[index]), f"{split} image #{index}"
    path = Path(text)
    if not path.is_file():
        raise ExplainError(f"--image {text!r} is neither test:N / train:N nor a picture file that exists.")
    from fmnist_core.evaluate.sketch import SketchError, check_file_size, prepare_sketch

    try:
        # The size first, then at most one byte past the limit: a huge file is refused without being read.
        check_file_size(path.stat().st_size)
        with path.open("rb") as handle:
            return prepare_sketch(handle).image, None, f"picture {path.name}"
    except (OSError, SketchError) as error:
        raise ExplainError(f"Cannot use {path} as the picture: {error}") from None


def earlier_pictures(folder: Path) -> set[str]:
    """The pictures an earlier `explain` wrote in `folder`, as its explanation.json lists them (none if unreadable).

    A second call into the same folder removes those it does not write again, so a saliency picture of the first
    image never sits beside the second image's figures. Only bare PNG names count: the list is read from a file
    anyone could have edited, and nothing outside the folder, or not a picture, is ever removed.
    """
    try:
        listed = json.loads((folder / MANIFEST).read_text(encoding="utf-8")).get("files", [])
    except (OSError, ValueError, AttributeError, RecursionError):
        return set()
    if not isinstance(listed, list):
        return set()
    return {name for name in listed if isinstance(name, str) and OWN_PICTURE.fullmatch(name)}


def class_index(text: str | None) -> int | None:
    if text is None:
        return None
    names = {name.lower(): index for index, name in enumerate(CLASS_NAMES)}
    if text.strip().lower() in names:
        return names[text.strip().lower()]
    try:
        index = whole_number(text.strip())
    except ValueError:
        index = -1
    if 0 <= index < len(CLASS_NAMES):
        return index
    listed = ", ".join(f"{index} {name}" for index, name in enumerate(CLASS_NAMES))
    raise ExplainError(f"--class {text!r} is not a class. The classes are: {listed}.")


def run(arguments: argparse.Namespace) -> int:
    from fmnist_core.evaluate.predict import pixelated
    from fmnist_core.explain import inside as explain
    from fmnist_core.explain.render import filter_grid, maps_grid, saliency_overlay, save_png

    # Cheap checks first: a wrong class, an --out that cannot be written or a missing model is reported before the
    # data set is read.
    other = class_index(arguments.class_name)
    problem = folder_problem(arguments.out)
    if problem:
        raise ConfigError(f"Cannot write the pictures to --out {arguments.out}: {problem}. Choose another folder.")
    cache, entry = chosen_entry(arguments)
    image, true_class, described = chosen_image(arguments.image)
    model = cache.load_model(entry.entry_id)
    result = explain.explain_image(model, image, other_class=other)
    report = explain.filter_redundancy(model)
    pictures = {
        "input.png": pixelated(image),
        "filters.png": filter_grid(explain.first_layer_filters(model)),
        f"saliency-{result.predicted}.png": saliency_overlay(image, result.saliency),
        **{f"maps-{layer.name.removesuffix('_relu')}.png": maps_grid(layer) for layer in result.maps},
    }
    if result.other_class is not None:
        pictures[f"saliency-{result.other_class}.png"] = saliency_overlay(image, result.other_saliency)
    payload = {
        "entry_id": entry.entry_id,
        "model": result.network.title,
        "first_filters": result.network.first_filters,
        "explained": "the trained network inside the mirror-averaged model, on the picture alone"
        if result.network.mirror_averaged
        else "the trained network",
        "image": described,
        "true_class": None if true_class is None else CLASS_NAMES[true_class],
        "predicted_class": CLASS_NAMES[result.predicted],
        "probabilities": {
            name: round(float(value), 6) for name, value in zip(CLASS_NAMES, result.probabilities, strict=True)
        },
        "saliency_method": explain.DEFAULT_SALIENCY,
        "blocks": [
            {"layer": layer.name, "shape": layer.shape, "receptive_field": layer.receptive_field}
            for layer in result.maps
        ],
        "filter_redundancy": report.to_dict(),
        "files": sorted([*pictures, MANIFEST]),
    }
    try:
        arguments.out.mkdir(parents=True, exist_ok=True)
        earlier = earlier_pictures(arguments.out)
        for name, array in pictures.items():
            save_png(array, arguments.out / name)
        (arguments.out / MANIFEST).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        # Only now, and only the pictures an earlier call listed as its own: a slide deck's folder keeps the rest.
        for name in earlier - set(pictures):
            (arguments.out / name).unlink(missing_ok=True)
    except OSError as error:
        raise ExplainError(
            f"Cannot write to {arguments.out}: {error.strerror or error}. Choose another --out folder."
        ) from None
    if arguments.json:
        print_json(payload)
        return 0
    truth = f" (true: {payload['true_class']})" if true_class is not None else ""
    print(f"{entry.entry_id}: {described}{truth} → {payload['predicted_class']} ({result.probabilities.max():.1%})")
    if result.network.mirror_averaged:
        print("Explained: the trained network inside the mirror-averaged model, looking at the picture alone.")
    print(
        f"First layer: {report.filters} filters, {report.dead} nearly dead, {report.near_duplicates} with a near-copy "
        f"(maps correlated ≥ {report.duplicate_correlation}), {report.distinct_groups} distinct groups, "
        f"{report.effective_filters:.1f} effective filters."
    )
    print(f"Wrote {len(payload['files'])} files to {arguments.out}")
    return 0
