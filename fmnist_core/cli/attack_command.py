"""`attack`: the smallest change that fools a cached model on one image, or its accuracy under attack."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from fmnist_core.cli.explain_command import add_entry_arguments, chosen_entry, chosen_image
from fmnist_core.cli.output import print_json
from fmnist_core.data.fashion_mnist import CLASS_NAMES
from fmnist_core.errors import ConfigError, ExplainError
from fmnist_core.files import folder_problem

TEST_IMAGES = 10_000  # The test set's size: --images may not ask for more.


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "attack",
        help="fool a cached model: the smallest change of one image, or its accuracy under attack (--robustness)",
        description=(
            "With --image: find the smallest L-infinity change (PGD, searched over epsilon) that changes the model's "
            "answer and write adversarial.npy and PNGs to --out. With --robustness: the model's accuracy on the "
            "first --images test images when each may be changed by up to each of --epsilons."
        ),
    )
    add_entry_arguments(parser)
    parser.add_argument("--image", help="test:N or train:N (a Fashion-MNIST image), or a picture file (PNG, JPEG…)")
    parser.add_argument("--out", type=Path, help="with --image: folder for adversarial.npy and the PNG files")
    parser.add_argument("--robustness", action="store_true", help="measure accuracy under attack instead")
    parser.add_argument(
        "--epsilons",
        default="0,0.004,0.008,0.016,0.031",
        help="with --robustness: comma-separated budgets on the 0-1 pixel scale (default 0,0.004,0.008,0.016,0.031)",
    )
    parser.add_argument("--images", type=int, default=1000, help="with --robustness: the first N test images")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=run)


def epsilon_list(text: str) -> dict[str, float]:
    """The budgets of --epsilons, each as written (the JSON's keys) with its value; checked: numbers from 0 to 1."""
    from fmnist_core.evaluate.attack import check_epsilon

    words = [word.strip() for word in text.split(",") if word.strip()]
    budgets = {}
    for word in words:
        try:
            value = float(word)
        except ValueError:
            value = math.nan
        try:
            budgets[word] = check_epsilon(value)
        except ConfigError:
            raise ConfigError(
                f"--epsilons: {word!r} is not a number from 0 to 1 (the 0-1 pixel scale; 8 grey levels is 0.031)."
            ) from None
    if not budgets or len(set(budgets.values())) != len(words):
        raise ConfigError(f"--epsilons needs one or more distinct numbers separated by commas (got {text!r}).")
    return budgets


def checked_arguments(arguments: argparse.Namespace) -> dict[str, float] | None:
    """The cheap checks, before any model or data is read; the budgets with --robustness, else None."""
    if arguments.robustness:
        if arguments.image or arguments.out:
            raise ConfigError("--robustness measures the first --images test images: leave out --image and --out.")
        if not 1 <= arguments.images <= TEST_IMAGES:
            raise ConfigError(f"--images must be a whole number from 1 to {TEST_IMAGES:,} (got {arguments.images}).")
        return epsilon_list(arguments.epsilons)
    if not arguments.image or not arguments.out:
        raise ConfigError("Name the image to attack and where to write it: --image test:N --out DIR (or --robustness).")
    problem = folder_problem(arguments.out)
    if problem:
        raise ConfigError(f"Cannot write the pictures to --out {arguments.out}: {problem}. Choose another folder.")
    return None


def run(arguments: argparse.Namespace) -> int:
    budgets = checked_arguments(arguments)
    cache, entry = chosen_entry(arguments)
    picture = chosen_image(arguments.image) if budgets is None else None
    from fmnist_core.evaluate.attack import Attacker

    attacker = Attacker(cache.load_model(entry.entry_id))
    if picture is None:
        return robustness(arguments, entry, attacker, budgets)
    return smallest_change(arguments, entry, attacker, *picture)


def robustness(arguments: argparse.Namespace, entry, attacker, budgets: dict[str, float]) -> int:
    from fmnist_core.data.loading import load_fashion_mnist
    from fmnist_core.evaluate.attack import robust_accuracy

    _, (test_images, test_labels) = load_fashion_mnist()
    result = robust_accuracy(
        attacker, test_images[: arguments.images], test_labels[: arguments.images], budgets.values()
    )
    payload = {
        "model": entry.model_name,
        "entry_id": entry.entry_id,
        "images": result.images,
        "attack": f"PGD, {result.steps} steps, L-infinity, no random start",
        "accuracy": {word: result.at(value) for word, value in budgets.items()},
        "seconds": round(result.seconds, 1),
    }
    if arguments.json:
        print_json(payload)
        return 0
    print(f"{entry.entry_id}: accuracy under attack on the first {result.images:,} test images ({payload['attack']})")
    for word, value in budgets.items():
        print(f"  ε = {word:<8} ({value * 255:5.1f} of 255)  {result.at(value):.1%}")
    return 0


def smallest_change(arguments: argparse.Namespace, entry, attacker, image, label, described: str) -> int:
    from fmnist_core.evaluate import attack
    from fmnist_core.evaluate.predict import pixelated
    from fmnist_core.explain.render import save_png

    result = attack.smallest_change(attacker, image, label)
    change, scale = attack.change_picture(result.change)
    pictures = {
        "original.png": pixelated(result.original),
        "change.png": pixelated(change),
        "fooled.png": pixelated(result.adversarial),
    }
    try:
        arguments.out.mkdir(parents=True, exist_ok=True)
        np.save(arguments.out / "adversarial.npy", result.adversarial.astype(np.float32))
        for name, array in pictures.items():
            save_png(array, arguments.out / name)
    except OSError as error:
        raise ExplainError(
            f"Cannot write to {arguments.out}: {error.strerror or error}. Choose another --out folder."
        ) from None
    payload = {
        "model": entry.model_name,
        "entry_id": entry.entry_id,
        "image": arguments.image,
        "label": label,
        "before": result.before[0].class_index,
        "after": result.after[0].class_index,
        "fooled": result.fooled,
        "epsilon": result.epsilon,
        "grey_levels": round(result.epsilon * attack.GREY_LEVELS, 3),
        "top3_before": [{"class": score.name, "probability": round(score.probability, 6)} for score in result.before],
        "top3_after": [{"class": score.name, "probability": round(score.probability, 6)} for score in result.after],
        "change_scale": scale,
        "seconds": round(result.seconds, 3),
        "files": sorted(["adversarial.npy", *pictures]),
    }
    if arguments.json:
        print_json(payload)
        return 0
    truth = f" (true: {CLASS_NAMES[label]})" if label is not None else ""
    if not result.fooled:
        print(f"{entry.entry_id}: {described}{truth}: no change up to 255 grey levels changed the answer.")
    else:
        print(
            f"{entry.entry_id}: {described}{truth}: {result.before[0].name} → {result.after[0].name} with a change of "
            f"{payload['grey_levels']:g} of 255 grey levels (ε = {result.epsilon:.4f})."
        )
    print(f"Wrote {len(payload['files'])} files to {arguments.out}")
    return 0
