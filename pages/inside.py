"""Inside the model: the trained network's first-layer filters, what each block computes, where it looks, what
it reads before deciding, and whether the extra first-layer filters of Models 2 and 3 are new detectors or copies.

Widgets → one call into fmnist_core.explain.inside → pictures from fmnist_core.explain.render. The slow figures (the
filter redundancy and the embedding map) are computed once per model and kept.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from fmnist_app.common import (
    LAST_SKETCH,
    cache_entries,
    dataset_or_stop,
    link_to_page,
    load_model,
    show_error,
    usable_entries_or_stop,
)
from fmnist_core.data.fashion_mnist import CLASS_NAMES
from fmnist_core.errors import ExplainError
from fmnist_core.evaluate.predict import pick_test_image, pixelated, top_k
from fmnist_core.evaluate.sketch import MAX_UPLOAD_BYTES, SketchError, prepare_sketch
from fmnist_core.explain.render import filter_grid, maps_grid, saliency_overlay
from fmnist_core.store.cache import CacheEntry, best_entries

if TYPE_CHECKING:
    from fmnist_core.explain import inside as explain

# fmnist_core.explain.inside imports TensorFlow (seconds), so each function imports it when it needs it: the title and
# the pickers paint first, and the page without a trained model never waits for it.

UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif"]  # The formats prepare_sketch decodes.
PIXEL_FORMAT = "PNG"  # JPEG would blur the square pixels.
PICTURE_WIDTH = 224  # 28 × 8: three models' pictures fit side by side.
SIDE_BY_SIDE = "side-by-side"
TEST_IMAGE, SKETCH, UPLOAD = "A test image", "Your last sketch from Predict", "Upload a picture"
ANY_CLASS = "Any class"
NO_CLASS = "—"
# ?image=test:123 from the Predict and Evaluate pages; ASCII digits only, as every number a user types.
LINKED_IMAGE = re.compile(r"^test:([0-9]+)$")
CLASS_COLORS = alt.Scale(domain=list(CLASS_NAMES), scheme="tableau10")

# Cached computations, keyed by the cache entry and its model checksum; the model and the data set are passed
# unhashed (leading underscore).


@st.cache_data(show_spinner=False, max_entries=64)
def cached_explanation(
    entry_id: str, checksum: str, image: np.ndarray, other_class: int | None, _model
) -> explain.ImageExplanation:
    from fmnist_core.explain import inside as explain

    return explain.explain_image(_model, image, other_class=other_class)


@st.cache_data(show_spinner=False, max_entries=8)
def cached_filters(entry_id: str, checksum: str, _model) -> np.ndarray:
    from fmnist_core.explain import inside as explain

    return filter_grid(explain.first_layer_filters(_model))


@st.cache_data(show_spinner=False, max_entries=8)
def cached_redundancy(entry_id: str, checksum: str, _model, _images, _labels) -> explain.FilterReport:
    from fmnist_core.explain import inside as explain

    return explain.filter_redundancy(_model, explain.probe_images(_images, _labels))


@st.cache_data(show_spinner=False, max_entries=8)
def cached_map(entry_id: str, checksum: str, method: str, _model, _images, _labels) -> explain.EmbeddingMap:
    from fmnist_core.explain import inside as explain

    return explain.embedding_map(_model, _images, _labels, method=method)


def checksum(entry: CacheEntry) -> str:
    return entry.record.model_sha256


def best_of_each(entries: list[CacheEntry]) -> list[CacheEntry]:
    """The most accurate usable entry of each model that has one, in registry order."""
    return [entry for entry in best_entries(entries).values() if entry is not None]


# Choosing -------------------------------------------------------------------------------------------------------


def follow_link() -> None:
    """A link from Predict or Evaluate (?entry=ID&image=test:N or image=sketch) sets the pickers, once."""
    parameters = st.query_params.to_dict()
    if not parameters:
        return
    if "entry" in parameters:
        st.session_state["inside_entry"] = parameters["entry"]
    image = parameters.get("image", "")
    linked = LINKED_IMAGE.match(image)
    if image == "sketch":
        st.session_state["inside_source"] = SKETCH
    elif linked:
        st.session_state["inside_source"] = TEST_IMAGE
        st.session_state["inside_class"] = ANY_CLASS
        st.session_state["inside_index"] = int(linked.group(1))
    # Cleared, so that the pickers are the user's again and the same link works a second time.
    st.query_params.clear()


def pick_models() -> list[tuple[CacheEntry, object]]:
    """The chosen cache entry with its model, or the best entry of every model side by side."""
    usable = usable_entries_or_stop()
    best = best_of_each(list(usable.values()))
    choices = ([SIDE_BY_SIDE] if len(best) > 1 else []) + list(usable)
    if st.session_state.get("inside_entry") not in choices:
        if "inside_entry" in st.session_state:
            st.warning("That model is no longer cached; showing the most accurate one.", icon="🗄️")
        st.session_state["inside_entry"] = best[0].entry_id
    chosen = st.selectbox(
        "Model",
        choices,
        format_func=lambda choice: (
            f"All {len(best)} models side by side (the most accurate of each)"
            if choice == SIDE_BY_SIDE
            else usable[choice].label
        ),
        key="inside_entry",
    )
    picked = best if chosen == SIDE_BY_SIDE else [usable[chosen]]
    return [(entry, model) for entry in picked if (model := load_model(entry)) is not None]


def test_picture(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, str]:
    def pick_random() -> None:
        choice = st.session_state["inside_class"]
        class_index = None if choice == ANY_CLASS else CLASS_NAMES.index(choice)
        st.session_state["inside_index"] = pick_test_image(labels, class_index, np.random.default_rng())

    if st.session_state.get("inside_index", 0) >= len(labels):
        st.warning(f"There is no test image #{st.session_state['inside_index']}; showing #0.", icon="🔢")
        st.session_state["inside_index"] = 0
    class_column, index_column, button_column = st.columns([2, 2, 1], vertical_alignment="bottom")
    class_column.selectbox("Class", [ANY_CLASS, *CLASS_NAMES], key="inside_class", on_change=pick_random)
    index = index_column.number_input(
        "Test image number", min_value=0, max_value=len(labels) - 1, step=1, key="inside_index"
    )
    button_column.button("🎲 Random", on_click=pick_random, width="stretch")
    index = int(index)
    return images[index], f"Test image #{index} · true label: {CLASS_NAMES[int(labels[index])]}"


def uploaded_picture() -> tuple[np.ndarray, str] | None:
    upload = st.file_uploader(
        "A photo or drawing of one garment",
        type=UPLOAD_TYPES,
        max_upload_size=MAX_UPLOAD_BYTES // 2**20,
        key="inside_upload",
    )
    if upload is None:
        return None
    try:
        return prepare_sketch(upload.getvalue()).image, "Your upload, prepared like Fashion-MNIST"
    except SketchError as error:
        show_error(error)
        return None


def pick_picture(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, str] | None:
    """The 28×28 picture to explain and its caption, or None when there is none yet."""
    if "inside_source" not in st.session_state:
        st.session_state["inside_source"] = TEST_IMAGE
    source = st.radio("Picture", [TEST_IMAGE, SKETCH, UPLOAD], horizontal=True, key="inside_source")
    if source == TEST_IMAGE:
        return test_picture(images, labels)
    if source == UPLOAD:
        return uploaded_picture()
    sketch = st.session_state.get(LAST_SKETCH)
    if sketch is None:
        st.info("No sketch yet: draw or upload one on the Predict page, then come back.", icon="✏️")
        link_to_page("pages/predict.py", label="Predict a sketch", icon="✏️")
        return None
    return sketch, "Your last sketch from Predict, as the models see it"


# Views ----------------------------------------------------------------------------------------------------------


def answer_line(result: explain.ImageExplanation) -> str:
    guesses = " · ".join(f"{score.name} {score.probability:.0%}" for score in top_k(result.probabilities))
    return f"**{result.network.title}**: {guesses}"


def where_it_looks(models, picture: np.ndarray) -> list[tuple[CacheEntry, explain.ImageExplanation]]:
    """Each model's answer and saliency for the picture; returns the explanations for the feature maps."""

    st.subheader("Where does it look?")
    st.markdown(
        "Bright pixels are the evidence the network found **for** a class: hide them and its confidence falls "
        "fastest (integrated gradients, chosen because it passed that test best; see the README). Pick a second "
        "class to ask *why this and not that?* — e.g. a shirt's evidence for *Shirt* against *T-shirt/top*."
    )
    other = st.selectbox("Compare with the class", [NO_CLASS, *CLASS_NAMES], key="inside_other")
    other_class = None if other == NO_CLASS else CLASS_NAMES.index(other)
    # The first explanation of a model also traces its compiled functions: seconds, once.
    with st.spinner("Looking inside…"):
        results = [
            (entry, cached_explanation(entry.entry_id, checksum(entry), picture, other_class, model))
            for entry, model in models
        ]
    for column, (_, result) in zip(st.columns(len(results)), results, strict=True):
        column.markdown(answer_line(result))
        column.image(
            saliency_overlay(picture, result.saliency),
            caption=f"Evidence for {CLASS_NAMES[result.predicted]} (its top guess)",
            width=PICTURE_WIDTH,
            output_format=PIXEL_FORMAT,
        )
        if result.other_saliency is not None:
            column.image(
                saliency_overlay(picture, result.other_saliency),
                caption=f"Evidence for {CLASS_NAMES[result.other_class]}",
                width=PICTURE_WIDTH,
                output_format=PIXEL_FORMAT,
            )
        if result.network.mirror_averaged:
            column.caption(
                "Saved mirror-averaged: this explains the trained network inside, looking at the picture alone "
                "(the saved model also looks at its mirror image and averages)."
            )
        column.caption(f"⏱️ {result.seconds:.2f} s to explain")
    return results


