"""The services import each other in one direction only, and only at the top of a module:
an import inside a function, or a cycle, would hide a layer that reaches back up."""

from __future__ import annotations

import ast
from pathlib import Path

import iris_reflex.services

SERVICES = Path(iris_reflex.services.__file__).parent


def _imports() -> dict[str, set[str]]:
    """Each services module and the services modules it imports."""
    names = {p.stem for p in SERVICES.glob("*.py")} - {"__init__"}
    graph: dict[str, set[str]] = {}
    for path in SERVICES.glob("*.py"):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "iris_reflex.services":
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "iris_reflex.services."
            ):
                found.add((node.module or "").split(".")[2])
        graph[path.stem] = found & names
    return graph


def test_no_services_module_imports_inside_a_function():
    for path in SERVICES.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                inner = [n for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)]
                assert not inner, f"{path.name}: import inside {node.name}()"


def test_services_import_each_other_without_a_cycle():
    graph = _imports()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        assert name not in path, "import cycle: " + " -> ".join([*path, name])
        if name in done:
            return
        for dependency in sorted(graph[name]):
            visit(dependency, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
