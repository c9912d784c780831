"""Predict a sketch: upload a picture, draw one, or pick a test image, and see what every trained model thinks.

The page shows each step between the picture and the model: the crop, the 28 × 28 the model sees, and what the
preparation changed, because a model trained on Fashion-MNIST only understands pictures prepared like it.
"""

from dataclasses import dataclass

import numpy as np
import streamlit as st
from streamlit_drawable_canvas import st_canvas

from fmnist_app import views
from fmnist_app.common import (
    DRAW_TAB,
    LAST_SKETCH,
    TAB_PARAMETER,
    cache_entries,
    dataset_or_stop,
    job_manager,
    keep_widget_values,
    lazy_tabs,
    link_to_page,
    load_model,
    model_cache,
    plain_text,
)
from fmnist_app.visitor import ask_to_train, my_request, something_to_show, training_status_box
from fmnist_core.config import PRESETS
from fmnist_core.data.fashion_mnist import CLASS_NAMES, TEST_SET_IMAGES
from fmnist_core.display import format_size
from fmnist_core.evaluate.predict import (
    Classification,
    ModelPrediction,
    classify,
    outline_crop,
    pick_test_image,
    pixelated,
)
from fmnist_core.evaluate.sketch import MAX_UPLOAD_BYTES, PreparedSketch, SketchError, prepare_sketch
from fmnist_core.jobs.queue import FAILED
from fmnist_core.store.cache import best_entries
from fmnist_core.training.pipeline import preset_here

UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif"]  # The formats prepare_sketch decodes.
CANVAS_SIZE = 280  # Ten canvas pixels per model pixel, like the enlarged 28 × 28 shown beside it.
PICTURE_WIDTH = 280  # Pictures are shown at the canvas size so that "given" and "seen" line up.
PIXEL_FORMAT = "PNG"  # For the 28 × 28 views: JPEG, Streamlit's usual choice for arrays, would blur the pixels.
# Ink and paper colours: paper-like drawing teaches the inversion step; the dataset look skips it.
INKS = {
    "Black ink on white paper": ("#000000", "#FFFFFF"),
    "White ink on black, like Fashion-MNIST": ("#FFFFFF", "#000000"),
}
ANY_CLASS = "Any class"
TEST_TAB = "🎲 Try a test image"
TABS = ["📤 Upload", "✏️ Draw", TEST_TAB]
# Session keys: the last drawing, and the one the canvas was opened with (kept while the Draw tab stays open).
LAST_DRAWING, OPENED_WITH = "last_drawing", "canvas_opened_with"


# Models ---------------------------------------------------------------------------------------------------


def loaded_models() -> dict[str, object]:
    """Title → Keras model for the most accurate cached entry of each model (load problems are shown)."""
    models = {}
    entries = [entry for entry in best_entries(cache_entries()).values() if entry is not None]
    for entry in entries:
        model = load_model(entry)
        if model is not None:
            models[entry.title] = model
    if entries:
        st.caption("Answering: " + "; ".join(f"{entry.label} — {entry.provenance}" for entry in entries))
    mirrored = [entry.title for entry in entries if entry.record.single_view_accuracy is not None]
    if mirrored:
        who = "it" if len(mirrored) == 1 else "each"
        st.caption(
            f"{' and '.join(mirrored)}: trained on mirrored pictures too, so {who} answers with the average "
            "of its answers for your picture and for its mirror image."
        )
    return models


def offer_quick_training() -> None:
    """No model yet: offer the quick training (it joins the queue) and point at the Train page."""
    manager = job_manager()
    mine = my_request(manager)
    with st.container(border=True):
        st.markdown(
            "**No trained model yet.** Train Model 1 with the quick preset (the shortest run; the time "
            "left is shown as it goes), or choose your own settings on the Train page. Meanwhile the page "
            "still shows how your picture is prepared."
        )
        if something_to_show(manager):
            training_status_box()
        if mine is not None and mine.state == FAILED:
            st.error(f"Your last training did not finish: {mine.error}", icon="⚠️")
        if not (mine is not None and mine.active) and st.button(
            "Train Model 1 now (quick preset)", type="primary", icon="🏋️"
        ):
            cache = model_cache()
            ask_to_train("model1", preset_here("model1", PRESETS["quick"], cache), cache)
        link_to_page("pages/train.py", "Train page: all models, your settings", icon="🏋️")


