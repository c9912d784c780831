"""Dataset: look at Fashion-MNIST before training on it — pictures, balance, mean images, brightness, a 2-D map."""

import altair as alt
import numpy as np
import streamlit as st

from fmnist_app.common import dataset_or_stop, keep_widget_values, lazy_tabs, show_error
from fmnist_core.data import explore
from fmnist_core.data.fashion_mnist import CLASS_NAMES, IMAGE_SIZE, NUM_CLASSES, TEST_SET_IMAGES, TRAIN_SET_IMAGES
from fmnist_core.display import format_duration
from fmnist_core.errors import ConfigError

IMAGES_PER_PAGE = 40
DISPLAY_SCALE = 3  # 28 px pictures drawn at 84 px, square pixels kept sharp.
MEAN_SCALE = 5  # Ten mean images fit a row at 140 px.
MAP_SEED = 0
AUGMENTED_PICTURES = 8  # One row of pictures per batch.
TABS = ["Pictures", "Class balance", "Mean images", "Pixel histogram", "2-D map", "Augmentation"]
# Widgets inside the tabs, with their first values: kept while their tab is closed (keep_widget_values).
TAB_WIDGETS = {"grid_page": 1, "skip_background": True, "map_size": 1000, "map_tsne": False}
SPLITS = {"train": f"Training set ({TRAIN_SET_IMAGES:,})", "test": f"Test set ({TEST_SET_IMAGES:,})"}
CLASS_COLORS = alt.Scale(domain=list(CLASS_NAMES), scheme="tableau10")

# Cached computations: `split` (and the other hashed arguments) identify the arrays, which are passed
# unhashed (leading underscore) because hashing 47 MB of pixels on every rerun would cost more than the maths.


@st.cache_data(show_spinner=False, max_entries=4)
def cached_balance(split: str, _labels: np.ndarray):
    return explore.class_balance(_labels)


@st.cache_data(show_spinner=False, max_entries=16)
def cached_means(split: str, classes: tuple[int, ...], _images: np.ndarray, _labels: np.ndarray) -> np.ndarray:
    return explore.mean_images(_images, _labels, classes)


@st.cache_data(show_spinner=False, max_entries=16)
def cached_histogram(
    split: str, classes: tuple[int, ...], skip_background: bool, _images: np.ndarray, _labels: np.ndarray
):
    return explore.pixel_histogram(_images[explore.class_indices(_labels, classes)], skip_background=skip_background)


@st.cache_data(show_spinner=False, max_entries=8)
def cached_embedding(
    split: str, classes: tuple[int, ...], size: int, method: str, _images: np.ndarray, _labels: np.ndarray
) -> explore.Embedding:
    sample = explore.stratified_sample(_labels, classes, size, seed=MAP_SEED)
    return explore.embed(_images, _labels, sample, method=method, seed=MAP_SEED)


def show_pictures(images: np.ndarray, labels: np.ndarray, indices: np.ndarray) -> None:
    """The pictures at `indices`, enlarged, each captioned with its class."""
    st.image(
        list(explore.to_display(images[indices], DISPLAY_SCALE)),
        caption=[CLASS_NAMES[label] for label in labels[indices]],
        alt=[f"Picture #{index}: a {CLASS_NAMES[labels[index]]}, 28 × 28 grey pixels" for index in indices],
        output_format="PNG",
    )


@st.cache_data(show_spinner="Augmenting…", max_entries=2)
def cached_augmentation(preset: str, _images: np.ndarray):
    from fmnist_core.training.augmentation_preview import augmentation_preview

    return augmentation_preview(_images[:AUGMENTED_PICTURES], preset)


def augmentation_grid(images: np.ndarray) -> None:
    """The first training pictures as the full preset's training presents them, in four successive batches."""
    preview = cached_augmentation("full", images)
    st.caption(
        f"The first {AUGMENTED_PICTURES} training pictures (top row) as four batches of the `{preview.preset}` "
        "preset's training present them to the network: drawn by the training code itself."
    )
    for number, row in enumerate((preview.originals, *preview.views)):
        what = "as stored" if number == 0 else f"as training batch {number} presents it (flipped or shifted at random)"
        for position, (column, picture) in enumerate(zip(st.columns(AUGMENTED_PICTURES), row, strict=True), start=1):
            alt = f"Training picture {position}, {what}"
            column.image(np.kron(picture, np.ones((DISPLAY_SCALE, DISPLAY_SCALE))), clamp=True, alt=alt)
    st.markdown("\n".join(f"- **{lever}**: {purpose}" for lever, purpose in preview.levers))


