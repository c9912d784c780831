"""The reading of links that open a view (fmnist_app/views.py): pure functions, no Streamlit session."""

from __future__ import annotations

import pytest

from fmnist_app import views
from fmnist_core.data.fashion_mnist import CLASS_NAMES

IMAGE = views.test_image_number(10_000, views.TEST_IMAGE_PREFIX)
FIELDS = [
    views.Field(views.IMAGE, "index", IMAGE),
    views.Field(views.COMPARE, "other", views.class_name),
    views.Field(views.TRUE, None, lambda text: {"true": views.class_index(text), "pair_set": True}),
]


@pytest.mark.parametrize("text, number", [("test:0", 0), ("test:123", 123), ("test:9999", 9999)])
def test_a_test_image_is_named_by_its_number(text, number):
    assert IMAGE(text) == number


@pytest.mark.parametrize(
    "text", ["test:10000", "test:99999", "test:-1", "test:", "test:1e3", "test:٣", "123", "train:5", "test:12 "]
)
def test_an_image_out_of_range_or_of_another_shape_is_ignored_with_the_range(text):
    with pytest.raises(views.IgnoredValue, match="test:0 to test:9999"):
        IMAGE(text)


def test_a_link_sets_the_widgets_it_names_and_lists_what_it_ignored():
    values, ignored = views.read_link(
        {"image": "test:123", "compare": "Shirt", "true": "T-shirt/top", "visitor": "a" * 32}, FIELDS
    )
    assert values == {"index": 123, "other": "Shirt", "true": CLASS_NAMES.index("T-shirt/top"), "pair_set": True}
    assert ignored == [f"visitor={'a' * 32} (this page reads image, compare, true)"]


def test_bad_values_are_each_ignored_and_the_good_ones_kept():
    values, ignored = views.read_link({"image": "test:99999", "compare": "Hat", "true": "Shirt"}, FIELDS)
    assert values == {"true": CLASS_NAMES.index("Shirt"), "pair_set": True}
    assert ignored == [
        "image=test:99999 (no such test image (they are test:0 to test:9999))",
        "compare=Hat (no class of that name)",
    ]
    line = views.ignored_line(ignored)
    assert line.count("\n") == 0 and "image=test:99999" in line and "compare=Hat" in line


def test_a_choice_is_one_of_the_page_s_options_mapped_to_the_widget_s_value():
    parse = views.one_of({"2026-11-30-race.json": 0, "other.json": 1}, "recorded race")
    assert parse("other.json") == 1
    with pytest.raises(views.IgnoredValue, match="no recorded race of that name"):
        parse("../../etc/passwd")


def test_a_model_is_named_by_its_cache_entry_or_by_the_registry_name_of_its_best_entry(tmp_path):
    from fmnist_core.config import PRESETS
    from fmnist_core.models.registry import get_spec
    from fmnist_core.store.cache import ModelCache
    from tests.records import StandInModel, make_record

    cache = ModelCache(tmp_path)
    entry = cache.save(StandInModel(), make_record(get_spec("model1"), PRESETS["quick"]))
    usable = {entry.entry_id: entry}
    parse = views.cached_model(usable, also=["side-by-side"])
    assert parse(entry.entry_id) == parse("model1") == entry.entry_id
    assert parse("side-by-side") == "side-by-side"
    for stale in ("model3", "model3-0123456789ab", "model1-"):
        with pytest.raises(views.IgnoredValue, match="no cached model of that name"):
            parse(stale)


def test_the_address_of_a_view_is_the_page_and_its_choices():
    assert (
        views.view_address("http://school:8501/inside", {"model": "model3", "image": "test:123", "compare": "Shirt"})
        == "http://school:8501/inside?model=model3&image=test%3A123&compare=Shirt"
    )
    assert views.view_address(None, {"example": "7"}) == "?example=7"
    assert views.view_address("http://school:8501/race", {}) == "http://school:8501/race"