# Inputs: each returns what the model should look at, or None -------------------------------------------------


def uploaded_picture() -> tuple[bytes, str] | None:
    """The uploaded file's bytes and a Markdown label naming it. The name is only ever shown (escaped), never
    opened, so it cannot point anywhere on this machine."""
    upload = st.file_uploader(
        "A photo or drawing of one garment", type=UPLOAD_TYPES, max_upload_size=MAX_UPLOAD_BYTES // 2**20, key="upload"
    )
    if upload is None:
        return None
    # A file the uploader refuses (too large, wrong type) is never sent here: the previous file stays the upload.
    # So every answer and error below names the file it is about, and cannot pass for the refused one's.
    return upload.getvalue(), f"**{plain_text(upload.name)}** ({format_size(upload.size)})"


@dataclass(frozen=True)
class Drawing:
    """What the canvas held when the models last answered: enough to put it back when the Draw tab reopens."""

    paper: str  # Paper colour: each ink has its own canvas.
    canvas_json: dict  # The canvas's objects (Fabric.js JSON), given back to it as its initial drawing.
    pixels: np.ndarray  # What the canvas looked like (RGBA), answered again until the student draws on.


def drawing() -> np.ndarray | None:
    """The canvas as RGBA pixels, or None (with a nudge) while it is empty.

    The Draw tab is drawn only while it is open (the canvas costs each browser a lot:
    docs/decisions/streamlit-workarounds.md), and a canvas drawn anew starts empty. So the last drawing is kept, and
    when the tab reopens the canvas starts from it and the models answer it again, until the student draws on."""
    ink_column, width_column = st.columns(2)
    ink = ink_column.radio(
        "Ink",
        list(INKS),
        key="ink",
        horizontal=True,
        help="Switching clears the canvas. Either way the model gets light on black: "
        "dark-on-light drawings are inverted first.",
    )
    stroke_width = width_column.slider("Stroke width", min_value=4, max_value=40, key="stroke_width")
    stroke_colour, paper_colour = INKS[ink]
    # The drawing the canvas was opened with stays its initial drawing while the tab is open: a changed one would
    # redraw the canvas under the student's pen.
    opened_with = st.session_state.setdefault(OPENED_WITH, st.session_state.get(LAST_DRAWING))
    restored = opened_with if opened_with is not None and opened_with.paper == paper_colour else None
    st.write("")  # Room for the canvas toolbar, which floats above the canvas and would cover the radio.
    canvas = st_canvas(
        stroke_width=stroke_width,
        stroke_color=stroke_colour,
        background_color=paper_colour,
        width=CANVAS_SIZE,
        height=CANVAS_SIZE,
        drawing_mode="freedraw",
        update_streamlit=True,
        initial_drawing=None if restored is None else restored.canvas_json,
        return_image_data=True,
        key=f"canvas-{paper_colour}",
    )
    objects = (canvas.json_data or {}).get("objects")
    if objects and canvas.image_data is not None:
        st.session_state[LAST_DRAWING] = Drawing(paper_colour, canvas.json_data, canvas.image_data)
        return canvas.image_data
    if objects and restored is not None and objects == restored.canvas_json.get("objects"):
        return restored.pixels  # Reopened on the last drawing, not drawn on since.
    st.session_state[LAST_DRAWING] = None  # Cleared, or never drawn on.
    st.info("Draw something: a T-shirt, a trouser, a shoe, a bag… The models answer when you lift the pen.", icon="✏️")
    return None