def first_layer(models) -> None:
    from fmnist_core.explain import inside as explain

    st.subheader("What the first layer learned")
    st.markdown(
        "Each square is one first-layer filter: 3×3 weights slid over the picture. Red weights add brightness, "
        "blue ones subtract it, so a red row over a blue row finds a bright-over-dark edge. Compare Model 1's "
        "64 with Model 3's 256: do you see new patterns, or the same ones again?"
    )
    for column, (entry, model) in zip(st.columns(len(models)), models, strict=True):
        column.image(
            cached_filters(entry.entry_id, checksum(entry), model),
            caption=f"{entry.title}: {explain.describe(model).first_filters} filters",
            output_format=PIXEL_FORMAT,
        )


def feature_maps(results: list[tuple[CacheEntry, explain.ImageExplanation]]) -> None:
    st.subheader("What each block computes")
    st.markdown(
        "One small picture per filter: where in *this* image its pattern occurs (white = strongly). Deeper blocks "
        "see a bigger part of the garment per pixel and respond to parts rather than edges. Try a sandal and a "
        "sneaker: block 1 looks alike, block 3 does not."
    )
    for position, block in enumerate(results[0][1].maps):
        with st.expander(f"{block.title} — {block.description}", expanded=position == 0):
            for column, (entry, result) in zip(st.columns(len(results)), results, strict=True):
                layer = result.maps[position]
                height, width, channels = layer.shape
                column.image(maps_grid(layer), output_format=PIXEL_FORMAT)
                column.caption(
                    f"{entry.title} · {height}×{width}×{channels} · each pixel sees "
                    f"{layer.receptive_field}×{layer.receptive_field} pixels of the picture"
                )


