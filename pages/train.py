"""Train: pick a model and settings, ask for a training, watch its progress and curves live when its turn comes.

Training runs as a task on the Dask engine (fmnist_core/engine), in a worker process, not in the web server:
clicking widgets, opening other pages or reloading never stops it, and coming back shows it still running.
Requests from every visitor wait in one queue; each visitor sees their own place, when it should start, and what
keeps the machine busy.
"""

import streamlit as st

from fmnist_app import views
from fmnist_app.common import (
    classroom_settings,
    job_manager,
    learning_curves_chart,
    link_to_page,
    live_curves_chart,
    model_cache,
    show_error,
    speed_probe,
)
from fmnist_app.visitor import (
    ask_to_train,
    my_request,
    say_withdrawn,
    something_to_show,
    training_status_box,
    visitor_id,
    withdrawn,
)
from fmnist_core.config import PRESETS, SEED_MAX, TrainConfig, for_this_machine, precision_note, preset_name
from fmnist_core.data.fashion_mnist import TEST_SET_IMAGES, TRAIN_SET_IMAGES
from fmnist_core.display import (
    LEARNING_RATE_FORMAT,
    format_accuracy,
    format_duration,
    format_learning_rate,
    format_timestamp,
)
from fmnist_core.errors import ConfigError
from fmnist_core.jobs.classroom import may_replace
from fmnist_core.jobs.queue import CANCELLED, DONE, FAILED, INTERRUPTED, JobStatus
from fmnist_core.models.registry import MODEL_NAMES, MODEL_SPECS, get_spec, model_size
from fmnist_core.report.commentary import mirror_note
from fmnist_core.store.cache import CacheEntry, ModelCache
from fmnist_core.training.loop import split_indices
from fmnist_core.training.pipeline import expected_training, preset_here

MEASURE_REFRESH_SECONDS = 2.0  # While the training worker measures a model's speed (a few seconds).
LIVE_REFRESH_SECONDS = 1.0  # One's own running curves; a queued request's box refreshes every 5 s (visitor.py).
# What the custom settings' validation split (the quick preset's) leaves of the training set: 54,000.
ALL_TRAINING_IMAGES = len(split_indices(TRAIN_SET_IMAGES, PRESETS["quick"].replace(train_limit=None))[0])
# The class demo first: the default, a run a class can watch from start to end.
SETTING_CHOICES = {
    "class": "Class demo",
    "quick": "Quick preset",
    "full": "Full preset",
    "custom": "Custom settings",
}
MODEL_KEY, SETTINGS_KEY, RESTORED_KEY = "train_model", "train_settings", "train_restored"


def describe(config: TrainConfig) -> str:
    """'3 epochs × 18,000 images, batch 256, learning rate 0.002, augmentation, seed 42'."""
    images = "all training images" if config.train_limit is None else f"{config.train_limit:,} images"
    extras = [f"batch {config.batch_size}", f"learning rate {format_learning_rate(config.learning_rate)}"]
    if config.augment:
        extras.append("augmentation")
    if config.schedule != "constant":
        extras.append(f"{config.schedule} schedule")
    if config.early_stopping_patience:
        extras.append(f"early stopping after {config.early_stopping_patience} flat epochs")
    if config.precision != "mixed_bfloat16":
        extras.append(config.precision)
    epochs = f"{config.epochs} epoch{'s' if config.epochs != 1 else ''}"
    return f"{epochs} × {images}, " + ", ".join(extras) + f", seed {config.seed}"


def choose_model() -> str:
    """The model radio, with each model's size; returns the registry name."""
    with st.spinner("Measuring the three models (loads TensorFlow the first time)…"):
        sizes = {name: model_size(name) for name in MODEL_NAMES}
    name = st.radio(
        "Model", MODEL_NAMES, horizontal=True, format_func=lambda key: MODEL_SPECS[key].title, key=MODEL_KEY
    )
    st.dataframe(
        [
            {
                "Model": spec.title,
                "First-layer filters": spec.first_filters,
                "Parameters": sizes[key].parameters,
                "Forward MFLOPs per image": round(sizes[key].forward_flops / 1e6, 1),
            }
            for key, spec in MODEL_SPECS.items()
        ],
        hide_index=True,
        column_config={"Parameters": st.column_config.NumberColumn(format="localized")},
    )
    st.caption(
        "Only the first convolution's width differs; every later layer is the same. A wider first layer "
        "sees more kinds of edges and textures, and costs more parameters and arithmetic."
    )
    return name


