"""AppTest sessions as browsers: AppTest cannot send cookies, so a test stands the browser's cookies in here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

from fmnist_app import visitor as visitor_module


@contextmanager
def browser_of(visitor: str | None) -> Iterator[None]:
    """Sessions that connect meanwhile come from a browser whose cookie names `visitor` (None: a browser without it,
    such as another computer or a private window)."""
    cookies = {} if visitor is None else {visitor_module.COOKIE_NAME: visitor}
    with mock.patch.object(visitor_module, "browser_cookies", return_value=cookies):
        yield