def redundancy(images: np.ndarray, labels: np.ndarray) -> None:
    from fmnist_core.explain import inside as explain

    st.subheader("New detectors or copies?")
    st.markdown(
        "Why does quadrupling the first layer buy so little? A 3×3 filter on a grey picture has only 9 weights, so "
        "there are only so many different ones. Here each model's filters are compared on 500 test images: two "
        f"filters whose maps correlate ≥ {explain.DUPLICATE_CORRELATION} are near-copies; the *effective* number "
        "counts the independent responses (the effective rank of their correlation matrix)."
    )
    best = [(entry, model) for entry in best_of_each(cache_entries()) if (model := load_model(entry)) is not None]
    with st.spinner("Comparing every first-layer filter's maps on 500 test images (once per model)…"):
        reports = [
            (entry, cached_redundancy(entry.entry_id, checksum(entry), model, images, labels)) for entry, model in best
        ]
    table = pd.DataFrame(
        [
            {
                "model": report.title,
                "filters": report.filters,
                "nearly dead": report.dead,
                "with a near-copy": report.near_duplicates,
                "distinct groups": report.distinct_groups,
                "effective filters": round(report.effective_filters, 1),
                "kernels with a parallel twin": report.kernel_near_duplicates,
                "entry": entry.label,
            }
            for entry, report in reports
        ]
    )
    st.dataframe(table, hide_index=True, width="stretch")
    measures = ["filters", "distinct groups", "effective filters"]
    bars = (
        alt.Chart(table.melt(id_vars="model", value_vars=measures, var_name="measure", value_name="count"))
        .mark_bar()
        .encode(
            x=alt.X("model:N", title=None, axis=alt.Axis(labelAngle=0)),
            xOffset=alt.XOffset("measure:N", sort=measures),
            y=alt.Y("count:Q", title="Filters"),
            color=alt.Color("measure:N", sort=measures, title=None, legend=alt.Legend(orient="bottom")),
            tooltip=["model:N", "measure:N", "count:Q"],
        )
        .properties(height=260)
    )
    st.altair_chart(bars, width="stretch")
    st.caption(
        f"Nearly dead: its map is non-zero at fewer than {explain.DEAD_ACTIVITY:.0%} of positions. Kernels with a "
        f"parallel twin: |cosine| ≥ {explain.DUPLICATE_KERNEL_COSINE} between the 3×3 weights (a filter and its "
        "negative count, though they find opposite edges)."
    )


