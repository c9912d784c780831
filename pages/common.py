"""Shared plumbing for the pages: cached loaders, the job manager, and friendly error display.

Pages import this module, never TensorFlow directly; anything that needs TensorFlow is imported inside
the function that needs it so the home page paints without it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from fmnist_core.cache import CacheEntry, ModelCache, cache_root
from fmnist_core.errors import CacheError, DataError, FmnistError
from fmnist_core.jobs import JobManager


@st.cache_resource(show_spinner=False)
def _job_manager(root: str) -> JobManager:
    return JobManager(marker_dir=Path(root) / ".jobs")


def job_manager() -> JobManager:
    """The one job manager every session shares (one heavy job at a time on a small machine)."""
    return _job_manager(str(cache_root()))


def model_cache() -> ModelCache | None:
    """The model cache, or None after showing why it cannot be used."""
    try:
        return ModelCache()
    except CacheError as error:
        st.error(str(error), icon="🗄️")
        return None


def cache_entries() -> list[CacheEntry]:
    """All cache entries (damaged ones included), newest first; [] with a message if the cache is unusable."""
    cache = model_cache()
    return cache.list() if cache is not None else []


@st.cache_data(show_spinner="Loading Fashion-MNIST…", max_entries=1)
def _dataset(cache_dir: str) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    from fmnist_core.data import load_fashion_mnist

    return load_fashion_mnist()


def dataset_or_stop():
    """((x_train, y_train), (x_test, y_test)); when the data is missing, explain how to get it and stop."""
    try:
        return _dataset(str(cache_root()))
    except DataError as error:
        st.error("**Fashion-MNIST is not available on this machine.**", icon="📦")
        st.code(str(error), language=None)
        st.stop()


@st.cache_resource(show_spinner="Loading model…", max_entries=8)
def _model(entry_id: str, model_sha256: str, root: str):
    # The checksum is part of the cache key: a re-trained entry with the same id is loaded afresh.
    return ModelCache(root).load_model(entry_id)


def load_model(entry: CacheEntry):
    """The Keras model of a verified cache entry, or None after showing why it cannot be loaded."""
    try:
        return _model(entry.entry_id, entry.meta.get("model_sha256", ""), str(entry.path.parent))
    except CacheError as error:
        st.error(str(error), icon="🗄️")
        return None


def show_error(error: FmnistError) -> None:
    """A user-caused problem as a message, never a traceback."""
    st.error(str(error), icon="⚠️")


def format_seconds(seconds: float | None) -> str:
    """'1 min 05 s' / '12.3 s' / '—'."""
    if seconds is None:
        return "—"
    if seconds >= 60:
        minutes, rest = divmod(int(round(seconds)), 60)
        return f"{minutes} min {rest:02d} s"
    return f"{seconds:.1f} s"
