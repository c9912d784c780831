"""How fast the "Inside the model" page answers, per cached model, once the model is loaded.

Targets (issue 15): every view within 1 s for a cached Model 3 on the 2-core CPU after the model is loaded, and
the embedding map of 2,000 test images within 3 s (the page caches it, and the redundancy figures, per model).
Each view is timed as the page runs it: the core call, then drawing its picture (explain_render); the median
of --repeats runs on different test images. One-off costs are printed apart: loading the model, and wiring
it for explanation (tracing the compiled functions, once per model).

    python benchmarks/explain_speed.py [--preset full | --entry ID ...] [--images 2000] [--repeats 5]

TensorFlow runs without XLA (jit_compile=False in fmnist_core.explain.network), as in the app.
"""

from __future__ import annotations

import argparse
import statistics
import time

from devtools.cached_entries import add_entry_arguments, cache_and_entries
from fmnist_core.data.loading import load_fashion_mnist
from fmnist_core.explain import inside as explain
from fmnist_core.explain.network import network_of
from fmnist_core.explain.render import filter_grid, maps_grid, saliency_overlay
from fmnist_core.machine import cpu_model, usable_cores

VIEW_TARGET_SECONDS = 1.0
MAP_TARGET_SECONDS = 3.0


def timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    value = call()
    return time.perf_counter() - started, value


def median_seconds(call, repeats: int) -> float:
    return statistics.median(timed(lambda index=index: call(index))[0] for index in range(repeats))


def views(model, images, labels) -> dict[str, object]:
    """View name → a call (of the test image number) doing what the page does for that view."""

    def image_view(index: int) -> None:
        result = explain.explain_image(model, images[index])
        saliency_overlay(images[index], result.saliency)
        for layer in result.maps:
            maps_grid(layer)

    def other_class_view(index: int) -> None:
        saliency_overlay(images[index], explain.saliency(model, images[index], (int(labels[index]) + 1) % 10))

    return {
        "first-layer filters": lambda index: filter_grid(explain.first_layer_filters(model)),
        "image: answer, feature maps, saliency": image_view,
        "saliency for another class": other_class_view,
    }


def print_redundancy(reports: list[explain.FilterReport]) -> None:
    """The figures the redundancy view shows, measured on the way (docs/results/inside.md's redundancy table)."""
    print(
        f"\nFirst-layer filters on {reports[0].probe_images} test images: near-copy = block 1 maps correlated "
        f"≥ {explain.DUPLICATE_CORRELATION}; twin kernel = |cosine| ≥ {explain.DUPLICATE_KERNEL_COSINE}; "
        f"nearly dead = non-zero at < {explain.DEAD_ACTIVITY:.0%} of positions"
    )
    columns = ("filters", "dead", "near-copy", "groups", "effective", "twin kernels", "kernel rank")
    print(f"{'model':8} " + " ".join(f"{name:>{len(name)}}" for name in columns))
    for report in reports:
        print(
            f"{report.title:8} {report.filters:7d} {report.dead:4d} {report.near_duplicates:9d} "
            f"{report.distinct_groups:6d} {report.effective_filters:9.1f} {report.kernel_near_duplicates:12d} "
            f"{report.kernel_effective_rank:11.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_entry_arguments(parser)
    parser.add_argument("--images", type=int, default=2000, help="test images in the embedding map (default 2000)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per view; the median is printed (default 5)")
    arguments = parser.parse_args(argv)
    if arguments.images < 3 or arguments.repeats < 1:
        parser.error("--images must be ≥ 3 and --repeats ≥ 1")
    chosen = cache_and_entries(arguments)
    if chosen is None:
        return 1
    cache, entries = chosen
    (_, _), (images, labels) = load_fashion_mnist()
    print(f"{cpu_model()}, {usable_cores()} cores; median of {arguments.repeats} runs per view; XLA off")
    probes, reports = explain.probe_images(images, labels), []
    print(f"{'model':8} {'view':42} {'seconds':>8}  target")
    for entry in entries:
        load, model = timed(lambda entry=entry: cache.load_model(entry.entry_id))
        wire, _ = timed(lambda model=model: network_of(model))
        title = entry.title
        print(f"{title:8} {'(once) load the model':42} {load:8.2f}")
        print(f"{title:8} {'(once) wire it for explanation':42} {wire:8.2f}")
        for name, call in views(model, images, labels).items():
            seconds = median_seconds(call, arguments.repeats)
            verdict = "ok" if seconds <= VIEW_TARGET_SECONDS else "over"
            print(f"{title:8} {name:42} {seconds:8.3f}  ≤ {VIEW_TARGET_SECONDS:.0f} s {verdict}", flush=True)
        seconds, report = timed(lambda model=model: explain.filter_redundancy(model, probes))
        reports.append(report)
        print(f"{title:8} {'filter redundancy (first time; then cached)':42} {seconds:8.3f}", flush=True)
        seconds, _ = timed(lambda model=model: explain.embedding_map(model, images, labels, arguments.images))
        verdict = "ok" if seconds <= MAP_TARGET_SECONDS else "over"
        label = f"embedding map of {arguments.images:,} images"
        print(f"{title:8} {label:42} {seconds:8.3f}  ≤ {MAP_TARGET_SECONDS:.0f} s {verdict}", flush=True)
    print_redundancy(reports)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