def reset_page() -> None:
    st.session_state["grid_page"] = 1


def choose_data() -> tuple[str, tuple[int, ...]]:
    """Split and class widgets; returns (split, sorted class numbers), stopping with a hint when none is picked."""
    split_column, classes_column = st.columns([1, 3])
    split = split_column.radio("Split", SPLITS, format_func=SPLITS.get, on_change=reset_page)
    classes = classes_column.multiselect(
        "Classes",
        range(NUM_CLASSES),
        default=list(range(NUM_CLASSES)),
        format_func=CLASS_NAMES.__getitem__,
        on_change=reset_page,
    )
    if not classes:
        st.info("Pick at least one class to see its pictures.", icon="👆")
        st.stop()
    return split, tuple(sorted(classes))


def step_page(step: int) -> None:
    st.session_state["grid_page"] = st.session_state.get("grid_page", 1) + step


def picture_grid(images: np.ndarray, labels: np.ndarray, classes: tuple[int, ...]) -> None:
    page = explore.page_of(
        explore.class_indices(labels, classes), st.session_state.get("grid_page", 1), IMAGES_PER_PAGE
    )
    st.session_state["grid_page"] = page.page  # Clamped: the class filter may have shortened the list.
    previous, number, following, position = st.columns([1, 2, 1, 4], vertical_alignment="bottom")
    previous.button("◀ Previous", on_click=step_page, args=(-1,), disabled=page.page <= 1)
    number.number_input(f"Page (of {page.pages:,})", min_value=1, max_value=page.pages, key="grid_page")
    following.button("Next ▶", on_click=step_page, args=(1,), disabled=page.page >= page.pages)
    first = (page.page - 1) * IMAGES_PER_PAGE
    position.caption(f"Pictures {first + 1:,}–{first + len(page.indices):,} of {page.total:,}")
    show_pictures(images, labels, page.indices)


def class_balance(split: str, labels: np.ndarray, classes: tuple[int, ...]) -> None:
    table = cached_balance(split, labels)
    chart = (
        alt.Chart(table)
        .mark_bar()
        .encode(
            x=alt.X("count:Q", title="Pictures"),
            y=alt.Y("class_name:N", title=None, sort=list(CLASS_NAMES)),
            color=alt.condition(
                alt.FieldOneOfPredicate("class_index", list(classes)), alt.value("#4c78a8"), alt.value("#d3d3d3")
            ),
            tooltip=["class_name:N", alt.Tooltip("count:Q", format=","), alt.Tooltip("share:Q", format=".1%")],
        )
        .properties(height=300)
    )
    st.altair_chart(chart)
    st.caption(explore.balance_sentence(table, classes))


def mean_images(split: str, images: np.ndarray, labels: np.ndarray, classes: tuple[int, ...]) -> None:
    means = cached_means(split, classes, images, labels)
    st.image(
        list(explore.to_display(means, MEAN_SCALE)),
        caption=[CLASS_NAMES[c] for c in classes],
        alt=[f"The average of every {CLASS_NAMES[c]} picture, pixel by pixel" for c in classes],
        output_format="PNG",
    )
    st.caption(
        "The average of every picture in a class. The sharper the shape, the more alike the pictures: "
        "trousers and sneakers are crisp, while shirts, pullovers and coats look much the same — the "
        "classes a model mixes up most."
    )


def pixel_histogram(split: str, images: np.ndarray, labels: np.ndarray, classes: tuple[int, ...]) -> None:
    skip_background = st.checkbox(
        "Leave out the black background (pixel value 0)",
        key="skip_background",
        help="About half of every picture is pure black; it dwarfs everything else.",
    )
    table = cached_histogram(split, classes, skip_background, images, labels)
    chart = (
        alt.Chart(table)
        .mark_bar()
        .encode(
            x=alt.X("start:Q", bin="binned", title="Pixel brightness (0 = black, 255 = white)"),
            x2="end:Q",
            y=alt.Y("share:Q", title="Share of pixels", axis=alt.Axis(format="%")),
            tooltip=[
                alt.Tooltip("start:Q", title="from"),
                alt.Tooltip("end:Q", title="to"),
                alt.Tooltip("count:Q", format=","),
                alt.Tooltip("share:Q", format=".2%"),
            ],
        )
        .properties(height=300)
    )
    st.altair_chart(chart)
    st.caption(explore.histogram_sentence(table))


