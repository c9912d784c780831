"""Shared plumbing for the pages: cached loaders, the job manager, and friendly error display.

Pages import this module, never TensorFlow directly; anything that needs TensorFlow is imported inside
the function that needs it so the home page paints without it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from fmnist_core.display import format_duration
from fmnist_core.engine.cluster import SharedEngine
from fmnist_core.engine.remote import DaskTrainer
from fmnist_core.engine.speed import SpeedProbe
from fmnist_core.errors import CacheError, ConfigError, DataError, FmnistError
from fmnist_core.jobs.classroom import ClassroomSettings, load_settings, may_delete_in_app
from fmnist_core.jobs.queue import JobManager, JobStatus
from fmnist_core.paths import cache_root
from fmnist_core.store.cache import CacheEntry, ModelCache

if TYPE_CHECKING:
    import pandas as pd

    from fmnist_core.race.file import RaceResult

TAB_PARAMETER, DRAW_TAB = "tab", "draw"  # ?tab=draw: Predict opens on its Draw tab (the Home page's sketch link).
CURVE_PANEL_WIDTH = 320  # Pixels per learning-curve panel: two panels and the legend fit the wide layout.
LAST_SKETCH = "last_sketch"  # Session key: the 28×28 picture Predict prepared last, for Inside the model.
# How the race summary's columns are shown (their labels come from fmnist_core.race.summary).
RACE_COLUMN_FORMATS = {
    "seconds": "%.2f s",
    "min_seconds": "%.2f s",
    "max_seconds": "%.2f s",
    "images_per_second": "%,.0f",
    "speedup": "%.2f×",
}


def _leave_legacy_pages_mode() -> None:
    """Make a page opened by its URL on a fresh server run under the router, not Streamlit's old MPA mode.

    Streamlit decides once per process whether an app "uses the pages/ directory" (the pre-`st.navigation`
    multipage style): until `st.navigation` has run once, a fresh server that is first asked for /train
    runs pages/train.py on its own, with an automatic sidebar listing every file in pages/ (common.py too).
    The folder name is fixed by the product, so the page clears that flag and reruns, which runs the router.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # A future Streamlit without the legacy mode needs nothing here.
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        st.rerun()


_leave_legacy_pages_mode()


def classroom_settings() -> ClassroomSettings:
    """.streamlit/classroom.toml with its FMNIST_* overrides (a small file, read each run); invalid: say why, stop."""
    try:
        return load_settings()
    except ConfigError as error:
        st.error(str(error), icon="⚙️")
        st.stop()


@st.cache_resource(show_spinner=False)
def _job_manager(root: str) -> JobManager:
    # The workers and the queue's length are fixed when the server's manager is made: one queue per server.
    settings = classroom_settings()
    return JobManager(
        marker_dir=Path(root) / ".jobs", workers=settings.training_workers, queue_limit=settings.queue_limit
    )


@st.cache_resource(show_spinner=False)
def _engine(scheduler: str) -> tuple[DaskTrainer, SpeedProbe]:
    # One per server and scheduler address; its local worker process starts only when first needed.
    engine = SharedEngine(scheduler)
    return DaskTrainer(engine), SpeedProbe(engine)


def training_engine() -> DaskTrainer:
    """What runs every training the app starts: a Dask task, on the local worker or the cluster the settings name."""
    return _engine(classroom_settings().scheduler)[0]


def speed_probe() -> SpeedProbe:
    """Measures a model's training speed on the same engine, for the expected time on a fresh machine."""
    return _engine(classroom_settings().scheduler)[1]


def cache_root_or_stop() -> Path:
    """The model cache folder; when it is unusable (FMNIST_CACHE_DIR names a file), say why and stop the page."""
    try:
        return cache_root()
    except CacheError as error:
        st.error(str(error), icon="🗄️")
        st.stop()


def job_manager() -> JobManager:
    """The one job manager every session shares: its queue, and the training workers the settings allow."""
    return _job_manager(str(cache_root_or_stop()))


def model_cache() -> ModelCache:
    """The model cache; when its folder cannot be used, say why once and stop the page (every page needs it)."""
    return ModelCache(cache_root_or_stop())


def cache_entries() -> list[CacheEntry]:
    """All cache entries (damaged ones included), newest first."""
    return model_cache().list()


@st.cache_resource(show_spinner="Loading Fashion-MNIST…", max_entries=1)
def _dataset(cache_dir: str) -> tuple[tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]], str | None]:
    # A resource, not cache_data: cache_data would hand every rerun its own 55 MB copy. The arrays are
    # made read-only so no page can change what every session shares.
    from fmnist_core.data.loading import last_load_report, load_fashion_mnist

    arrays = load_fashion_mnist()
    for pair in arrays:
        for array in pair:
            array.flags.writeable = False
    return arrays, last_load_report().note


