"""Links that open a view: each page writes its main choices into the address (st.query_params) and reads them back
when it is opened, so a teacher can send "Inside, Model 3, test image 123, against Shirt" as one address.

The reading is pure (`read_link`: parameters in, widget values and what was ignored out), so each rule is unit-tested
without Streamlit; `arrive` and `keep_view` are the two calls a page makes around its widgets. A bad or stale value
(an unknown model, image 99999, a model no longer cached) is dropped: the page opens with its defaults and one line
saying what was ignored. The address only ever names a view; who the visitor is lives in a cookie
(fmnist_app/visitor.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

import streamlit as st

from fmnist_core.data.fashion_mnist import CLASS_NAMES
from fmnist_core.store.cache import CacheEntry, best_entries

# The address's parameters, one name per kind of choice, shared by the pages that read them and the links to them.
MODEL = "model"  # A cache entry id, or a registry name (model3) for that model's most accurate cached entry.
IMAGE = "image"  # test:123 (a test image) or sketch (the last sketch drawn on Predict).
COMPARE = "compare"  # A class name, for Inside's "why this and not that?".
TRUE, PREDICTED = "true", "predicted"  # A confusion-matrix cell on Evaluate, as class names.
EXAMPLE = "example"  # A test image number on Predict.
PRESET = "preset"  # A Train page settings choice (quick, full, …).
SWEEP = "sweep"  # A recorded sweep's file name.
RACE = "race"  # A past or recorded race's file name.
TEST_IMAGE_PREFIX = "test:"


class IgnoredValue(ValueError):
    """A link's value a page cannot open on; its message says why, in a few words."""


@dataclass(frozen=True)
class Field:
    """One parameter a page reads: where its value goes and how it is checked."""

    parameter: str  # The name in the address.
    key: str | None  # The session-state key of the widget the value sets; None: `parse` returns {key: value}.
    parse: Callable[[str], object]  # Text → the widget's value; raises IgnoredValue saying why not.


def one_of(choices: Mapping[str, object] | Sequence[str], what: str) -> Callable[[str], object]:
    """A value that must be one of `choices` (a mapping: its keys, mapped to the widget's values)."""
    mapping = choices if isinstance(choices, Mapping) else {choice: choice for choice in choices}

    def parse(text: str) -> object:
        if text not in mapping:
            raise IgnoredValue(f"no {what} of that name")
        return mapping[text]

    return parse


def test_image_number(count: int, prefix: str = "") -> Callable[[str], int]:
    """`{prefix}N` with 0 ≤ N < count: a test image's number."""

    def parse(text: str) -> int:
        digits = text.removeprefix(prefix) if text.startswith(prefix) else ""
        if not (digits.isascii() and digits.isdigit()) or int(digits) >= count:
            raise IgnoredValue(f"no such test image (they are {prefix}0 to {prefix}{count - 1})")
        return int(digits)

    return parse


def cached_model(usable: Mapping[str, CacheEntry], also: Sequence[str] = ()) -> Callable[[str], object]:
    """A usable cache entry by id, or by registry name (model3: that model's most accurate entry); `also`: other
    choices the page's model picker offers (Inside's side by side)."""
    best = {name: entry.entry_id for name, entry in best_entries(list(usable.values())).items() if entry is not None}
    return one_of({**best, **{entry_id: entry_id for entry_id in [*usable, *also]}}, "cached model")


class_index = one_of({name: index for index, name in enumerate(CLASS_NAMES)}, "class")  # Shirt → 6
class_name = one_of(CLASS_NAMES, "class")  # For widgets that hold the name itself.


def test_image_link(index: int) -> str:
    """The ?image= value of a test image (test:123)."""
    return f"{TEST_IMAGE_PREFIX}{index}"


def read_link(parameters: Mapping[str, str], fields: Sequence[Field]) -> tuple[dict[str, object], list[str]]:
    """The widget values a link asks for, by session key, and one phrase per parameter ignored (unknown or bad)."""
    values: dict[str, object] = {}
    ignored: list[str] = []
    by_name = {field.parameter: field for field in fields}
    for name, text in parameters.items():
        field = by_name.get(name)
        if field is None:
            ignored.append(f"{name}={text} (this page reads {', '.join(by_name) or 'nothing'})")
            continue
        try:
            value = field.parse(text)
        except IgnoredValue as reason:
            ignored.append(f"{name}={text} ({reason})")
            continue
        values.update(value if field.key is None else {field.key: value})  # type: ignore[arg-type]
    return values, ignored


def ignored_line(ignored: Sequence[str]) -> str:
    """The one line a page shows for a link's ignored parts."""
    return f"The link asked for what this page cannot show, so it opened with its defaults there: {'; '.join(ignored)}."


def view_address(page_url: str | None, values: Mapping[str, str]) -> str:
    """The address of a view: the page's URL (st.context.url, no query) with its choices; just the query without it."""
    query = urlencode(values)
    return f"{page_url or ''}?{query}" if query else page_url or ""


# In the page -------------------------------------------------------------------------------------------------------


def _written_key(page: str) -> str:
    return f"view_written_{page}"


def arrive(page: str, fields: Sequence[Field]) -> dict[str, object]:
    """Call before the page's widgets: an address the page did not write itself (a link, a typed address) sets those
    widgets, and what it could not use is said in one line. The page's own write-backs are not read again.
    Returns the widget values it set, by session key."""
    parameters = st.query_params.to_dict()
    if not parameters or parameters == st.session_state.get(_written_key(page)):
        return {}
    values, ignored = read_link(parameters, fields)
    for key, value in values.items():
        st.session_state[key] = value
    st.session_state[_written_key(page)] = parameters
    if ignored:
        st.info(ignored_line(ignored), icon="🔗")
    return values


def keep_view(page: str, values: Mapping[str, object], where=None) -> None:
    """Call after the page's widgets: the address shows its choices now, and a button (in `where`, a container the
    page placed near its top, or here) gives it to copy. A None value is left out."""
    written = {name: str(value) for name, value in values.items() if value is not None}
    if st.query_params.to_dict() != written:
        st.query_params.from_dict(written)
    st.session_state[_written_key(page)] = written
    if not written:
        return  # Nothing a link could carry: the plain page address will do.
    with (where or st.container()).popover("🔗 Copy link to this view"):
        st.caption("Anyone who opens it sees this view; it carries no identity.")
        st.code(view_address(st.context.url, written), language=None)