def embedding_map(split: str, images: np.ndarray, labels: np.ndarray, classes: tuple[int, ...]) -> None:
    size_column, method_column = st.columns(2)
    size = size_column.slider("Pictures on the map", min_value=200, max_value=2000, step=100, key="map_size")
    use_tsne = method_column.toggle(
        "Use t-SNE instead of PCA",
        key="map_tsne",
        help="PCA is a straight projection (instant); t-SNE keeps neighbours together "
        "and separates the classes better, but takes a while.",
    )
    method = "tsne" if use_tsne else "pca"
    if use_tsne:
        method_column.caption(
            f"t-SNE takes about {format_duration(explore.tsne_seconds_estimate(size))} for "
            f"{size:,} pictures (longer while a model trains); then it is remembered."
        )
    try:
        with st.spinner(f"Computing the {'t-SNE' if use_tsne else 'PCA'} map…"):
            embedding = cached_embedding(split, classes, size, method, images, labels)
    except ConfigError as error:
        show_error(error)
        return
    if embedding.explained_variance is not None:
        first, second = embedding.explained_variance
        x_title, y_title = f"PCA axis 1 ({first:.0%} of pixel variance)", f"PCA axis 2 ({second:.0%})"
    else:
        x_title, y_title = "t-SNE axis 1", "t-SNE axis 2"
    brush = alt.selection_interval(name="brush")
    chart = (
        alt.Chart(embedding.table)
        .mark_circle(size=36, opacity=0.75)
        .encode(
            x=alt.X("x:Q", title=x_title, axis=alt.Axis(labels=False)),
            y=alt.Y("y:Q", title=y_title, axis=alt.Axis(labels=False)),
            color=alt.Color("class_name:N", title="Class", scale=CLASS_COLORS),
            # Vega-Lite's tooltip draws a field called "image" holding a data URL as the picture itself.
            tooltip=[
                alt.Tooltip("image:N"),
                alt.Tooltip("class_name:N", title="class"),
                alt.Tooltip("index:Q", title="picture #"),
            ],
        )
        .add_params(brush)
        .properties(height=480)
    )
    event = st.altair_chart(chart, on_select="rerun", selection_mode="brush", key="embedding_map")
    st.caption(
        f"Each dot is one picture ({embedding.seconds:.1f} s to compute). Hover a dot to see it; drag a box "
        "to list the pictures inside below. Pictures that look alike land close together."
    )
    box = event.selection.get("brush") if event is not None else None
    if box and "x" in box and "y" in box:
        chosen = explore.points_in_box(embedding.table, box["x"], box["y"])
        st.write(
            f"**{len(chosen):,} pictures in the box**"
            + (f" (first {IMAGES_PER_PAGE} shown)" if len(chosen) > IMAGES_PER_PAGE else "")
        )
        show_pictures(images, labels, chosen["index"].to_numpy()[:IMAGES_PER_PAGE])


st.title("🖼️ The dataset")
st.write(
    f"{TRAIN_SET_IMAGES + TEST_SET_IMAGES:,} greyscale pictures of clothes, {IMAGE_SIZE}×{IMAGE_SIZE} pixels, in "
    f"{NUM_CLASSES} classes: look at them before training on them."
)
keep_widget_values(TAB_WIDGETS)
(train_images, train_labels), (test_images, test_labels) = dataset_or_stop()
data_split, picked_classes = choose_data()
split_images, split_labels = (train_images, train_labels) if data_split == "train" else (test_images, test_labels)
# Only the open tab is drawn: a class opening this page gets the pictures, and each chart only when asked for.
pictures_tab, balance_tab, means_tab, histogram_tab, map_tab, augmentation_tab = lazy_tabs(TABS, key="dataset_tab")
if pictures_tab.open:
    with pictures_tab:
        picture_grid(split_images, split_labels, picked_classes)
if balance_tab.open:
    with balance_tab:
        class_balance(data_split, split_labels, picked_classes)
if means_tab.open:
    with means_tab:
        mean_images(data_split, split_images, split_labels, picked_classes)
if histogram_tab.open:
    with histogram_tab:
        pixel_histogram(data_split, split_images, split_labels, picked_classes)
if map_tab.open:
    with map_tab:
        embedding_map(data_split, split_images, split_labels, picked_classes)
if augmentation_tab.open:
    with augmentation_tab:
        augmentation_grid(train_images)