def dataset_or_stop():
    """((x_train, y_train), (x_test, y_test)); when the data is missing, explain how to get it and stop.

    A note from the load (a damaged array cache rebuilt) is shown once per session, as a toast.
    """
    try:
        arrays, note = _dataset(str(cache_root_or_stop()))
    except DataError as error:
        st.error("**Fashion-MNIST is not available on this machine.**", icon="📦")
        st.code(str(error), language=None)
        st.stop()
    if note and not st.session_state.get("data_note_shown"):
        st.session_state["data_note_shown"] = True
        st.toast(note, icon="🛠️")
    return arrays


@st.cache_resource(show_spinner="Loading model…", max_entries=8)
def _model(entry_id: str, model_sha256: str, root: str):
    # The checksum is part of the cache key: a re-trained entry with the same id is loaded afresh.
    return ModelCache(root).load_model(entry_id)


def load_model(entry: CacheEntry):
    """The Keras model of a verified cache entry, or None after showing why it cannot be loaded."""
    try:
        return _model(entry.entry_id, entry.record.model_sha256, str(entry.path.parent))
    except CacheError as error:
        st.error(str(error), icon="🗄️")
        return None


def lazy_tabs(labels: list[str], key: str, default: str | None = None):
    """`st.tabs` that say which tab is open (`tab.open`), so a page can leave out what a closed tab would show;
    opening another tab reruns the page. With Streamlit's plain tabs every tab's content runs on the server and is
    drawn by the browser on every run: each visitor of the Dataset page paid for three charts, the mean images and
    the map whether they opened them or not (benchmarks/classroom_load.py, docs/decisions/streamlit-workarounds.md)."""
    return st.tabs(labels, key=key, on_change="rerun", default=default)


def keep_widget_values(defaults: dict[str, object]) -> None:
    """Keep the values of widgets that a closed tab does not draw, so a student finds their choices when they come
    back: Streamlit forgets a widget's value on a run that does not draw it, but keeps a value stored through
    `st.session_state`. Called at the top of the page; the widgets then take their value from their key alone."""
    for key, default in defaults.items():
        st.session_state[key] = st.session_state.get(key, default)


def plain_text(text: str, limit: int = 80) -> str:
    """Text a user chose (a file name) made safe to put inside Markdown: shown as typed, never as a link, emphasis,
    colour or formula. Every ASCII punctuation mark is backslash-escaped (CommonMark lets any be), line breaks and
    other control characters become spaces, and long text is cut to `limit` characters."""
    flat = "".join(" " if not character.isprintable() else character for character in text)
    cut = flat if len(flat) <= limit else flat[: limit - 1] + "…"
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", cut)


def show_error(error: FmnistError) -> None:
    """A user-caused problem as a message, never a traceback."""
    st.error(str(error), icon="⚠️")


def show_job_progress(status: JobStatus) -> None:
    """A running job in two lines: a progress bar with its message, then elapsed and remaining time."""
    st.progress(status.fraction, text=f"**{status.title}** — {status.message}")
    st.caption(f"Elapsed {format_duration(status.elapsed)} · about {format_duration(status.remaining_seconds)} left")


def history_table(history: dict | list | None) -> pd.DataFrame:
    """Training curves as tidy rows (epoch, metric, split, value).

    history: a cache entry's {"loss": [...], "val_loss": [...], ...} or a live job's list of per-epoch dicts.
    """
    import pandas as pd  # Imported here, like Altair below: the home page paints without either.

    if isinstance(history, dict):
        epochs = len(history.get("loss", []))
        history = [
            {"epoch": epoch + 1, **{key: values[epoch] for key, values in history.items() if epoch < len(values)}}
            for epoch in range(epochs)
        ]
    rows = [
        {"epoch": record["epoch"], "metric": metric, "split": split, "value": record[key]}
        for record in history or []
        for metric in ("loss", "accuracy")
        for split, key in (("train", metric), ("validation", f"val_{metric}"))
        if key in record
    ]
    return pd.DataFrame(rows, columns=["epoch", "metric", "split", "value"])


def learning_curves_chart(history: dict | list | None):
    """Loss and accuracy per epoch, train vs validation: one Altair chart of two panels side by side."""
    import altair as alt

    return _loss_and_accuracy_panels(
        history_table(history),
        alt.X("epoch:O", title="Epoch", axis=alt.Axis(labelAngle=0)),
        ["train", "validation"],
        ["epoch:O", "split:N", alt.Tooltip("value:Q", title="value", format=".4f")],
    )