def chosen_test_index(labels: np.ndarray) -> int:
    """Index of the test image to show, picked by number, at random, or at random within a class."""

    def pick_random() -> None:
        choice = st.session_state["test_class"]
        class_index = None if choice == ANY_CLASS else CLASS_NAMES.index(choice)
        st.session_state["test_index"] = pick_test_image(labels, class_index, np.random.default_rng())

    class_column, index_column, button_column = st.columns([2, 2, 1], vertical_alignment="bottom")
    class_column.selectbox("Class", [ANY_CLASS, *CLASS_NAMES], key="test_class", on_change=pick_random)
    index = index_column.number_input(
        "Test image number", min_value=0, max_value=len(labels) - 1, step=1, key="test_index"
    )
    button_column.button("🎲 Random", on_click=pick_random, width="stretch")
    return int(index)


# Results ----------------------------------------------------------------------------------------------------


def top_guesses(prediction: ModelPrediction) -> None:
    """One model's top guesses as bars with their percentage, the first in bold; the true class marked.

    Streamlit's own progress bars, not an Altair chart: no Vega to load and start in the browser for each answer,
    and no chart spec to build on the server (benchmarks/classroom_load.py, docs/decisions/streamlit-workarounds.md)."""
    for rank, score in enumerate(prediction.top):
        name = score.name + (" (true)" if score.class_index == prediction.true_class else "")
        label = f"{name} · {score.probability:.1%}"
        st.progress(score.probability, text=f"**{label}**" if rank == 0 else label)


def verdict(prediction: ModelPrediction) -> str:
    """'**Model 1** says Shirt (87%)', with ✅ or ❌ when the true label is known."""
    mark = {True: " ✅", False: " ❌", None: ""}[prediction.correct]
    return f"**{prediction.title}** says {prediction.guess.name} ({prediction.guess.probability:.0%}){mark}"


def show_classification(result: Classification) -> None:
    """Agreement badge, each model's top guesses, and the measured latency."""
    if not result.predictions:
        return
    consensus = result.consensus
    if consensus.disagree:
        st.warning(
            "The models disagree: "
            + "; ".join(
                f"{' and '.join(titles)} {'say' if len(titles) > 1 else 'says'} {name}"
                for name, titles in consensus.groups
            )
            + ".",
            icon="⚖️",
        )
    elif len(result.predictions) > 1:
        st.success(f"All {len(result.predictions)} models agree: **{consensus.groups[0][0]}**.", icon="🤝")
    for column, prediction in zip(st.columns(len(result.predictions)), result.predictions, strict=True):
        with column:
            st.markdown(verdict(prediction))
            top_guesses(prediction)
    st.caption(
        "⏱️ Prediction time for this image (warm model, one call): "
        + " · ".join(f"{prediction.title} {prediction.seconds * 1000:.1f} ms" for prediction in result.predictions)
    )


def describe_preparation(sketch: PreparedSketch) -> str:
    """One caption line saying what the preparation did to this picture."""
    left, top, right, bottom = sketch.bounding_box
    steps = [
        "inverted (dark on light → light on black)" if sketch.inverted else "already light on dark, not inverted",
        f"cropped to the {right - left} × {bottom - top} pixel box in orange",
        "thin strokes thickened so they survive the shrink" if sketch.thickened else "strokes thick enough as drawn",
        "resized so the long side fills 28 pixels, and centred",
    ]
    return "Preparation: " + "; ".join(steps) + "."


