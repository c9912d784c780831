"""Does destroying a tf.data iterator stall training? Times repeated one-epoch fit() calls of Model 1 on 12,800 images.

For each fit it prints the total time and the time between the last batch and fit() returning. With tf.data's
autotuner on, that tail was 9–10 s here (fits lasting exactly 10.23 s or 20.48 s: the autotuner's wake-up times);
the project's pipeline (`make_dataset`, autotuner off) should show a tail of ~0.01 s.

    .venv/bin/python benchmarks/tf_data_stall.py [--fits 4] [--autotune]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

# Lets the script run as a plain file from any folder, without installing the package.
from fmnist_core.config import PRESETS, for_this_machine
from fmnist_core.data.loading import load_fashion_mnist
from fmnist_core.machine import import_tensorflow
from fmnist_core.models.registry import build_from_spec, get_spec
from fmnist_core.training.bench import last_batch_clock
from fmnist_core.training.loop import compile_model, make_dataset

IMAGES = 12_800


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=4, help="timed fit() calls after one warm-up fit")
    parser.add_argument("--autotune", action="store_true", help="switch tf.data's autotuner back on (the old way)")
    arguments = parser.parse_args()
    tf = import_tensorflow()

    (x, y), _ = load_fashion_mnist()
    x, y = x[:IMAGES], y[:IMAGES].astype(np.int32)
    config = for_this_machine(PRESETS["quick"])
    model = build_from_spec(get_spec("model1"), seed=config.seed, precision=config.precision)
    compile_model(model, config, IMAGES // config.batch_size)

    print(f"tf.data autotuner {'on' if arguments.autotune else 'off (project default)'}; Model 1, {IMAGES:,} images")
    for fit in range(arguments.fits + 1):
        dataset = make_dataset(x, y, config.batch_size, shuffle_seed=config.seed)
        if arguments.autotune:
            options = tf.data.Options()
            options.autotune.enabled = True
            dataset = dataset.with_options(options)
        last = last_batch_clock()
        started = time.perf_counter()
        model.fit(dataset, epochs=1, verbose=0, shuffle=False, callbacks=[last])
        ended = time.perf_counter()
        label = "warm-up" if fit == 0 else f"fit {fit}"
        print(
            f"{label:>8}: {ended - started:6.2f} s in fit(), {IMAGES / (ended - started):6,.0f} img/s, "
            f"{ended - last.at:5.2f} s after the last batch"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
