"""Evaluate: one trained model on the 10,000 test images — accuracy, the confusion matrix, and the mistakes.

Everything shown comes from the evaluation stored with the cache entry when it was trained, so the page
never re-runs the model; the test images themselves come from the dataset for the mistake gallery.
"""

import altair as alt
import pandas as pd
import streamlit as st

from fmnist_app import views
from fmnist_app.common import (
    dataset_or_stop,
    learning_curves_chart,
    link_to_page,
    load_model,
    usable_entries_or_stop,
)
from fmnist_core.data.fashion_mnist import CLASS_NAMES, TEST_SET_IMAGES
from fmnist_core.display import format_accuracy
from fmnist_core.evaluate import confusion
from fmnist_core.evaluate.evaluation import Evaluation
from fmnist_core.evaluate.gallery import GalleryImage, model_gallery
from fmnist_core.report.commentary import learning_curve_summary, mirror_note
from fmnist_core.store.cache import CacheEntry

CHART_KEY = "confusion_chart"
ENTRY_KEY = "evaluate_entry"
PAIR_FOR_KEY = "mistakes_for_entry"  # The entry whose most confused pair the cell pickers were set to.
TRUE_KEY, PREDICTED_KEY = "mistakes_true_class", "mistakes_predicted_class"
GALLERY_LIMIT = 40  # Images shown at once, most confident mistakes first.
GALLERY_COLUMNS = 8
IMAGE_WIDTH = 84  # Pixels: 3× the 28×28 originals.


@st.cache_data(show_spinner=False, max_entries=16)
def confusion_cells(matrix: list[list[int]]) -> pd.DataFrame:
    return confusion.confusion_cells(matrix)


def follow_link(usable: dict[str, CacheEntry]) -> None:
    """A link (the Home page's "See what Model 3 gets wrong", a teacher's) sets the model and the mistakes' cell."""
    linked = views.arrive(
        "evaluate",
        [
            views.Field(views.MODEL, ENTRY_KEY, views.cached_model(usable)),
            views.Field(views.TRUE, TRUE_KEY, views.class_index),
            views.Field(views.PREDICTED, PREDICTED_KEY, views.class_index),
        ],
    )
    if TRUE_KEY in linked or PREDICTED_KEY in linked:  # The cell is the link's, not the model's most confused pair.
        st.session_state[PAIR_FOR_KEY] = st.session_state.get(ENTRY_KEY, next(iter(usable)))


def pick_entry() -> CacheEntry:
    """The chosen usable cache entry; without one, say how to get one and stop."""
    usable = usable_entries_or_stop()
    follow_link(usable)
    if st.session_state.get(ENTRY_KEY) not in usable:
        st.session_state[ENTRY_KEY] = next(iter(usable))
    chosen = st.selectbox("Model", list(usable), format_func=lambda entry_id: usable[entry_id].label, key=ENTRY_KEY)
    st.caption(f"{usable[chosen].title}: {usable[chosen].provenance}.")
    return usable[chosen]


def select_clicked_cell() -> None:
    """A click on a heatmap cell drives the two 'true class / predicted as' boxes, the single source of truth."""
    points = (st.session_state[CHART_KEY].get("selection") or {}).get("cell") or []
    if points and "true_index" in points[0] and "predicted_index" in points[0]:
        st.session_state[TRUE_KEY] = int(points[0]["true_index"])
        st.session_state[PREDICTED_KEY] = int(points[0]["predicted_index"])


def heatmap(cells: pd.DataFrame, normalised: bool) -> alt.LayerChart:
    value = "row_share" if normalised else "count"
    cell = alt.selection_point(name="cell", fields=["true_index", "predicted_index"], empty=False)
    base = alt.Chart(cells).encode(
        x=alt.X(
            "predicted_class:N",
            sort=list(CLASS_NAMES),
            title="Predicted as",
            axis=alt.Axis(labelAngle=-40, labelOverlap=False),
        ),
        y=alt.Y("true_class:N", sort=list(CLASS_NAMES), title="True class"),
        tooltip=[
            alt.Tooltip("true_class:N", title="True class"),
            alt.Tooltip("predicted_class:N", title="Predicted as"),
            alt.Tooltip("count:Q", title="Images", format=","),
            alt.Tooltip("row_share:Q", title="Share of the true class", format=".1%"),
        ],
    )
    # A square-root colour scale keeps the small off-diagonal mistakes visible next to the big diagonal.
    squares = (
        base.mark_rect(cursor="pointer")
        .encode(
            color=alt.Color(
                f"{value}:Q",
                scale=alt.Scale(type="sqrt", scheme="blues"),
                title="Share of row" if normalised else "Images",
                legend=alt.Legend(format=".0%" if normalised else ",.0f"),
            ),
            stroke=alt.condition(cell, alt.value("#e4572e"), alt.value(None)),
            strokeWidth=alt.condition(cell, alt.value(3), alt.value(0)),
        )
        .add_params(cell)
    )
    labels = (
        base.transform_filter(alt.datum.count > 0)
        .transform_joinaggregate(largest=f"max({value})")
        .mark_text(fontSize=11)
        .encode(
            text=alt.Text(f"{value}:Q", format=".0%" if normalised else ","),
            color=alt.condition(f"datum.{value} > 0.3 * datum.largest", alt.value("white"), alt.value("#262730")),
        )
    )
    return (squares + labels).properties(height=460)


