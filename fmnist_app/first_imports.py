"""The modules a page imports at its top, imported the first time by one session at a time.

A class opening a freshly started server sends every browser's first script run at once, and each session's thread
then imports the same modules for the first time together. CPython makes the others wait for the first importer,
but when that import stops midway (an exception; Streamlit stopping that session's run) it hands them what was left
of the module, and their pages show an ImportError (tests/test_first_imports.py shows it in plain Python). Measured:
`benchmarks/classroom_load.py --uploads-only --sessions 20` on a cold server, 4 of 20 Home pages said "cannot
import name 'visitor_id' from 'fmnist_app.visitor'". So the router
imports what the chosen page imports, under one lock, before running it; sessions arriving meanwhile wait for it,
then find every module whole. After the first time it costs a set lookup. (TensorFlow, imported later by the pages
that need it, has its own lock: `fmnist_core.machine.import_tensorflow`.)

Standard library only: this module is itself imported by many sessions at once.
"""

from __future__ import annotations

import ast
import importlib
import threading
from pathlib import Path

APP_ROOT = Path(__file__).resolve().parent.parent
_LOCK = threading.Lock()
_imported: set[str] = set()


def top_level_imports(script: Path) -> list[str]:
    """The absolute module names a script imports at its top level (not inside functions or `if` blocks)."""
    names: list[str] = []
    for node in ast.parse(script.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return list(dict.fromkeys(names))


def import_first(*modules_or_scripts: str) -> None:
    """Import each dotted module name, or what each script (a path from the app's root) imports at its top; the
    first time one session at a time, afterwards nothing."""
    if all(item in _imported for item in modules_or_scripts):
        return
    with _LOCK:
        for item in modules_or_scripts:
            if item in _imported:
                continue
            names = top_level_imports(APP_ROOT / item) if item.endswith(".py") else [item]
            for name in names:
                importlib.import_module(name)
            _imported.add(item)
