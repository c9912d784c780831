"""Subprocess used by the cache tests: save a tiny model into a cache folder, optionally slowly.

python -m tests.cache_worker CACHE_DIR [--slow SECONDS] [--ready FILE]
--slow makes model.save pause half-way (after the temporary folder exists), so a test can kill -9 it there.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from fmnist_core.config import TrainConfig  # noqa: E402
from fmnist_core.models.registry import ModelSpec, build_from_spec  # noqa: E402
from fmnist_core.store.cache import ModelCache  # noqa: E402
from tests.records import make_record  # noqa: E402

SPEC = ModelSpec("model1", "Model 1", first_filters=4, block2_filters=4, block3_filters=4, dense_units=8)
CONFIG = TrainConfig(epochs=1, precision="float32")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("cache_dir")
    parser.add_argument("--slow", type=float, default=0.0)
    parser.add_argument("--ready", help="file to create when the save has started")
    arguments = parser.parse_args()
    model = build_from_spec(SPEC, seed=0)
    if arguments.slow:
        original_save = model.save

        def slow_save(path, *args, **kwargs):
            Path(path).write_bytes(b"half-written")
            if arguments.ready:
                Path(arguments.ready).touch()
            time.sleep(arguments.slow)
            return original_save(path, *args, **kwargs)

        model.save = slow_save
    entry = ModelCache(arguments.cache_dir).save(model, make_record(SPEC, CONFIG))
    print(entry.entry_id, entry.ok, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
