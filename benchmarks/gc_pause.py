"""How long one full garbage collection takes in a process like the app's server (why `.streamlit/config.toml`
turns off Streamlit's collection after every script run).

Imports what the server's pages import, loads the cached models the Predict page uses, then times
`gc.collect(2)` (what Streamlit's `runner.postScriptGC` runs after every script and fragment run) a few times.

    .venv/bin/python benchmarks/gc_pause.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

# Lets the script run as a plain file from any folder, without installing the package.
from fmnist_core.machine import import_tensorflow
from fmnist_core.store.cache import ModelCache, best_entries


def collection_seconds(repeats: int) -> list[float]:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        gc.collect(2)
        timings.append(time.perf_counter() - started)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="collections to time (default 5)")
    arguments = parser.parse_args()
    if arguments.repeats < 1:
        parser.error("--repeats takes a whole number ≥ 1")
    import_tensorflow()
    import altair  # noqa: F401  The pages' charts, tables and metrics: their modules are part of the heap too.
    import pandas  # noqa: F401
    import sklearn.metrics  # noqa: F401
    import streamlit  # noqa: F401

    imports_only = collection_seconds(arguments.repeats)
    cache = ModelCache()
    models = [cache.load_model(entry.entry_id) for entry in best_entries(cache.list()).values() if entry is not None]
    with_models = collection_seconds(arguments.repeats)
    print(f"objects tracked by the collector: {len(gc.get_objects()):,}; models loaded: {len(models)}")
    print(
        f"gc.collect(2), median of {arguments.repeats}: {statistics.median(imports_only):.3f} s after the imports, "
        f"{statistics.median(with_models):.3f} s with the models loaded (worst {max(with_models):.3f} s)"
    )


if __name__ == "__main__":
    main()
