"""Module boundaries, read from the source (ast), like the security scans: no import cycle among fmnist_core modules,
the capability packages import only those below them in PACKAGE_ORDER, and the core never imports the CLI, the app
or Streamlit.

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
FORBIDDEN_IN_CORE = ("pages", "fmnist_app", "devtools", "streamlit", *CLI)
# The capability packages, lowest first; docs/architecture.md draws the same order. A package may import the shared
# leaves (the modules directly in fmnist_core/) and any package before it here, never one after it.
PACKAGE_ORDER = (
    "jobs",
    "data",
    "models",
    "evaluate",
    "store",
    "training",
    "engine",
    "explain",
    "race",
    "sweep",
    "report",
    "cli",
)
# The shared leaves stay few and import no capability package.
MOST_LEAVES = 10


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
            # `from fmnist_core import report` imports the module fmnist_core.report.comparison.
            names = [f"{base}.{alias.name}" if is_module(f"{base}.{alias.name}") else base for alias in node.names]
        else:
            continue
        found += [(name, node.lineno, id(node) in nested) for name in names]
    return found


def project_modules() -> dict[str, Path]:
    files = [*sorted((ROOT / PACKAGE).rglob("*.py")), *sorted((ROOT / "pages").glob("*.py"))]
    files += sorted((ROOT / "fmnist_app").glob("*.py"))
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
    cache = f"{PACKAGE}.store.cache"
    assert f"{PACKAGE}.models.registry" in graph[cache]  # Module level.
    assert f"{PACKAGE}.models.mirror" in graph[cache]  # Inside load_model.
    assert f"{PACKAGE}.models.mirror" not in import_graph(include_functions=False)[cache]
    assert package_of(f"{PACKAGE}.store.cache") == "store" and package_of(f"{PACKAGE}.errors") is None
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


def package_of(module: str) -> str | None:
    """The capability package a core module belongs to; None for a shared leaf (or the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in PACKAGE_ORDER) else None


def test_every_capability_package_is_in_the_order_and_says_what_it_is_for():
    packages = {path.parent.name for path in (ROOT / PACKAGE).glob("*/__init__.py")}
    assert packages == set(PACKAGE_ORDER)
    for name in PACKAGE_ORDER:
        docstring = ast.get_docstring(ast.parse((ROOT / PACKAGE / name / "__init__.py").read_text(encoding="utf-8")))
        assert docstring, f"fmnist_core/{name}/__init__.py has no docstring saying what the package is for"


def test_packages_import_only_the_leaves_and_the_packages_below_them():
    rank = {name: position for position, name in enumerate(PACKAGE_ORDER)}
    offences = []
    for module, imported in import_graph().items():
        source = package_of(module)
        if module in CLI:
            continue  # `python -m fmnist_core` only starts the CLI.
        for target in imported:
            below = package_of(target)
            if below is None or below == source:
                continue
            if source is None:
                offences.append(f"the shared leaf {module} imports {target}")
            elif rank[below] > rank[source]:
                offences.append(f"{module} ({source}) imports {target} ({below}), which comes after it")
    assert offences == []


def test_the_shared_leaves_stay_few():
    leaves = [path.stem for path in (ROOT / PACKAGE).glob("*.py") if path.stem not in ("__init__", "__main__")]
    assert len(leaves) <= MOST_LEAVES, sorted(leaves)


def python_files_outside_tests() -> list[Path]:
    folders = (PACKAGE, "fmnist_app", "devtools", "pages", "benchmarks", "scripts")
    return [path for folder in folders for path in sorted((ROOT / folder).rglob("*.py"))] + [ROOT / "streamlit_app.py"]


def test_nothing_outside_tests_imports_the_tests_and_nothing_edits_sys_path():
    """The project is installed (`pip install -e .`): the shared harness is `devtools`, never `tests`, and no file
    makes itself importable by hand."""
    offences = []
    for path in python_files_outside_tests():
        where = path.relative_to(ROOT)
        offences += [f"{where}:{line} imports {name}" for name, line, _ in imports_of(path) if name.startswith("tests")]
        text = path.read_text(encoding="utf-8")
        offences += [f"{where} calls {call}" for call in ("sys.path.insert", "sys.path.append") if call in text]
    assert offences == []
