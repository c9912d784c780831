"""How long the attacks take on this machine: the smallest-change search for one image (per model) and accuracy
under attack at five ε on the first N test images (targets: ≤ 2 s and ≤ 3 min for 1,000 images).

    .venv/bin/python benchmarks/attack_speed.py                         # the shipped models, 1,000 images, Model 1
    .venv/bin/python benchmarks/attack_speed.py --images 200 --robustness-models model1,model3
    .venv/bin/python benchmarks/attack_speed.py --steps 20 --images 200 # what twice the steps would add

Run it alone (`flock -x /work/cpu.lock` on the shared machine): it prints seconds, nothing is timed in the tests.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from fmnist_core.data.loading import load_fashion_mnist
from fmnist_core.evaluate import attack
from fmnist_core.machine import host_info
from fmnist_core.paths import SHIPPED_MODELS_FOLDER
from fmnist_core.store.cache import ModelCache

PROJECT_ROOT = Path(__file__).resolve().parent.parent

SEARCH_IMAGES = 5  # Test images 0..4 for the smallest-change search; the median is reported.


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="test images for the robustness timing")
    parser.add_argument("--robustness-models", default="model1", help="comma-separated models to time robustness on")
    parser.add_argument("--steps", type=int, default=attack.STEPS, help=f"PGD steps (default {attack.STEPS})")
    arguments = parser.parse_args()
    _, (images, labels) = load_fashion_mnist()
    host = host_info()
    print(f"{host['cpu_model']}, {host['cpu_cores']} cores; PGD {arguments.steps} steps")
    epsilons = [level / attack.GREY_LEVELS for level in attack.ROBUSTNESS_LEVELS]
    with tempfile.TemporaryDirectory() as empty:
        cache = ModelCache(empty, shipped_root=PROJECT_ROOT / SHIPPED_MODELS_FOLDER)
        for entry in sorted((entry for entry in cache.list() if entry.ok), key=lambda entry: entry.entry_id):
            attacker = attack.Attacker(cache.load_model(entry.entry_id))
            attack.smallest_change(
                attacker, images[0], int(labels[0]), arguments.steps
            )  # Traces the compiled gradient.
            results = [
                attack.smallest_change(attacker, images[index], int(labels[index]), arguments.steps)
                for index in range(SEARCH_IMAGES)
            ]
            seconds = [result.seconds for result in results]
            levels = [result.budget_levels for result in results]
            print(
                f"{entry.title}: smallest change, median {statistics.median(seconds):.2f} s "
                f"(min {min(seconds):.2f}, max {max(seconds):.2f}) over test images 0-{SEARCH_IMAGES - 1}; "
                f"budgets {levels} grey levels"
            )
            if entry.model_name in arguments.robustness_models.split(","):
                n = arguments.images
                result = attack.robust_accuracy(attacker, images[:n], labels[:n], epsilons, arguments.steps)
                accuracy = ", ".join(
                    f"{level}/255 {value:.1%}"
                    for level, value in zip(attack.ROBUSTNESS_LEVELS, result.accuracy, strict=True)
                )
                print(f"{entry.title}: robustness on {n:,} images at five ε in {result.seconds:.0f} s ({accuracy})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
