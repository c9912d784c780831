"""Measure the shipped models' accuracy under attack and write recorded_robustness/<entry id>.json, one per model.

    .venv/bin/python scripts/record_robustness.py --images 1000                 # Models 1, 2 and 3
    .venv/bin/python scripts/record_robustness.py --images 1000 --models model3 # one model (e.g. one per run)

PGD and FGSM (fmnist_core.evaluate.attack) at ε ∈ {0, 1, 2, 4, 8}/255 on the first N test images, on each model
shipped in cached_models/ exactly as the app loads it (through the model cache, mirror averaging included). Run it
again after `make models`: tests/test_recorded_robustness.py fails by name while a shipped model has no record.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from fmnist_core.data.loading import load_fashion_mnist
from fmnist_core.evaluate.attack import GREY_LEVELS, ROBUSTNESS_LEVELS, Attacker
from fmnist_core.evaluate.robustness import measure, record_of
from fmnist_core.machine import host_info
from fmnist_core.models.registry import MODEL_NAMES
from fmnist_core.paths import RECORDED_ROBUSTNESS_FOLDER, SHIPPED_MODELS_FOLDER
from fmnist_core.store.cache import ModelCache

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="the first N test images (default 1000)")
    parser.add_argument("--models", default=",".join(MODEL_NAMES), help="comma-separated (default: all three)")
    arguments = parser.parse_args()
    names = arguments.models.split(",")
    out = PROJECT_ROOT / RECORDED_ROBUSTNESS_FOLDER
    out.mkdir(exist_ok=True)
    _, (test_images, test_labels) = load_fashion_mnist()
    images, labels = test_images[: arguments.images], test_labels[: arguments.images]
    host = host_info()
    machine = f"{host['cpu_model']}, {host['cpu_cores']} cores"
    command = "python scripts/record_robustness.py " + shlex.join(sys.argv[1:])
    with tempfile.TemporaryDirectory() as empty:
        # Only the shipped models: an empty user cache in front of cached_models/.
        cache = ModelCache(empty, shipped_root=PROJECT_ROOT / SHIPPED_MODELS_FOLDER)
        entries = {entry.model_name: entry for entry in cache.list() if entry.ok}
        for name in names:
            entry = entries[name]
            attacker = Attacker(cache.load_model(entry.entry_id))
            pgd, fgsm = measure(attacker, images, labels, [level / GREY_LEVELS for level in ROBUSTNESS_LEVELS])
            created = datetime.now().astimezone().isoformat(timespec="seconds")
            record = record_of(entry, pgd, fgsm, machine, created, command)
            path = out / f"{entry.entry_id}.json"
            path.write_text(json.dumps(record.to_dict(), indent=1) + "\n", encoding="utf-8")
            print(f"{entry.entry_id}: PGD {pgd.accuracy}, FGSM {fgsm.accuracy}, PGD {pgd.seconds:.0f} s -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