def show_picture_prediction(picture, models: dict[str, object], source: str | None = None) -> None:
    """Prepare an upload or a drawing, show each preparation step, then the models' answers.

    source: Markdown naming the uploaded file, put on its answer and its error (None for a drawing).
    """
    if source:
        st.caption(f"📎 {source}")
    try:
        sketch = prepare_sketch(picture)
    except SketchError as error:
        st.error(f"{source}: {error}" if source else str(error), icon="⚠️")
        return
    given, seen = st.columns(2)
    given.image(outline_crop(sketch), caption="As given", alt="Your picture as given", width=PICTURE_WIDTH)
    seen.image(
        pixelated(sketch.image),
        caption="What the models see (28 × 28, enlarged)",
        alt="Your picture prepared like Fashion-MNIST: centred, 28 × 28 grey pixels; the models' answers follow",
        width=PICTURE_WIDTH,
        output_format=PIXEL_FORMAT,
    )
    st.caption(describe_preparation(sketch))
    show_classification(classify(sketch.image, models))
    st.session_state[LAST_SKETCH] = sketch.image
    link_to_page("pages/inside.py", "See what the model looked at", icon="🔬", query_params={views.IMAGE: "sketch"})


def show_test_image_prediction(models: dict[str, object]) -> None:
    """A Fashion-MNIST test image, its true label, and whether each model gets it right."""
    (_, _), (images, labels) = dataset_or_stop()
    index = chosen_test_index(labels)
    true_class = int(labels[index])
    st.image(
        pixelated(images[index]),
        width=PICTURE_WIDTH,
        output_format=PIXEL_FORMAT,
        caption=f"Test image #{index} · true label: {CLASS_NAMES[true_class]}",
        alt=f"Test image #{index}: a {CLASS_NAMES[true_class]}, 28 × 28 grey pixels",
    )
    st.caption("Test images are already prepared the Fashion-MNIST way, so the models see exactly this.")
    show_classification(classify(images[index], models, true_class))
    link = {views.IMAGE: views.test_image_link(index)}
    link_to_page("pages/inside.py", "See what the model looked at", icon="🔬", query_params=link)


# Page -------------------------------------------------------------------------------------------------------

st.title("✏️ Predict a sketch")
st.markdown(
    "Fashion-MNIST garments are **light on a black background, trimmed to the object and centred** in "
    "28 × 28 pixels, and that is all a model trained on them has ever seen. So your picture is prepared the "
    "same way before the models look at it — below you can see each step."
)

trained_models = loaded_models()
if not trained_models:
    offer_quick_training()

# The widgets of the Draw and test-image tabs, with their first values: kept while their tab is closed.
keep_widget_values({"ink": next(iter(INKS)), "stroke_width": 18, "test_class": ANY_CLASS, "test_index": 0})
# A link names a test image (?example=123): the page opens on it, in its tab.
# Home's "Try a sketch" link opens the Draw tab (?tab=draw).
arrived = views.arrive(
    "predict",
    [
        views.Field(views.EXAMPLE, "test_index", views.test_image_number(TEST_SET_IMAGES)),
        views.Field(TAB_PARAMETER, "predict_tab", views.one_of({DRAW_TAB: TABS[1]}, "tab")),
    ],
)
if "test_index" in arrived:
    st.session_state["predict_tab"] = TEST_TAB
# The upload is drawn whatever tab is open, so switching tabs keeps it (Streamlit cannot give a file uploader its
# file back). The canvas only while the Draw tab is open (it keeps its drawing: see `drawing`), and the test image,
# its answer and its bars only while theirs is.
upload_tab, draw_tab, test_tab = lazy_tabs(TABS, key="predict_tab")
with upload_tab:
    uploaded = uploaded_picture()
    if uploaded is not None:
        picture, source = uploaded
        show_picture_prediction(picture, trained_models, source)
if draw_tab.open:
    with draw_tab:
        drawn = drawing()
        if drawn is not None:
            show_picture_prediction(drawn, trained_models)
else:
    st.session_state.pop(OPENED_WITH, None)  # Reopening starts the canvas from the last drawing.
# Last, because when the dataset is missing, dataset_or_stop explains how to get it and stops the script.
if test_tab.open:
    with test_tab:
        views.keep_view("predict", {views.EXAMPLE: st.session_state["test_index"]})
        show_test_image_prediction(trained_models)
else:
    views.keep_view("predict", {})  # The other tabs show what the student brought: nothing a link could carry.
