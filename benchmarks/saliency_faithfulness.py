"""Which saliency method is faithful? The deletion test on a few hundred test images, per cached model.

For each image the network's predicted class is explained by integrated gradients, gradient × input and
Grad-CAM; then the pixels each method ranks highest are hidden (set to black), a growing share at a time, and
the network's confidence in that class is measured (fmnist_core.explain.faithfulness). A faithful map makes the
confidence fall fast: a low area under the deletion curve, and on most images a bigger fall than hiding as many
random pixels (or random pixels of the garment, the harder bar). The printed table is docs/results/inside.md's.

    python benchmarks/saliency_faithfulness.py [--preset full | --entry ID ...] [--images 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

from devtools.cached_entries import add_entry_arguments, cache_and_entries
from fmnist_core.data.explore import stratified_sample
from fmnist_core.data.fashion_mnist import NUM_CLASSES
from fmnist_core.data.loading import load_fashion_mnist
from fmnist_core.explain.faithfulness import DELETION_FRACTIONS, HEADLINE_FRACTION, deletion_test

SHOWN_FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.5)  # Columns of the printed curve (0 %: nothing hidden yet).


def share(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_entry_arguments(parser)
    parser.add_argument("--images", type=int, default=300, help="test images, as many per class (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the sample and the random baselines")
    parser.add_argument("--repeats", type=int, default=3, help="random draws per image for the baselines")
    arguments = parser.parse_args(argv)
    if arguments.images < 1 or arguments.repeats < 1:
        parser.error("--images and --repeats must be ≥ 1")
    chosen = cache_and_entries(arguments)
    if chosen is None:
        return 1
    cache, entries = chosen
    (_, _), (images, labels) = load_fashion_mnist()
    sample = images[stratified_sample(labels, range(NUM_CLASSES), arguments.images, seed=arguments.seed)]
    curve = "  ".join(f"{fraction:>5.0%}" for fraction in SHOWN_FRACTIONS)
    print(
        f"Deletion test on {len(sample)} test images (seed {arguments.seed}): mean confidence in the predicted class "
        f"after hiding the top share of pixels; 'beats' = share of images where hiding the top "
        f"{HEADLINE_FRACTION:.0%} hurt more than hiding as many random (garment) pixels; 'top on black' = share of "
        "those top pixels that were black background already."
    )
    print(
        f"{'model':8} {'ranking':24} {'area':>6} {'beats random':>12} {'beats garment':>13} {'top on black':>12}  "
        f"{curve}"
    )
    for entry in entries:
        model = cache.load_model(entry.entry_id)
        started = time.perf_counter()
        results = deletion_test(model, sample, random_repeats=arguments.repeats, seed=arguments.seed)
        for result in results:
            points = "  ".join(
                f"{result.mean_confidence[DELETION_FRACTIONS.index(fraction)]:5.3f}" for fraction in SHOWN_FRACTIONS
            )
            print(
                f"{entry.title:8} {result.method:24} {result.area:6.3f} {share(result.beats_random):>12} "
                f"{share(result.beats_random_garment):>13} {share(result.background_share):>12}  {points}"
            )
        print(f"{entry.title:8} ({entry.entry_id}, {time.perf_counter() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
