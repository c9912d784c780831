"""The project's whole `train()` call against a tutorial's whole `model.fit` call, same model, same images.

`bench` times images/s inside fit(); this times what a user waits for: building, compiling and one epoch, from the
call to its return. The project side is `training.loop.train` with `TrainConfig()` in this machine's precision
(`config.for_this_machine`), its validation pass over the 6,000 held-out images included; the plain side builds
the model with Keras' stock layers, compiles with default Adam and runs `model.fit` on float32 NumPy arrays at
batch 32 (the tutorial way, as `bench` does). Interleaved A B A B… so a shared machine's slow phases hit both.

    python benchmarks/whole_call.py [--model model1] [--images 25600] [--repeats 2] [--batch-size N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from fmnist_core.config import TrainConfig, for_this_machine
from fmnist_core.data.loading import load_fashion_mnist
from fmnist_core.machine import import_keras, machine_info
from fmnist_core.models.registry import MODEL_NAMES, build_from_spec, get_spec
from fmnist_core.training.loop import split_indices, train


def project_seconds(model: str, config: TrainConfig, data) -> float:
    started = time.perf_counter()
    train(model, config, data=data)
    return time.perf_counter() - started


def plain_seconds(model: str, images: np.ndarray, labels: np.ndarray) -> float:
    keras = import_keras()
    started = time.perf_counter()
    network = build_from_spec(get_spec(model), seed=0, precision="float32", fused_norm=False)
    network.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    network.fit(images.astype("float32")[..., None] / 255.0, labels, batch_size=32, epochs=1, verbose=0)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="model1", choices=MODEL_NAMES)
    parser.add_argument("--images", type=int, default=25600)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, help="the project's batch size (default TrainConfig()'s)")
    arguments = parser.parse_args()
    config = for_this_machine(TrainConfig(epochs=1, train_limit=arguments.images))
    if arguments.batch_size:
        config = config.replace(batch_size=arguments.batch_size)
    data = load_fashion_mnist()
    (x_train, y_train), _ = data
    # The plain side trains on the very images the project trains on.
    train_index, _ = split_indices(len(x_train), config)
    images, labels = x_train[train_index], y_train[train_index].astype(np.int32)
    info = machine_info(include_gpus=False)
    print(
        f"{info['cpu_model']}, {info['cpu_cores']} cores, TensorFlow {info['versions']['tensorflow']}; "
        f"{arguments.model}, {len(images):,} images, one epoch; project: {config.precision}, batch "
        f"{config.batch_size}; plain: float32, batch 32"
    )
    plain_seconds(arguments.model, images[:320], labels[:320])  # Warms TensorFlow up for both sides alike.
    runs: dict[str, list[float]] = {"project": [], "plain": []}
    for repeat in range(arguments.repeats):
        runs["project"].append(project_seconds(arguments.model, config, data))
        runs["plain"].append(plain_seconds(arguments.model, images, labels))
        print(f"run {repeat + 1}: project {runs['project'][-1]:.1f} s, plain {runs['plain'][-1]:.1f} s", flush=True)
    project, plain = statistics.median(runs["project"]), statistics.median(runs["plain"])
    print(f"median: project {project:.1f} s, plain {plain:.1f} s: the project is {plain / project:.2f}x as fast")


if __name__ == "__main__":
    main()
