"""The import graph between iris_reflex's top-level modules and packages (imports inside
functions included), one line per edge with how many module imports make it up.

The layers contract itself is checked by ``lint-imports`` in ``./iris test``; this prints the
whole picture, e.g. to compare two commits.

Run: .venv/bin/python -m bench.import_graph [--detail]
"""

from __future__ import annotations

import argparse

import grimp


def layer(module: str) -> str:
    """``iris_reflex.state.chat`` → ``iris_reflex.state``."""
    return ".".join(module.split(".")[:2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detail", action="store_true", help="list the module imports too")
    args = parser.parse_args()
    graph = grimp.build_graph("iris_reflex")
    edges: dict[tuple[str, str], list[str]] = {}
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            a, b = layer(importer), layer(imported)
            if a != b:
                edges.setdefault((a, b), []).append(f"{importer} -> {imported}")
    for (a, b), imports in sorted(edges.items()):
        print(f"{a} -> {b}  ({len(imports)})")
        if args.detail:
            for line in imports:
                print(f"    {line}")


if __name__ == "__main__":
    main()