def custom_values(config: TrainConfig) -> dict:
    """The custom-setting widgets' values (by widget key) that stand for `config`."""
    return {
        "custom_epochs": config.epochs,
        "custom_batch_size": config.batch_size,
        "custom_learning_rate": config.learning_rate,
        "custom_images": config.train_limit or 0,
        "custom_seed": config.seed,
        "custom_augment": config.augment,
    }


def custom_settings() -> TrainConfig | None:
    """Widgets for every custom setting; the validated TrainConfig, or None after showing why it is invalid."""
    base = for_this_machine(PRESETS["quick"])
    for key, value in custom_values(base).items():
        st.session_state.setdefault(key, value)  # The widgets' first values (a restored request's, if set).
    left, middle, right = st.columns(3)
    epochs = left.number_input("Epochs", min_value=1, max_value=100, key="custom_epochs")
    batch_size = left.number_input("Batch size", min_value=1, max_value=8192, step=32, key="custom_batch_size")
    learning_rate = middle.number_input(
        "Learning rate",
        min_value=0.0,
        max_value=1.0,
        step=0.0005,
        format=LEARNING_RATE_FORMAT,
        key="custom_learning_rate",
    )
    subset = middle.number_input(
        f"Training images (0 = all {ALL_TRAINING_IMAGES:,})",
        min_value=0,
        max_value=ALL_TRAINING_IMAGES,
        step=1000,
        key="custom_images",
    )
    seed = right.number_input("Seed", min_value=0, max_value=SEED_MAX, key="custom_seed")
    augment = right.checkbox("Augmentation (random shifts and flips)", key="custom_augment")
    try:
        return base.replace(
            epochs=int(epochs),
            batch_size=int(batch_size),
            learning_rate=float(learning_rate),
            train_limit=int(subset) or None,
            seed=int(seed),
            augment=augment,
        )
    except ConfigError as error:
        show_error(error)
        return None


def requested_config(status: JobStatus) -> TrainConfig | None:
    """The settings a training request asked for, or None when it did not record them (or a server that stopped
    mid-run left them unreadable in its marker file)."""
    asked = status.details.get("config")
    try:
        return TrainConfig.from_dict(asked) if isinstance(asked, dict) else None
    except (ConfigError, TypeError):
        return None


def restore_my_request(mine: JobStatus | None) -> None:
    """Once per browser session, put the model and settings of this visitor's latest request back in the widgets.

    A reload starts a new Streamlit session whose widgets hold their defaults; the request survives it (the
    browser's cookie carries the visitor id), so the page picks its settings again and shows its run and outcome
    beside them.
    """
    if st.session_state.get(RESTORED_KEY):
        return
    st.session_state[RESTORED_KEY] = True
    config = requested_config(mine) if mine is not None else None
    if config is None or mine.details.get("model") not in MODEL_SPECS:
        return
    st.session_state[MODEL_KEY] = mine.details["model"]
    preset = preset_name(config) or "custom"
    st.session_state[SETTINGS_KEY] = preset
    if preset == "custom":
        st.session_state.update(custom_values(config))


def choose_settings(name: str, cache: ModelCache) -> TrainConfig | None:
    """The chosen preset as this machine trains it (`preset_here`), or the custom settings."""
    choice = st.radio("Settings", SETTING_CHOICES, horizontal=True, format_func=SETTING_CHOICES.get, key=SETTINGS_KEY)
    if choice == "custom":
        return custom_settings()
    config = preset_here(name, PRESETS[choice], cache)
    note = precision_note(PRESETS[choice]) if config != PRESETS[choice] else None
    st.caption(describe(config) + (f". {note}" if note else ""))
    return config


@st.fragment(run_every=LIVE_REFRESH_SECONDS)
def my_running_training(job_id: int) -> None:
    """This visitor's training, live: progress, speed and the curves as they grow; Stop."""
    manager = job_manager()
    status = manager.status(job_id)
    if status is None or not status.running:
        st.rerun()  # The whole page, so it shows how the run ended.
    training_progress(status)
    st.button(
        "Stopping…" if status.stopping else "Stop",
        icon="⏹️",
        key="stop-job",
        on_click=manager.cancel,
        args=(job_id,),
        disabled=status.stopping,
        help="Stops after the current batch; nothing half-trained is saved (a model trained before is kept).",
    )