def explain_this(index: int) -> None:
    st.session_state["inside_source"] = TEST_IMAGE
    st.session_state["inside_class"] = ANY_CLASS
    st.session_state["inside_index"] = index


def embedding(models, images: np.ndarray, labels: np.ndarray) -> None:

    st.subheader("What it reads before deciding")
    st.markdown(
        "The last hidden layer turns each picture into 256 numbers, and the classifier only reads those. Here "
        "2,000 test images are placed by those numbers (squashed to 2-D): a cluster is a class the network tells "
        "apart; **✕ marks a mistake**. Mistakes sit where two clusters touch. Click a point to see its picture."
    )
    method = (
        "tsne" if st.toggle("t-SNE instead of PCA (slower, separates clusters better)", key="inside_tsne") else "pca"
    )
    for column, (entry, model) in zip(st.columns(len(models)), models, strict=True):
        with column, st.spinner(f"Placing 2,000 test images by {entry.title}'s features (once per model)…"):
            result = cached_map(entry.entry_id, checksum(entry), method, model, images, labels)
        picked = alt.selection_point(name="picked", fields=["index"], on="click")
        chart = (
            alt.Chart(result.table)
            .mark_point(filled=True, opacity=0.7)
            .encode(
                x=alt.X("x:Q", title=None, axis=alt.Axis(labels=False)),
                y=alt.Y("y:Q", title=None, axis=alt.Axis(labels=False)),
                color=alt.Color("class_name:N", title="True class", scale=CLASS_COLORS),
                shape=alt.Shape(
                    "mistake:N", title="Mistake", scale=alt.Scale(domain=[False, True], range=["circle", "cross"])
                ),
                size=alt.condition(alt.datum.mistake, alt.value(70), alt.value(22)),
                tooltip=[
                    alt.Tooltip("class_name:N", title="true class"),
                    alt.Tooltip("predicted_name:N", title="answer"),
                    alt.Tooltip("index:Q", title="test image #"),
                ],
            )
            .add_params(picked)
            .properties(height=420, title=f"{entry.title}: {result.accuracy:.1%} right on these")
        )
        event = column.altair_chart(
            chart, on_select="rerun", selection_mode="picked", key=f"inside_map_{entry.entry_id}", width="stretch"
        )
        chosen = (event.selection.get("picked") if event is not None else None) or []
        if chosen and "index" in chosen[0]:
            index = int(chosen[0]["index"])
            row = result.table.loc[result.table["index"] == index].iloc[0]
            column.image(
                pixelated(images[index]),
                width=PICTURE_WIDTH // 2,
                output_format=PIXEL_FORMAT,
                caption=f"#{index}: {row['class_name']}, answered {row['predicted_name']}",
            )
            column.button(
                "🔬 Explain this picture", key=f"inside_pick_{entry.entry_id}", on_click=explain_this, args=(index,)
            )


# Page -------------------------------------------------------------------------------------------------------------

st.title("🔬 Inside the model")
st.markdown(
    "The other pages show what a trained network gets right; this one shows **how**: the patterns its first "
    "layer learned, what each block makes of a picture, where it finds its evidence, and whether Model 3's 256 "
    "first-layer filters are really 4× as many detectors as Model 1's 64."
)
follow_link()
chosen_models = pick_models()
if not chosen_models:
    st.stop()
(_, _), (test_images, test_labels) = dataset_or_stop()
chosen = pick_picture(test_images, test_labels)
if chosen is not None:
    picture, caption = chosen
    st.image(pixelated(picture), caption=caption, width=PICTURE_WIDTH // 2, output_format=PIXEL_FORMAT)
    try:
        feature_maps(where_it_looks(chosen_models, picture))
    except ExplainError as error:
        show_error(error)
first_layer(chosen_models)
redundancy(test_images, test_labels)
embedding(chosen_models, test_images, test_labels)
