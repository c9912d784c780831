"""Train: pick a model and settings, ask for a training, watch its progress and curves live when its turn comes.

Training runs in the shared job manager's worker thread, not in this script: clicking widgets, opening other
pages or reloading never stops it, and coming back shows it still running. Requests from every visitor wait in
one queue; each visitor sees their own place, when it should start, and what keeps the machine busy.
"""

import streamlit as st

from fmnist_core.cache import CacheEntry, ModelCache
from fmnist_core.classroom import may_replace
from fmnist_core.config import PRESETS, TrainConfig
from fmnist_core.errors import ConfigError
from fmnist_core.jobs import CANCELLED, DONE, FAILED, INTERRUPTED, JobStatus
from fmnist_core.models import MODEL_NAMES, MODEL_SPECS, get_spec, model_size
from fmnist_core.report import mirror_note
from pages.common import (
    classroom_settings,
    format_seconds,
    job_manager,
    learning_curves_chart,
    link_to_page,
    model_cache,
    show_error,
)
from pages.visitor import ask_to_train, my_request, something_to_show, training_status_box, visitor_id

LIVE_REFRESH_SECONDS = 0.75
ALL_TRAINING_IMAGES = 54_000  # 60 000 minus the 10% validation split every preset keeps.
SETTING_CHOICES = {"quick": "Quick preset", "full": "Full preset", "custom": "Custom settings"}


def describe(config: TrainConfig) -> str:
    """'3 epochs × 18,000 images, batch 256, learning rate 0.002, augmentation, seed 42'."""
    images = "all training images" if config.train_limit is None else f"{config.train_limit:,} images"
    extras = [f"batch {config.batch_size}", f"learning rate {config.learning_rate:g}"]
    if config.augment:
        extras.append("augmentation")
    if config.schedule != "constant":
        extras.append(f"{config.schedule} schedule")
    if config.early_stopping_patience:
        extras.append(f"early stopping after {config.early_stopping_patience} flat epochs")
    return f"{config.epochs} epochs × {images}, " + ", ".join(extras) + f", seed {config.seed}"


def choose_model() -> str:
    """The model radio, with each model's size; returns the registry name."""
    with st.spinner("Measuring the three models (loads TensorFlow the first time)…"):
        sizes = {name: model_size(name) for name in MODEL_NAMES}
    name = st.radio("Model", MODEL_NAMES, horizontal=True, format_func=lambda key: MODEL_SPECS[key].title)
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


def custom_settings() -> TrainConfig | None:
    """Widgets for every custom setting; the validated TrainConfig, or None after showing why it is invalid."""
    base = PRESETS["quick"]
    left, middle, right = st.columns(3)
    epochs = left.number_input("Epochs", min_value=1, max_value=100, value=base.epochs)
    batch_size = left.number_input("Batch size", min_value=1, max_value=8192, value=base.batch_size, step=32)
    learning_rate = middle.number_input(
        "Learning rate", min_value=0.0, max_value=1.0, value=base.learning_rate, step=0.0005, format="%.4f"
    )
    subset = middle.number_input(
        "Training images (0 = all 54,000)",
        min_value=0,
        max_value=ALL_TRAINING_IMAGES,
        value=base.train_limit,
        step=1000,
    )
    seed = right.number_input("Seed", min_value=0, max_value=2**31 - 1, value=base.seed)
    augment = right.checkbox("Augmentation (random shifts and flips)", value=base.augment)
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


def choose_settings() -> TrainConfig | None:
    choice = st.radio("Settings", SETTING_CHOICES, horizontal=True, format_func=SETTING_CHOICES.get)
    if choice == "custom":
        return custom_settings()
    config = PRESETS[choice]
    st.caption(describe(config))
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
        "Stop",
        icon="⏹️",
        key="stop-job",
        on_click=manager.cancel,
        args=(job_id,),
        help="Stops after the current batch; nothing half-trained is saved (a model trained before is kept).",
    )