def training_progress(status: JobStatus) -> None:
    details = status.details
    st.markdown(f"**{status.title}**")
    if status.stopping:
        st.progress(status.fraction, text="Stopping… after the current batch; nothing half-trained is saved.")
        return
    if not details.get("batches"):
        st.progress(status.fraction, text=status.message or "Preparing…")
        return
    if status.fraction >= 1:
        st.progress(1.0, text=f"Training done: testing on the {TEST_SET_IMAGES:,} test pictures and saving…")
    else:
        st.progress(
            status.fraction,
            text=f"Epoch {details['epoch']}/{details['epochs']} · batch {details['batch']}/{details['batches']}",
        )
    metrics = details.get("metrics", {})
    elapsed, remaining, speed, loss, accuracy = st.columns(5)
    elapsed.metric("Elapsed", format_duration(status.elapsed))
    remaining.metric("Remaining (estimate)", format_duration(status.remaining_seconds))
    speed.metric("Images / s", f"{details.get('images_per_second', 0):,.0f}")
    loss.metric("Loss (this epoch)", f"{metrics['loss']:.3f}" if "loss" in metrics else "—")
    accuracy.metric("Accuracy (this epoch)", format_accuracy(metrics.get("accuracy")))
    if details.get("live_curve"):
        st.altair_chart(live_curves_chart(details["live_curve"], details.get("slice_checks", []), details["epochs"]))
        st.caption(
            "Training loss and accuracy as the batches go (smoothed), and the accuracy on a fixed slice of the "
            "validation pictures every ~10 % of the run. The final figures use the whole validation and test sets."
        )
    elif details.get("history"):
        st.altair_chart(learning_curves_chart(details["history"]))
    else:
        st.caption("The curves appear after the first batches.")


def show_entry(entry: CacheEntry) -> None:
    """A trained model's test accuracy and curves, and where to look at it next."""
    st.metric("Test accuracy", format_accuracy(entry.record.test_accuracy), help=mirror_note(entry.record))
    st.altair_chart(learning_curves_chart(entry.record.history))
    link_to_page("pages/evaluate.py", label="Evaluate it: confusion matrix and mistakes", icon="🔍")


def ran_with(status: JobStatus, name: str, config: TrainConfig) -> bool:
    """Whether a training job trained `name` with `config`. A job that did not record its request (one started
    by hand, as tests do) is taken at its title's word."""
    details = status.details
    return details.get("model", name) == name and details.get("config", config.to_dict()) == config.to_dict()


def last_run_outcome(
    status: JobStatus | None, shown_entry: CacheEntry | None, name: str, config: TrainConfig, box_shown: bool
) -> bool:
    """How this visitor's latest training request ended; True when its model is `shown_entry` (shown in full below).

    Beside other settings than it ran with, the outcome is one line naming its settings, never a message that
    would pass for the chosen settings' result (after a reload Streamlit puts the settings back to the preset).
    A request withdrawn before it started is the status box's to report while the box is shown (`box_shown`).
    """
    if status is None or status.active or (box_shown and withdrawn(status)):
        return False
    if not ran_with(status, name, config):
        ended = {
            DONE: f"finished in {format_duration(status.elapsed)}",
            CANCELLED: "was stopped" if status.started is not None else "was cancelled before it started",
            FAILED: "failed",
            INTERRUPTED: "did not finish (the server stopped)",
        }
        model, asked = status.details.get("model"), requested_config(status)
        title = MODEL_SPECS[model].title if model in MODEL_SPECS else status.title
        settings = f" with {describe(asked)}" if asked else ""
        st.caption(
            f"Your last training, {title}{settings}, {ended.get(status.state, status.state)}. "
            "Choose those settings above to see it here."
        )
        return False
    kept = " The model trained before is still there, unchanged." if status.title.startswith("Retraining") else ""
    if status.state == FAILED:
        st.error(f"{status.title} failed: {status.error}{kept}", icon="⚠️")
    elif withdrawn(status):
        say_withdrawn(status)
    elif status.state == CANCELLED:
        st.info(f"{status.title}: stopped, nothing was saved.{kept}", icon="⏹️")
    elif status.state == INTERRUPTED:
        st.warning(f"{status.title}: {status.message} Ask again below.{kept}", icon="⚠️")
    elif status.state == DONE:
        outcome = status.result
        how = "was already cached, reused" if outcome.reused else f"finished in {format_duration(status.elapsed)}"
        st.success(f"{status.title} {how}.", icon="✅")
        if outcome.stopped_after_training:
            st.info("Stop came after the last training batch, while the model was being tested: it was kept.", icon="⏹️")
        if shown_entry is not None and shown_entry.entry_id == outcome.entry.entry_id:
            return True
        show_entry(outcome.entry)
    return False


