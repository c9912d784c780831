"""Fool the model: the smallest change of a test image that changes a model's answer, the same image for the three
widths side by side, and each width's accuracy under attack (recorded with the app).

A page of its own rather than a section of Inside: Inside explains what a model computes for a picture, this page
changes the picture, and its robustness curves are about the three models together, not one.

Widgets → one call into fmnist_core.evaluate.attack per model → pictures from fmnist_core.evaluate.predict.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from fmnist_app import views
from fmnist_app.common import dataset_or_stop, link_to_page, load_model, usable_entries_or_stop
from fmnist_core.data.fashion_mnist import CLASS_NAMES
from fmnist_core.evaluate import attack
from fmnist_core.evaluate.predict import pixelated
from fmnist_core.evaluate.robustness import recorded, width_sentence
from fmnist_core.models.registry import MODEL_SPECS
from fmnist_core.store.cache import CacheEntry, best_entries

PICTURE_WIDTH = 196  # 28 × 7: three pictures and their captions fit in a column.
DEFAULT_IMAGE = 0


@st.cache_resource(show_spinner="Preparing the attack…", max_entries=4)
def _attacker(entry_id: str, checksum: str, _model) -> attack.Attacker:
    return attack.Attacker(_model)


@st.cache_data(show_spinner=False, max_entries=64)
def cached_change(entry_id: str, checksum: str, index: int, _attacker, _image, label: int) -> attack.SmallestChange:
    return attack.smallest_change(_attacker, _image, label)


def smallest_change_for(entry: CacheEntry, index: int, image, label: int) -> attack.SmallestChange | None:
    model = load_model(entry)
    if model is None:
        return None
    attacker = _attacker(entry.entry_id, entry.record.model_sha256, model)
    with st.spinner(f"Searching the smallest change that fools {entry.title}…"):
        return cached_change(entry.entry_id, entry.record.model_sha256, index, attacker, image, label)


def top_three(scores) -> pd.DataFrame:
    return pd.DataFrame(
        {"class": [score.name for score in scores], "probability": [score.probability for score in scores]}
    )


def budget_words(result: attack.SmallestChange) -> str:
    return f"{attack.grey_levels(result.epsilon):.0f} of 255 grey levels (ε = {result.epsilon:.4f})"


def show_change(result: attack.SmallestChange) -> None:
    if not result.fooled:
        st.info("No change of up to 255 grey levels changed this model's answer.", icon="🛡️")
        return
    change, scale = attack.change_picture(result.change)
    first, fooled = result.before[0], result.after[0]
    pictures = (
        (
            result.original,
            f"Original: {first.name}",
            f"The test picture the model reads as {first.name} ({first.probability:.0%})",
        ),
        (
            change,
            f"The change, amplified: white +{scale * 255:.0f}, black −{scale * 255:.0f} grey levels, grey none",
            f"The change added to the picture, amplified; at most {budget_words(result)}",
        ),
        (
            result.adversarial,
            f"Fooled: {fooled.name}",
            f"The changed picture, which the model reads as {fooled.name} ({fooled.probability:.0%})",
        ),
    )
    for column, (picture, caption, words) in zip(st.columns(3), pictures, strict=True):
        column.image(pixelated(picture), caption=caption, alt=words, width=PICTURE_WIDTH)
    st.markdown(
        f"**{result.before[0].name} → {result.after[0].name}** with a change of at most {budget_words(result)}."
    )
    before, after = st.columns(2)
    before.caption("Top 3 before")
    before.dataframe(top_three(result.before), hide_index=True, column_config={"probability": percent_column()})
    after.caption("Top 3 after")
    after.dataframe(top_three(result.after), hide_index=True, column_config={"probability": percent_column()})


def percent_column():
    return st.column_config.ProgressColumn("probability", format="percent", min_value=0, max_value=1)


def side_by_side(entries: dict[str, CacheEntry | None], index: int, image, label: int) -> None:
    columns = st.columns(len(entries))
    for column, (name, entry) in zip(columns, entries.items(), strict=True):
        with column:
            if entry is None:
                st.caption(f"{MODEL_SPECS[name].title}: not trained yet.")
                continue
            result = smallest_change_for(entry, index, image, label)
            if result is None or not result.fooled:
                st.caption(f"{entry.title}: not fooled.")
                continue
            words = f"{entry.title} fooled: it reads this changed picture as {result.after[0].name}"
            st.image(pixelated(result.adversarial), alt=words, width=PICTURE_WIDTH)
            st.markdown(f"**{entry.title}**: {result.before[0].name} → {result.after[0].name}")
            st.caption(budget_words(result))


def robustness_curves() -> None:
    records, problems = recorded()
    for problem in problems:
        st.warning(f"A recorded robustness file could not be read: {problem}", icon="🩹")
    if not records:
        st.info("No robustness recorded for these models yet (scripts/record_robustness.py records it).", icon="ℹ️")
        return
    rows = [
        {"model": record.title, "grey levels": epsilon * 255, "accuracy": accuracy, "attack": name}
        for record in records
        for name, accuracies in (("PGD", record.pgd_accuracy), ("FGSM", record.fgsm_accuracy))
        for epsilon, accuracy in zip(record.epsilons, accuracies, strict=True)
    ]
    chart = (
        alt.Chart(pd.DataFrame(rows))
        .mark_line(point=True)
        .encode(
            x=alt.X("grey levels:Q", title="ε: largest change per pixel (grey levels of 255)"),
            y=alt.Y("accuracy:Q", title="Accuracy under attack", axis=alt.Axis(format="%")),
            color=alt.Color("model:N", title="Model"),
            strokeDash=alt.StrokeDash("attack:N", title="Attack", sort=["PGD", "FGSM"]),
            tooltip=[
                "model",
                "attack",
                alt.Tooltip("grey levels:Q", format=".0f"),
                alt.Tooltip("accuracy:Q", format=".1%"),
            ],
        )
    )
    st.altair_chart(chart, width="stretch")
    st.markdown(width_sentence(records))
    first = records[0]
    st.caption(
        f"PGD: {first.steps} steps, the first a full-ε FGSM step; FGSM: one step. Measured on {first.machine}, "
        f"{first.created[:10]}, with `{first.command}` (a picture counts as fooled only when the saved model changes "
        "its answer)."
    )


def main() -> None:
    st.title("Fool the model")
    st.caption(
        "A change of a few grey levels, invisible to a person, can change a network's answer. Pick a test image and a "
        "model: the app finds the smallest such change (projected gradient descent, searched over its size)."
    )
    entries = usable_entries_or_stop()
    (_, _), (test_images, test_labels) = dataset_or_stop()
    link_slot = st.container()
    # ?image=test:123 (the Evaluate page's galleries, a teacher's link): checked as every page's links are.
    picture = views.test_image_number(len(test_images), views.TEST_IMAGE_PREFIX)
    views.arrive("fool", [views.Field(views.IMAGE, "fool_image", picture)])
    st.session_state.setdefault("fool_image", DEFAULT_IMAGE)
    left, right = st.columns([1, 2])
    index = int(
        left.number_input("Test image", 0, len(test_images) - 1, key="fool_image", help="Its place in the test set")
    )
    views.keep_view("fool", {views.IMAGE: views.test_image_link(index)}, link_slot)
    label = int(test_labels[index])
    left.caption(f"True class: **{CLASS_NAMES[label]}**")
    best = best_entries(entries.values())
    choices = [entry for entry in best.values() if entry is not None]
    chosen = right.selectbox("Model", choices, format_func=lambda entry: entry.label)
    result = smallest_change_for(chosen, index, test_images[index], label)
    if result is not None:
        show_change(result)
        link_to_page(
            "pages/inside.py",
            "What does it look at? (Inside)",
            icon="🔬",
            query_params={views.IMAGE: views.test_image_link(index)},
        )

    st.header("The same image, three widths")
    st.caption("Which width needed the larger change? Each model's smallest change for this image.")
    if st.toggle("Attack all three models", key="fool_all"):
        side_by_side(best, index, test_images[index], label)

    st.header("Robustness per width")
    robustness_curves()


main()
