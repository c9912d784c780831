"""Accessibility the code can promise: every picture a page draws has a text alternative, and headings step down
one level at a time. tests/test_browser.py runs axe-core over every page in Chromium for the rest."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP_CODE = sorted([*(ROOT / "pages").glob("*.py"), *(ROOT / "fmnist_app").glob("*.py")])


def calls(attribute: str):
    """(file, call) for every `<something>.<attribute>(…)` call in the pages and the app package."""
    for path in APP_CODE:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == attribute:
                yield path.relative_to(ROOT), node


def test_every_picture_has_a_text_alternative():
    # Streamlit's caption never becomes an image's alt text: without `alt=` a screen reader hears nothing.
    found = list(calls("image"))
    assert len(found) >= 10
    missing = [f"{path}:{call.lineno}" for path, call in found if not any(k.arg == "alt" for k in call.keywords)]
    assert not missing, missing


def test_no_page_skips_a_heading_level():
    # st.title is h1: sections under it are st.header (h2), never st.subheader (h3) nor a Markdown h3-h6.
    assert not [f"{path}:{call.lineno}" for path, call in calls("subheader")]
    deep = [
        f"{path}:{node.lineno}"
        for path in APP_CODE
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.lstrip().startswith("###")
    ]
    assert not deep, deep


def test_the_makefile_installs_the_axe_core_the_tests_look_for():
    from devtools.accessibility import AXE_CORE_VERSION, AXE_SCRIPT

    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert f"AXE_CORE_VERSION := {AXE_CORE_VERSION}\n" in makefile
    assert f"AXE_SCRIPT := {AXE_SCRIPT.relative_to(ROOT)}\n" in makefile
    assert "axe lint" in makefile.split("\ntest:", 1)[1].splitlines()[0]  # `make test` installs it first.
