"""Home: what the explorer teaches, a quick start on the models at hand, a map of the pages, the trained models, and a
one-click first model.

This page must paint fast on a fresh server, so nothing here imports TensorFlow: the training job
imports it in its own thread, after the page is on screen.
"""

import streamlit as st

from fmnist_app import views
from fmnist_app.common import (
    DRAW_TAB,
    TAB_PARAMETER,
    cache_entries,
    damaged_entries,
    job_manager,
    link_to_page,
    model_cache,
)
from fmnist_app.visitor import ask_to_train, my_request, something_to_show, training_status_box
from fmnist_core.config import PRESETS
from fmnist_core.data.fashion_mnist import TEST_SET_IMAGES, TRAIN_SET_IMAGES
from fmnist_core.display import format_accuracy
from fmnist_core.models.registry import MODEL_SPECS, get_spec
from fmnist_core.race.file import list_races
from fmnist_core.store.cache import best_entries
from fmnist_core.training.pipeline import preset_here

PAGE_MAP = (
    (
        "pages/dataset.py",
        "Dataset",
        "🖼️",
        f"browse the {TRAIN_SET_IMAGES + TEST_SET_IMAGES:,} pictures, the class balance, mean images and a 2-D map",
    ),
    ("pages/train.py", "Train", "🏋️", "train Model 1, 2 or 3 in the background and watch the curves grow"),
    ("pages/evaluate.py", "Evaluate", "🔍", "test accuracy, the confusion matrix, and the pictures a model gets wrong"),
    ("pages/compare.py", "Compare & report", "📊", "the models side by side: accuracy, speed, size; download a report"),
    ("pages/inside.py", "Inside the model", "🔬", "the filters a model learned, its feature maps, where it looks"),
    ("pages/race.py", "GPU vs CPU race", "🏁", "the same training on different hardware, timed live"),
    ("pages/predict.py", "Predict a sketch", "✏️", "draw or upload a garment and see what a model thinks it is"),
)
QUICK_MODEL = "model1"


def introduction() -> None:
    widths = ", ".join(f"{spec.first_filters}" for spec in MODEL_SPECS.values())
    st.markdown(
        "A **convolutional neural network** (CNN) learns to tell clothes apart from tiny 28×28 grey pictures: "
        "T-shirts, trousers, sneakers, bags… This app lets a class watch that happen, step by step.\n\n"
        f"There are three models. They are identical except for **the width of the first layer** ({widths} "
        "filters), so every difference you see in accuracy, training time or size comes from that one choice."
    )


def page_map() -> None:
    st.header("Where to go")
    for path, title, icon, description in PAGE_MAP:
        link, text = st.columns([1, 3], vertical_alignment="center")
        with link:
            link_to_page(path, label=title, icon=icon)
        text.caption(description)


def interrupted_notice() -> None:
    manager = job_manager()
    if manager.interrupted and manager.current() is None:
        titles = ", ".join(status.title for status in manager.interrupted)
        st.warning(
            f"The last run ({titles}) did not finish — the server stopped while it was running or waiting; "
            "nothing half-written was kept.",
            icon="⚠️",
        )


def cached_models() -> None:
    st.header("Trained models")
    entries = cache_entries()
    if not entries:
        st.info("No trained models yet. Quick-train Model 1 above: the shortest run there is.", icon="ℹ️")
        return
    for entry in entries:
        if entry.ok:
            st.markdown(f"✅ {entry.label} — {entry.provenance}")
    damaged_entries(entries)


def quick_start() -> bool:
    """Links to what the models at hand (shipped with the app or trained here) and the recorded races show right
    away; False when there is none yet, and quick-training a first model is the start."""
    trained = [entry for entry in best_entries(cache_entries()).values() if entry is not None]
    recorded = [race for race in list_races() if race.origin == "recorded" and race.result is not None]
    links = []
    if trained:
        titles = [entry.title for entry in trained]
        who = (
            f"{titles[0]} answers" if len(titles) == 1 else f"{', '.join(titles[:-1])} and {titles[-1]} answer at once"
        )
        draw = {TAB_PARAMETER: DRAW_TAB}
        links.append(("pages/predict.py", "Try a sketch", "✏️", draw, f"Draw a garment: {who}."))
        widest = trained[-1]  # Registry order: the widest first layer trained.
        links.append(
            (
                "pages/evaluate.py",
                f"See what {widest.title} gets wrong",
                "🔍",
                {views.MODEL: widest.entry_id},
                f"{format_accuracy(widest.record.test_accuracy)} of the test pictures right: the confusion matrix, "
                "and the pictures behind each mistake.",
            )
        )
    if recorded:
        race = max(recorded, key=lambda race: race.result.created)
        links.append(
            (
                "pages/race.py",
                f"Open the race recorded on {race.result.created[:10]}",
                "🏁",
                {views.RACE: race.path.name},
                f"Replay it at true speed: {race.result.recorded_label}.",
            )
        )
    if not links:
        return False
    st.header("Quick start")
    for column, (page, label, icon, parameters, caption) in zip(st.columns(len(links)), links, strict=True):
        with column:
            link_to_page(page, label=label, icon=icon, query_params=parameters)
            st.caption(caption)
    return True


def quick_train(heading: str) -> None:
    st.header(heading)
    manager = job_manager()
    mine = my_request(manager)
    if something_to_show(manager):
        training_status_box()
    if mine is not None and mine.active:
        return
    # Only this visitor's: another visitor's failure is not news here.
    if mine is not None and mine.error:
        st.error(f"{mine.title} failed: {mine.error}", icon="⚠️")
    cache, spec = model_cache(), get_spec(QUICK_MODEL)
    quick = preset_here(spec, PRESETS["quick"], cache)
    existing = cache.find(spec, quick)
    if existing is not None:
        st.success(
            f"{spec.title} on the quick preset is trained and ready to use "
            f"({format_accuracy(existing.record.test_accuracy)} test accuracy).",
            icon="✅",
        )
        link_to_page("pages/evaluate.py", label="See how it does on the test set", icon="🔍")
        return
    st.write(
        f"Train {spec.title} on {quick.train_limit:,} pictures for {quick.epochs} epochs, the shortest run there "
        "is, and watch it learn; the time left is shown as it goes. It keeps running if you open other pages."
    )
    if st.button(f"Quick-train {spec.title}", type="primary", icon="🚀"):
        ask_to_train(QUICK_MODEL, quick, cache)


st.title("👕 Fashion-MNIST CNN Explorer")
st.write("See how a convolutional network learns to recognise clothes — and what one design choice changes.")
interrupted_notice()
introduction()
quick_train("Or watch a model learn" if quick_start() else "Quick start")
cached_models()
page_map()
