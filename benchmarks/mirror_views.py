"""How much averaging over views of each picture helps the trained models, judged on the validation images.

For each model with a cached `full`-preset entry, it scores the trained network (the backbone inside the
saved, mirror-averaged model) three ways, on the 6,000 held-out validation images (the ones used to choose)
and on the 10,000 test images (reported, not used to choose):
  1 view   the picture alone;
  2 views  the picture and its mirror image (what the saved models do);
  10 views the picture and its mirror, each also shifted one pixel up, down, left and right.
It prints accuracy and the inference time of the whole test set per rule.

    python benchmarks/mirror_views.py [--preset full]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from fmnist_core.config import PRESETS, get_preset
from fmnist_core.data.loading import load_fashion_mnist
from fmnist_core.evaluate.evaluation import predict_probabilities
from fmnist_core.models.mirror import backbone_of
from fmnist_core.models.registry import MODEL_NAMES, get_spec
from fmnist_core.store.cache import ModelCache
from fmnist_core.training.loop import split_indices


def shifted(images: np.ndarray, down: int, right: int) -> np.ndarray:
    """uint8 (N, 28, 28) moved by (down, right) pixels, ≤ 1 each, filling with black."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    return padded[:, 1 - down : 29 - down, 1 - right : 29 - right].copy()


def views(images: np.ndarray, count: int) -> list[np.ndarray]:
    pictures = (
        [images] if count < 10 else [images] + [shifted(images, *move) for move in ((1, 0), (-1, 0), (0, 1), (0, -1))]
    )
    if count == 1:
        return pictures
    return [view for picture in pictures for view in (picture, picture[:, :, ::-1].copy())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="full", choices=list(PRESETS))
    args = parser.parse_args(argv)
    config = get_preset(args.preset)
    cache = ModelCache()
    # The preset's model as `train` trained it here: in the preset's precision, else in this machine's.
    entries = {name: cache.lookup_either_precision(get_spec(name), config) for name in MODEL_NAMES}
    entries = {name: entry for name, entry in entries.items() if entry is not None and entry.ok}
    if not entries:
        print(
            f"No cached {args.preset!r} models: train one first, e.g. "
            f"python -m fmnist_core train --model model1 --preset {args.preset}",
            file=sys.stderr,
        )
        return 1
    (train_images, train_labels), (test_images, test_labels) = load_fashion_mnist()
    _, validation = split_indices(len(train_images), config)
    sets = {"validation": (train_images[validation], train_labels[validation]), "test": (test_images, test_labels)}
    print(f"{'model':8} {'views':>5} {'validation':>10} {'test':>8} {'test-set inference':>19}")
    for name, entry in entries.items():
        network = backbone_of(cache.load_model(entry.entry_id))
        for count in (1, 2, 10):
            scores, seconds = {}, 0.0
            for label, (images, labels) in sets.items():
                start = time.perf_counter()
                probabilities = sum(predict_probabilities(network, view) for view in views(images, count))
                if label == "test":
                    seconds = time.perf_counter() - start
                scores[label] = float((probabilities.argmax(axis=1) == labels).mean())
            print(
                f"{name:8} {count:5d} {scores['validation']:10.2%} {scores['test']:8.2%} {seconds:17.2f} s", flush=True
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
