"""Module boundaries, read from the source (ast), like the security scans: no import cycle among fmnist_core modules,
and the core never imports the CLI, the pages or Streamlit.

Imports inside functions count too: a cycle that only closes at call time is still a knot a newcomer has to untie,
and "imported inside the function" must mean "kept off a light path", never "would be circular otherwise".
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "fmnist_core"
# The CLI: the command modules and `python -m fmnist_core`, which only starts it.
CLI = (f"{PACKAGE}.cli", f"{PACKAGE}.__main__")
FORBIDDEN_IN_CORE = ("pages", "streamlit", *CLI)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return (ROOT / relative).with_suffix(".py").is_file() or (ROOT / relative / "__init__.py").is_file()


def imports_of(path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function?) for every import in the file (the project imports absolutely)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    functions = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
    nested = {id(child) for function in functions for child in ast.walk(function) if child is not function}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, f"{path.relative_to(ROOT)}:{node.lineno}: a relative import"
            base = node.module
            # `from fmnist_core import report` imports the module fmnist_core.report.
            names = [f"{base}.{alias.name}" if is_module(f"{base}.{alias.name}") else base for alias in node.names]
        else:
            continue
        found += [(name, node.lineno, id(node) in nested) for name in names]
    return found


def project_modules() -> dict[str, Path]:
    files = [*sorted((ROOT / PACKAGE).rglob("*.py")), *sorted((ROOT / "pages").glob("*.py"))]
    return {module_name(path): path for path in files}


def import_graph(include_functions: bool = True) -> dict[str, set[str]]:
    """fmnist_core module → the fmnist_core modules it imports."""
    modules = project_modules()
    graph = {}
    for name, path in modules.items():
        if name.startswith(PACKAGE):
            graph[name] = {
                imported
                for imported, _, in_function in imports_of(path)
                if imported.startswith(PACKAGE) and imported in modules and imported != name
                if include_functions or not in_function
            }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan), each sorted."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for neighbour in sorted(graph.get(node, ())):
            if neighbour not in index:
                visit(neighbour)
                low[node] = min(low[node], low[neighbour])
            elif neighbour in on_stack:
                low[node] = min(low[node], index[neighbour])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_the_scan_sees_real_imports():
    """The control: the scan finds module-level, in-function and `from package import module` imports."""
    graph = import_graph()
    assert f"{PACKAGE}.models" in graph[f"{PACKAGE}.cache"]  # Module level.
    assert f"{PACKAGE}.mirror" in graph[f"{PACKAGE}.cache"]  # Inside load_model.
    assert f"{PACKAGE}.mirror" not in import_graph(include_functions=False)[f"{PACKAGE}.cache"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_among_the_core_modules():
    assert cycles(import_graph()) == []


def test_the_core_never_imports_the_cli_the_pages_or_streamlit():
    offences = [
        f"{path.relative_to(ROOT)}:{line} imports {imported}"
        for name, path in project_modules().items()
        if name.startswith(PACKAGE) and not name.startswith(CLI)
        for imported, line, _ in imports_of(path)
        if imported.split(".")[0] in FORBIDDEN_IN_CORE or imported.startswith(CLI)
    ]
    assert offences == []


def test_the_cli_never_imports_the_pages():
    offences = [
        f"{path.relative_to(ROOT)}:{line} imports {imported}"
        for name, path in project_modules().items()
        if name.startswith(CLI)
        for imported, line, _ in imports_of(path)
        if imported.split(".")[0] in ("pages", "streamlit")
    ]
    assert offences == []
