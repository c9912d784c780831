"""Home: what the explorer teaches, a map of the pages, the trained models, and a one-click first model.

This page must paint fast on a fresh server, so nothing here imports TensorFlow: the training job
imports it in its own thread, after the page is on screen.
"""

import streamlit as st

from fmnist_core.config import PRESETS
from fmnist_core.models import MODEL_SPECS, get_spec
from pages.common import cache_entries, damaged_entries, job_manager, link_to_page, model_cache
from pages.visitor import ask_to_train, my_request, something_to_show, training_status_box

PAGE_MAP = (
    ("pages/dataset.py", "Dataset", "🖼️", "browse the 70,000 pictures, the class balance, mean images and a 2-D map"),
    ("pages/train.py", "Train", "🏋️", "train Model 1, 2 or 3 in the background and watch the curves grow"),
    ("pages/evaluate.py", "Evaluate", "🔍", "test accuracy, the confusion matrix, and the pictures a model gets wrong"),
    ("pages/compare.py", "Compare & report", "📊", "the models side by side: accuracy, speed, size; download a report"),
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
    st.subheader("Where to go")
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
    st.subheader("Trained models")
    entries = cache_entries()
    if not entries:
        st.info("No trained models yet. Quick-train Model 1 above: the shortest run there is.", icon="ℹ️")
        return
    for entry in entries:
        if entry.ok:
            st.markdown(f"✅ {entry.label}")
    damaged_entries(entries)


def quick_train() -> None:
    st.subheader("Quick start")
    manager = job_manager()
    mine = my_request(manager)
    if something_to_show(manager):
        training_status_box()
    if mine is not None and mine.active:
        return
    if mine is not None and mine.error:
        st.error(f"{mine.title} failed: {mine.error}", icon="⚠️")
    cache, spec, quick = model_cache(), get_spec(QUICK_MODEL), PRESETS["quick"]
    existing = cache.find(spec, quick)
    if existing is not None:
        accuracy = f"{existing.test_accuracy:.1%}" if existing.test_accuracy is not None else "unknown"
        st.success(
            f"{spec.title} on the quick preset is trained and ready to use ({accuracy} test accuracy).", icon="✅"
        )
        link_to_page("pages/evaluate.py", label="See how it does on the test set", icon="🔍")
        return
    st.write(
        f"No model yet? Train {spec.title} on {quick.train_limit:,} pictures for {quick.epochs} epochs, the "
        "shortest run there is; the time left is shown as it goes. It keeps running if you open other pages."
    )
    if st.button(f"Quick-train {spec.title}", type="primary", icon="🚀"):
        ask_to_train(QUICK_MODEL, quick, cache)


st.title("👕 Fashion-MNIST CNN Explorer")
st.write("See how a convolutional network learns to recognise clothes — and what one design choice changes.")
interrupted_notice()
introduction()
quick_train()
cached_models()
page_map()