def pick_pair(evaluation: Evaluation) -> tuple[int, int]:
    """The (true, predicted) pair to show; starts on the model's most confused pair."""
    entry_id = st.session_state[ENTRY_KEY]
    if st.session_state.get(PAIR_FOR_KEY) != entry_id:
        st.session_state[PAIR_FOR_KEY] = entry_id
        top = confusion.most_confused(evaluation.confusion_matrix, top=1)
        pair = (top[0].true_class, top[0].predicted_class) if top else (6, 0)
        st.session_state[TRUE_KEY], st.session_state[PREDICTED_KEY] = pair
    left, right = st.columns(2)
    classes = list(range(len(CLASS_NAMES)))
    true_class = left.selectbox("True class", classes, format_func=CLASS_NAMES.__getitem__, key=TRUE_KEY)
    predicted = right.selectbox("Predicted as", classes, format_func=CLASS_NAMES.__getitem__, key=PREDICTED_KEY)
    return true_class, predicted


def mistakes_gallery(evaluation: Evaluation, true_class: int, predicted: int) -> None:
    if true_class == predicted:
        count = evaluation.confusion_matrix[true_class][predicted]
        st.info(
            f"That cell counts the {count:,} {CLASS_NAMES[true_class]} images the model got right. "
            "Pick a cell off the diagonal to see mistakes.",
            icon="✅",
        )
        return
    (_, _), (x_test, _) = dataset_or_stop()
    recorded = evaluation.test_images
    if recorded != len(x_test):
        st.warning(
            f"This model was evaluated on {recorded:,} test images, but the test set here has "
            f"{len(x_test):,}: the pictures below may not be the ones it saw.",
            icon="⚠️",
        )
    images = confusion.mistaken_images(evaluation, true_class, predicted, len(x_test))
    if not images:
        st.success(f"No {CLASS_NAMES[true_class]} was taken for {CLASS_NAMES[predicted]}.", icon="🎉")
        return
    shown = images[:GALLERY_LIMIT]
    st.caption(
        f"{len(images):,} {CLASS_NAMES[true_class]} images were taken for {CLASS_NAMES[predicted]}"
        + (f"; the {len(shown)} the model was surest about:" if len(images) > len(shown) else ":")
    )
    for start in range(0, len(shown), GALLERY_COLUMNS):
        for column, image in zip(st.columns(GALLERY_COLUMNS), shown[start : start + GALLERY_COLUMNS], strict=False):
            column.image(
                x_test[image.index],
                caption=image.caption,
                alt=f"Test image #{image.index}: a {CLASS_NAMES[true_class]} that {entry.title} took for a "
                f"{CLASS_NAMES[predicted]}, {image.confidence:.0%} confident",
                width=IMAGE_WIDTH,
            )
            with column:  # Where this model found its evidence for the wrong answer.
                link = {views.MODEL: st.session_state[ENTRY_KEY], views.IMAGE: views.test_image_link(image.index)}
                link_to_page("pages/inside.py", "Why?", icon="🔬", query_params=link)


@st.cache_data(show_spinner="Asking the model about every test image…", max_entries=16)
def cached_gallery(entry_id: str, checksum: str, kind: str, _model, _images, _labels) -> tuple[GalleryImage, ...]:
    return model_gallery(_model, _images, _labels, kind, GALLERY_LIMIT)