def training_progress(status: JobStatus) -> None:
    details = status.details
    st.markdown(f"**{status.title}**")
    if not details.get("batches"):
        st.progress(status.fraction, text=status.message or "Preparing…")
        return
    if status.fraction >= 1:
        st.progress(1.0, text="Training done: testing on the 10,000 test pictures and saving…")
    else:
        st.progress(
            status.fraction,
            text=f"Epoch {details['epoch']}/{details['epochs']} · batch {details['batch']}/{details['batches']}",
        )
    metrics = details.get("metrics", {})
    elapsed, remaining, speed, loss, accuracy = st.columns(5)
    elapsed.metric("Elapsed", format_seconds(status.elapsed))
    remaining.metric("Remaining (estimate)", format_seconds(status.remaining_seconds))
    speed.metric("Images / s", f"{details.get('images_per_second', 0):,.0f}")
    loss.metric("Loss (this epoch)", f"{metrics['loss']:.3f}" if "loss" in metrics else "—")
    accuracy.metric("Accuracy (this epoch)", f"{metrics['accuracy']:.1%}" if "accuracy" in metrics else "—")
    if details.get("history"):
        st.altair_chart(learning_curves_chart(details["history"]))
    else:
        st.caption("The curves appear when the first epoch ends.")


def show_entry(entry: CacheEntry) -> None:
    """A trained model's test accuracy and curves, and where to look at it next."""
    st.metric(
        "Test accuracy",
        f"{entry.test_accuracy:.2%}" if entry.test_accuracy is not None else "—",
        help=mirror_note(entry),
    )
    st.altair_chart(learning_curves_chart(entry.meta.get("history")))
    link_to_page("pages/evaluate.py", label="Evaluate it: confusion matrix and mistakes", icon="🔍")


def last_run_outcome(status: JobStatus | None, shown_entry: CacheEntry | None) -> bool:
    """How this visitor's latest training request ended; True when its model is `shown_entry` (shown below)."""
    if status is None or status.active:
        return False
    kept = " The model trained before is still there, unchanged." if status.title.startswith("Retraining") else ""
    if status.state == FAILED:
        st.error(f"{status.title} failed: {status.error}{kept}", icon="⚠️")
    elif status.state == CANCELLED and status.started is None:
        st.info(f"You cancelled {status.title} before it started.", icon="✖️")
    elif status.state == CANCELLED:
        st.info(f"{status.title}: stopped, nothing was saved.{kept}", icon="⏹️")
    elif status.state == INTERRUPTED:
        st.warning(f"{status.title}: {status.message} Ask again below.{kept}", icon="⚠️")
    elif status.state == DONE:
        outcome = status.result
        how = "was already cached, reused" if outcome.reused else f"finished in {format_seconds(status.elapsed)}"
        st.success(f"{status.title} {how}.", icon="✅")
        if shown_entry is not None and shown_entry.entry_id == outcome.entry.entry_id:
            return True
        show_entry(outcome.entry)
    return False


def offer_training(
    name: str, config: TrainConfig, cache: ModelCache, existing: CacheEntry | None, just_trained: bool
) -> None:
    """A Train button, or the cached model for these settings with a way to train it again."""
    spec = get_spec(name)
    if existing is None:
        if st.button(f"Train {spec.title}", type="primary", icon="🏋️"):
            ask_to_train(name, config, cache)
        return
    if not just_trained:
        st.success(
            f"{spec.title} with these settings is already trained ({existing.created[:16].replace('T', ' ')})"
            ": it is ready to use now, no need to train again.",
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
        st.write(
            "Training again replaces this model only once the new one is saved: until then everyone keeps using "
            "this one, and if the new run is stopped or fails, this one stays. Training is seeded, so expect "
            "nearly the same result."
        )
        if st.button("Train again", icon="🔁"):
            ask_to_train(name, config, cache, retrain=True)


st.title("🏋️ Train a model")
st.write("Pick a model and how long to train it, then watch it learn — it keeps training while you explore.")
cache = model_cache()
model_name = choose_model()
train_config = choose_settings()
manager = job_manager()
st.divider()
mine = my_request(manager)
if mine is not None and mine.running:
    my_running_training(mine.job_id)
elif something_to_show(manager):
    training_status_box(live_page=True)
if train_config is not None and not (mine is not None and mine.active):
    cached = cache.find(get_spec(model_name), train_config)
    announced = last_run_outcome(mine, cached)
    offer_training(model_name, train_config, cache, cached, just_trained=announced)