def expected_time(name: str, config: TrainConfig, cache: ModelCache) -> None:
    """How long this training should take here: from this machine's trainings, or a few batches measured on the
    training worker (measured the first time the page shows the model and settings)."""
    spec = get_spec(name)
    estimate = expected_training(job_manager(), name, config, cache)
    if estimate is None:
        state = speed_probe().start(spec, config, cache.root)
        if state == "measuring":
            waiting_for_the_measurement(spec, config, cache)
            return
        if state == "failed":
            st.caption(
                f"Expected time: not known yet (the training worker could not measure {spec.title}); after its "
                "first training this machine can tell."
            )
            return
        estimate = expected_training(job_manager(), name, config, cache)
    if estimate.source == "measured":
        st.caption(
            f"Expected time: about {format_duration(estimate.seconds)} of training (measured here: a few batches of "
            f"{spec.title} on the training worker), plus the final test."
        )
    else:
        st.caption(
            f"Expected time on this machine: about {format_duration(estimate.seconds)} of training (from the images "
            f"per second measured in its earlier trainings of {spec.title}), plus the final test."
        )


@st.fragment(run_every=MEASURE_REFRESH_SECONDS)
def waiting_for_the_measurement(spec, config: TrainConfig, cache: ModelCache) -> None:
    if speed_probe().start(spec, config, cache.root) != "measuring":
        st.rerun()  # The whole page, which now shows the figure.
    st.caption(f"Expected time: measuring a few batches of {spec.title} on the training worker (a few seconds)…")


def offer_training(
    name: str, config: TrainConfig, cache: ModelCache, existing: CacheEntry | None, just_trained: bool
) -> None:
    """A Train button, or the cached model for these settings with a way to train it again."""
    spec = get_spec(name)
    if existing is not None and not existing.ok:
        st.warning(
            f"{spec.title} with these settings was trained before, but its cache entry {existing.entry_id} is "
            f"damaged ({existing.problem}), so it is never loaded. Training again replaces it.",
            icon="🩹",
        )
        existing = None
    if existing is None:
        expected_time(spec.name, config, cache)
        if st.button(f"Train {spec.title}", type="primary", icon="🏋️"):
            ask_to_train(name, config, cache)
        return
    if not just_trained:
        st.success(
            f"{spec.title} with these settings is already trained ({format_timestamp(existing.record.created)}, "
            f"{existing.provenance}): it is ready to use now, no need to train again.",
            icon="♻️",
        )
    show_entry(existing)
    with st.expander("Train again anyway"):
        if not may_replace(existing.owner, visitor_id(), classroom_settings()):
            st.write(
                "Classroom mode: this model was trained by the teacher or by another visitor, so it is read-only "
                "here; everyone can use it. The teacher can train it again with the command line "
                f"(`python -m fmnist_core train --model {name} … --retrain`)."
            )
            return
        if existing.shipped:
            st.write(
                "This model ships with the app and stays as it is. Training again writes your own model to your "
                f"cache ({cache.root}), which then answers in its place; delete yours to get the shipped one back. "
                "Training is seeded, so expect nearly the same result."
            )
            label, icon = "Train my own copy", "🏋️"
        else:
            st.write(
                "Training again replaces this model only once the new one is saved: until then everyone keeps "
                "using this one, and if the new run is stopped or fails, this one stays. Training is seeded, so "
                "expect nearly the same result."
            )
            label, icon = "Train again", "🔁"
        if st.button(label, icon=icon):
            ask_to_train(name, config, cache, retrain=True)


st.title("🏋️ Train a model")
st.write("Pick a model and how long to train it, then watch it learn — it keeps training while you explore.")
cache = model_cache()
manager = job_manager()
mine = my_request(manager)
restore_my_request(mine)
views.arrive(  # After the restore: a link names the view its reader asked for.
    "train",
    [
        views.Field(views.MODEL, MODEL_KEY, views.one_of(MODEL_NAMES, "model")),
        views.Field(views.PRESET, SETTINGS_KEY, views.one_of(list(SETTING_CHOICES), "preset")),
    ],
)
link_slot = st.container()
model_name = choose_model()
train_config = choose_settings(model_name, cache)
views.keep_view("train", {views.MODEL: model_name, views.PRESET: st.session_state[SETTINGS_KEY]}, link_slot)
st.divider()
box_shown = False
if mine is not None and mine.running:
    my_running_training(mine.job_id)
elif something_to_show(manager):
    training_status_box(report_withdrawn=True)
    box_shown = True
if train_config is not None and not (mine is not None and mine.active):
    cached = cache.lookup(get_spec(model_name), train_config)
    usable = cached if cached is not None and cached.ok else None
    announced = last_run_outcome(mine, usable, model_name, train_config, box_shown)
    offer_training(model_name, train_config, cache, cached, just_trained=announced)