def live_curves_chart(points: list[dict], checks: list[dict], epochs: int):
    """A running training's curves as they grow: smoothed training loss and accuracy every ~1 % of the run, and the
    accuracy on the fixed validation slice every ~10 % (fmnist_core.training.live_curves), against epochs done."""
    import altair as alt
    import pandas as pd

    rows = [
        {"epochs": point["fraction"] * epochs, "metric": metric, "split": "train (smoothed)", "value": point[metric]}
        for point in points
        for metric in ("loss", "accuracy")
    ]
    rows += [
        {"epochs": check["fraction"] * epochs, "metric": "accuracy", "split": "validation slice", "value": value}
        for check in checks
        if (value := check["slice_accuracy"]) is not None
    ]
    return _loss_and_accuracy_panels(
        pd.DataFrame(rows, columns=["epochs", "metric", "split", "value"]),
        alt.X("epochs:Q", title="Epochs done", scale=alt.Scale(domain=[0, epochs])),
        ["train (smoothed)", "validation slice"],
        [alt.Tooltip("epochs:Q", format=".2f"), "split:N", alt.Tooltip("value:Q", format=".4f")],
    )


def _loss_and_accuracy_panels(table, x, splits: list[str], tooltip: list):
    """Two panels side by side, loss and accuracy, one line per split (`table`: metric, split, value and x)."""
    import altair as alt

    base = (
        alt.Chart(table)
        .mark_line(point=True)
        .encode(
            x=x,
            color=alt.Color(
                "split:N",
                title=None,
                legend=alt.Legend(orient="bottom"),
                scale=alt.Scale(domain=splits, range=["#1f77b4", "#ff7f0e"]),
            ),
            tooltip=tooltip,
        )
        .properties(width=CURVE_PANEL_WIDTH, height=220)
    )
    panels = [
        base.transform_filter(alt.datum.metric == metric)
        .encode(y=alt.Y("value:Q", title=title, axis=axis, scale=alt.Scale(zero=False)))
        .properties(title=title)
        for metric, title, axis in (("loss", "Loss", alt.Axis()), ("accuracy", "Accuracy", alt.Axis(format="%")))
    ]
    return alt.hconcat(*panels)


def link_to_page(page: str, label: str, icon: str | None = None, query_params: dict | None = None) -> None:
    """`st.page_link`, or a plain hint when the page is not registered (a page run on its own, as in tests).

    query_params: what the page should open on (e.g. {"entry": ...} for Evaluate), read from st.query_params there.
    """
    from streamlit.errors import StreamlitAPIException

    try:
        st.page_link(page, label=label, icon=icon, query_params=query_params)
    except StreamlitAPIException:
        st.caption(f"Open **{label}** from the navigation menu.")


def usable_entries_or_stop() -> dict[str, CacheEntry]:
    """The usable cache entries by id, after listing the damaged ones; without any, how to get one, then stop."""
    entries = cache_entries()
    damaged_entries(entries)
    usable = {entry.entry_id: entry for entry in entries if entry.ok}
    if not usable:
        st.info("No trained model yet. Train one first — Model 1 on the quick preset is the shortest run.", icon="ℹ️")
        link_to_page("pages/train.py", label="Train", icon="🏋️")
        st.stop()
    return usable


def damaged_entries(entries: list[CacheEntry]) -> None:
    """Each damaged cache entry with its problem and a Delete button (a damaged entry is never loaded).

    A shipped one, which the app never deletes, comes with how to restore it; in classroom mode nothing is deleted
    from the app, so the message names the command the teacher runs instead.
    """
    deletable = may_delete_in_app(classroom_settings())
    for entry in entries:
        if entry.ok:
            continue
        problem = f"**{entry.entry_id}** is damaged ({entry.problem}); it is never loaded."
        if entry.shipped:
            st.warning(f"{problem} {entry.repair}", icon="🩹")
            continue
        if not deletable:
            st.warning(
                f"{problem} Classroom mode: only the teacher deletes models, with "
                f"`python -m fmnist_core cache delete {entry.entry_id}`.",
                icon="🩹",
            )
            continue
        message, action = st.columns([4, 1], vertical_alignment="center")
        message.warning(problem, icon="🩹")
        if action.button("Delete", key=f"delete-{entry.entry_id}", help="Remove the damaged folder from the cache"):
            try:
                ModelCache().delete(entry.entry_id)
            except CacheError as error:
                show_error(error)
                continue
            st.rerun()


def race_summary(result: RaceResult) -> None:
    """A race's summary table (the same one the Compare page and the report show), with what every lane ran."""
    from fmnist_core.race.summary import SUMMARY_COLUMNS, lanes_not_run, summary_table, workload_sentence

    st.caption(workload_sentence(result))
    st.dataframe(
        summary_table(result),
        hide_index=True,
        width="stretch",
        column_config={
            column: (
                st.column_config.NumberColumn(label, format=RACE_COLUMN_FORMATS[column])
                if column in RACE_COLUMN_FORMATS
                else st.column_config.TextColumn(label)
            )
            for column, label in SUMMARY_COLUMNS.items()
        },
    )
    for line in lanes_not_run(result):
        st.caption(f"{line}.")