def ranked_gallery(entry: CacheEntry) -> None:
    """The most confident mistakes or the most ambiguous test images, each linked to Fool and Inside."""
    kind = st.radio(
        "Show",
        ["confident-wrong", "ambiguous"],
        format_func={"confident-wrong": "Confident mistakes", "ambiguous": "Most ambiguous"}.get,
        horizontal=True,
        key="evaluate_gallery",
    )
    model = load_model(entry)
    if model is None:
        return
    (_, _), (x_test, y_test) = dataset_or_stop()
    images = cached_gallery(entry.entry_id, entry.record.model_sha256, kind, model, x_test, y_test)
    for start in range(0, len(images), GALLERY_COLUMNS):
        for column, image in zip(st.columns(GALLERY_COLUMNS), images[start : start + GALLERY_COLUMNS], strict=False):
            second = f" · then {CLASS_NAMES[image.second]} (gap {image.margin:.0%})" if kind == "ambiguous" else ""
            picture = views.test_image_link(image.index)
            alt = f"Test image #{image.index}, a {CLASS_NAMES[image.label]}: {image.caption}{second}"
            column.image(x_test[image.index], caption=image.caption + second, width=IMAGE_WIDTH, alt=alt)
            with column:
                link_to_page("pages/fool.py", "Fool", icon="🎭", query_params={views.IMAGE: picture})
                inside = {views.MODEL: entry.entry_id, views.IMAGE: picture}
                link_to_page("pages/inside.py", "Why?", icon="🔬", query_params=inside)


st.title("🔍 Evaluate a model")
st.write(
    f"How one trained model does on the {TEST_SET_IMAGES:,} test images it never saw: where it is right, where it "
    "is wrong, and which pictures fool it."
)

link_slot = st.container()
entry = pick_entry()
evaluation = entry.record.evaluation

accuracy, loss, macro_f1, speed = st.columns(4)
accuracy.metric("Test accuracy", format_accuracy(evaluation.test_accuracy), help=mirror_note(entry.record))
loss.metric("Test loss", f"{evaluation.test_loss:.3f}", help="Cross-entropy: lower is better.")
macro_f1.metric("Macro F1", f"{evaluation.macro_f1:.3f}", help="The mean of the ten per-class F1 scores.")
speed.metric("Inference images/s", f"{evaluation.images_per_second:,.0f}", help="Whole test set, batches of 1,024.")

st.header("Confusion matrix")
st.caption(
    "Rows are the true class, columns what the model answered; the diagonal is right, everything else "
    "is a mistake. **Click a cell** to see those pictures below."
)
normalised = st.toggle("Row-normalised (share of each true class)", key="confusion_normalised")
st.altair_chart(
    heatmap(confusion_cells(evaluation.confusion_matrix), normalised),
    key=CHART_KEY,
    on_select=select_clicked_cell,
    selection_mode="cell",
    width="stretch",
)

pairs, classes = st.columns([2, 3])
with pairs:
    st.markdown("**Most confused pairs**")
    ranked = confusion.most_confused(evaluation.confusion_matrix)
    st.markdown(
        "\n".join(f"{rank}. {pair.describe()}" for rank, pair in enumerate(ranked, start=1)) or "No mistakes at all."
    )
with classes:
    st.markdown(
        "**Per class** (precision: when it says this class, how often it is right; recall: how many "
        "of this class it finds)"
    )
    st.dataframe(
        confusion.per_class_table(evaluation),
        hide_index=True,
        width="stretch",
        column_config={
            "class": "Class",
            "precision": st.column_config.NumberColumn("Precision", format="%.3f"),
            "recall": st.column_config.NumberColumn("Recall", format="%.3f"),
            "f1": st.column_config.NumberColumn("F1", format="%.3f"),
            "support": st.column_config.NumberColumn("Test images", format="%d"),
        },
    )

st.header("Which pictures were mistaken?")
true_class, predicted = pick_pair(evaluation)
mistakes_gallery(evaluation, true_class, predicted)
views.keep_view(
    "evaluate",
    {views.MODEL: entry.entry_id, views.TRUE: CLASS_NAMES[true_class], views.PREDICTED: CLASS_NAMES[predicted]},
    link_slot,
)

st.header("Confident mistakes and ambiguous pictures")
st.caption(
    "The test images this model gets wrong with the highest confidence, or those where its top two classes are "
    "closest. It asks the model about all 10,000 test images, so it runs when you switch it on."
)
if st.toggle("Show them", key="evaluate_ranked"):
    ranked_gallery(entry)

st.header("Learning curves")
st.caption(learning_curve_summary(entry.record.history))
st.altair_chart(learning_curves_chart(entry.record.history), width="stretch")
