"""How long the Predict page takes to answer: model load, then warm single-image latency, per cached model.

Trains nothing: it measures the most accurate cached entry of each model (the ones the page uses), through
the page's own path, `prepare_image` on a PNG sketch and then one model call.

    .venv/bin/python benchmarks/predict_latency.py [--repeats 100] [--drawing]

--drawing also times one update of the Draw tab as the server computes it after each stroke, for all the models at
once: the canvas's RGBA pixels prepared (`prepare_sketch`), the two pictures it shows, and every model's answer
(`classify`, which the page calls). docs/results/drawing-latency.md holds the figures.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from fmnist_core.errors import FmnistError
from fmnist_core.evaluate.evaluation import predict_one
from fmnist_core.evaluate.predict import classify, outline_crop, pixelated
from fmnist_core.evaluate.sketch import prepare_image, prepare_sketch
from fmnist_core.machine import cpu_model, import_tensorflow, usable_cores
from fmnist_core.store.cache import CacheEntry, ModelCache, best_entries

REPEATS = 100  # Enough for a stable median; a single call is a few milliseconds.
CANVAS_SIZE = 280  # The page's drawing canvas, so the preparation step does the work it does there.
TRAIN_HINT = "  .venv/bin/python -m fmnist_core train --model model1 --preset quick"


@dataclass(frozen=True)
class Latency:
    """Timings of one cached model, in seconds; the per-image ones are medians over the repeats."""

    title: str  # "Model 1".
    entry_id: str  # The cache entry measured.
    load_seconds: float  # ModelCache.load_model: checksum check plus Keras deserialisation.
    prepare_seconds: float  # prepare_image on the PNG: decode, invert, crop, resize.
    model_seconds: float  # One warm model call on the prepared 28 × 28 image.
    total_seconds: float  # Both, measured together, as one prediction on the page costs.


def sketch_png() -> bytes:
    """A dark-on-white trouser drawn on a canvas-sized picture, like a drawing on the page."""
    picture = Image.new("RGB", (CANVAS_SIZE, CANVAS_SIZE), "white")
    ImageDraw.Draw(picture).line(
        [(110, 40), (90, 240), (140, 240), (140, 90), (150, 240), (200, 240), (175, 40), (110, 40)],
        fill="black",
        width=18,
    )
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


def measure(cache: ModelCache, entry: CacheEntry, png: bytes, repeats: int) -> Latency:
    """Load the entry's model once, warm it up, then time `repeats` predictions of the PNG."""
    started = time.perf_counter()
    model = cache.load_model(entry.entry_id)
    load_seconds = time.perf_counter() - started
    predict_one(model, prepare_image(png))
    prepare, model_call, total = [], [], []
    for _ in range(repeats):
        started = time.perf_counter()
        image = prepare_image(png)
        prepared = time.perf_counter()
        _, seconds = predict_one(model, image)
        total.append(time.perf_counter() - started)
        prepare.append(prepared - started)
        model_call.append(seconds)
    return Latency(
        entry.title,
        entry.entry_id,
        load_seconds,
        float(np.median(prepare)),
        float(np.median(model_call)),
        float(np.median(total)),
    )


def sketch_pixels() -> np.ndarray:
    """The same sketch as the canvas hands it to the page: RGBA pixels, canvas-sized."""
    return np.asarray(Image.open(io.BytesIO(sketch_png())).convert("RGBA"))


def drawing_update_seconds(models: dict[str, object], pixels: np.ndarray, repeats: int) -> float:
    """Median server time of one Draw-tab update: what pages/predict.py's show_picture_prediction computes."""
    times = []
    for _ in range(repeats + 1):  # The first round traces each model's function: not an update's cost.
        started = time.perf_counter()
        sketch = prepare_sketch(pixels)
        outline_crop(sketch), pixelated(sketch.image)
        classify(sketch.image, models)
        times.append(time.perf_counter() - started)
    return float(np.median(times[1:]))


def format_table(results: list[Latency], repeats: int) -> str:
    """A plain-text table, one row per model, times in milliseconds except the load."""
    header = f"{'Model':<10} {'Cache entry':<22} {'Load s':>7} {'Prepare ms':>11} {'Model ms':>9} {'Total ms':>9}"
    rows = [
        f"{r.title:<10} {r.entry_id:<22} {r.load_seconds:>7.2f} {r.prepare_seconds * 1e3:>11.2f} "
        f"{r.model_seconds * 1e3:>9.2f} {r.total_seconds * 1e3:>9.2f}"
        for r in results
    ]
    machine = f"{cpu_model()}, {usable_cores()} cores"
    return "\n".join([f"Warm single-image prediction, median of {repeats} ({machine})", header, *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drawing", action="store_true", help="also time one Draw-tab update of all the models")
    parser.add_argument("--repeats", type=int, default=REPEATS, help=f"predictions per model (default {REPEATS})")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    try:
        cache = ModelCache()
        entries = [entry for entry in best_entries(cache.list()).values() if entry is not None]
        if not entries:
            print(f"No trained model in {cache.root}. Train one first, for example:\n{TRAIN_HINT}", file=sys.stderr)
            return 1
        # Importing TensorFlow first keeps its few seconds of start-up out of the model-load time.
        import_tensorflow()
        png = sketch_png()
        print(format_table([measure(cache, entry, png, args.repeats) for entry in entries], args.repeats))
        if args.drawing:
            models = {entry.title: cache.load_model(entry.entry_id) for entry in entries}
            seconds = drawing_update_seconds(models, sketch_pixels(), args.repeats)
            print(
                f"One Draw-tab update, {', '.join(models)} together: {seconds * 1e3:.1f} ms (median of {args.repeats})"
            )
    except FmnistError as error:
        print(error, file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
