"""The router's first imports: one session at a time, so no session is handed a module another left half-done."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from fmnist_app import first_imports
from fmnist_app.first_imports import import_first, top_level_imports

# A module whose first import stops midway (as a session's import does when Streamlit interrupts its run), after
# waiting for the test to let it go; every later import completes.
FLAKY = """
import {gate}
{gate}.release.wait(10)
if not {gate}.failed_once:
    {gate}.failed_once = True
    raise RuntimeError("interrupted midway")
VALUE = 42
"""
GATE = "import threading\nrelease = threading.Event()\nfailed_once = False\n"


@pytest.fixture
def flaky_module(tmp_path, monkeypatch):
    """Write a fresh flaky module (and its gate) under a unique name; yield (module name, gate module)."""
    name = f"flaky_{time.monotonic_ns()}"
    (tmp_path / f"{name}_gate.py").write_text(GATE)
    (tmp_path / f"{name}.py").write_text(FLAKY.format(gate=f"{name}_gate"))
    monkeypatch.syspath_prepend(str(tmp_path))
    __import__(f"{name}_gate")
    yield name, sys.modules[f"{name}_gate"]
    for module in (name, f"{name}_gate"):
        sys.modules.pop(module, None)


def sessions_importing(name: str, gate, first_import) -> list[str]:
    """One session starts the first import; four more ask for the module while it runs; then it is let go.
    Returns what each of the four got: "ok" or the error."""
    outcomes: list[str] = []

    def first():
        try:
            first_import(name)
        except RuntimeError:
            pass  # The interrupted session: Streamlit reruns it; what matters is what the others got.

    def later():
        try:
            first_import(name)
            outcomes.append("ok" if sys.modules[name].VALUE == 42 else "wrong value")
        except Exception as error:
            outcomes.append(f"{type(error).__name__}: {error}")

    starter = threading.Thread(target=first)
    starter.start()
    deadline = time.monotonic() + 10
    while name not in sys.modules and time.monotonic() < deadline:
        time.sleep(0.005)
    others = [threading.Thread(target=later) for _ in range(4)]
    for thread in others:
        thread.start()
    time.sleep(0.3)  # They now wait for the module (or for the lock).
    gate.release.set()
    for thread in [starter, *others]:
        thread.join(10)
    return outcomes


def plain_import(name: str) -> None:
    exec(f"from {name} import VALUE", {})


def test_a_plain_concurrent_import_hands_out_a_half_done_module(flaky_module):
    """The hazard itself, in plain CPython: the sessions waiting on an import that stops midway get its remains."""
    outcomes = sessions_importing(*flaky_module, plain_import)
    assert outcomes and all(outcome.startswith("ImportError: cannot import name 'VALUE'") for outcome in outcomes)


def test_import_first_makes_the_others_wait_and_import_it_whole(flaky_module, monkeypatch):
    monkeypatch.setattr(first_imports, "_imported", set())
    outcomes = sessions_importing(*flaky_module, import_first)
    assert outcomes == ["ok"] * 4


def test_import_first_reads_a_scripts_top_level_imports(tmp_path, monkeypatch):
    script = tmp_path / "page.py"
    script.write_text(
        "from __future__ import annotations\n"
        "import json, csv\n"
        "from typing import TYPE_CHECKING\n"
        "from email import message\n"
        "from . import sibling\n"
        "if TYPE_CHECKING:\n    import decimal\n"
        "def later():\n    import fractions\n"
    )
    assert top_level_imports(script) == ["__future__", "json", "csv", "typing", "email"]
    monkeypatch.setattr(first_imports, "APP_ROOT", tmp_path)
    monkeypatch.setattr(first_imports, "_imported", set())
    import_first("page.py")
    assert first_imports._imported == {"page.py"} and "email" in sys.modules


def test_every_page_the_router_runs_has_its_imports_readable():
    """The router calls import_first on each page's script: every one must parse (a syntax error would be a page
    that never opens) and name only absolute modules it can find."""
    import importlib.util

    pages = sorted((first_imports.APP_ROOT / "pages").glob("*.py"))
    assert len(pages) >= 8
    for page in pages:
        for name in top_level_imports(page):
            assert importlib.util.find_spec(name) is not None, f"{page.name} imports {name}, which is not installed"
