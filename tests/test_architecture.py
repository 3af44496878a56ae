"""The house rules a reader relies on: no import cycle, no long function, a layer page that is true.

- The import graph (grimp, the library import-linter is built on) of the project's packages has
  no cycle between modules: every strongly connected component is one module.
- No function or method outside Alembic migrations is longer than 80 lines (``def`` line to last
  line, docstring included) in the shipped packages, the benches and the scripts.
- docs/architecture.md lists the layers exactly as the import-linter layers contract in
  pyproject.toml declares them, so the page cannot drift from what ``lint-imports`` enforces.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("field_api", "vision", "standard_kits", "fieldops")
LONG_FUNCTION_ROOTS = (*PACKAGES, "benches", "scripts")
MAX_FUNCTION_LINES = 80


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph.modules):
        if start in index:
            continue
        work: list[tuple[str, list[str]]] = []
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        work.append((start, sorted(graph.find_modules_directly_imported_by(start))))
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph.find_modules_directly_imported_by(nxt))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    sys.path.insert(0, str(ROOT))
    return grimp.build_graph(*PACKAGES, include_external_packages=False, cache_dir=None)


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    planted = grimp.ImportGraph()
    for name in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        planted.add_module(name)
    planted.add_import(importer="pkg.a", imported="pkg.b")
    planted.add_import(importer="pkg.b", imported="pkg.c")
    planted.add_import(importer="pkg.c", imported="pkg.a")
    assert _cycles(planted) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_no_import_cycle_between_the_projects_modules(graph: grimp.ImportGraph) -> None:
    assert len(graph.modules) > 150  # the whole project was read, not an empty graph
    assert _cycles(graph) == []


def _long_functions(source: str, path: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{path}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_the_length_check_counts_a_long_function() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    assert _long_functions(f"def f():\n{body}\n", "planted.py") == ["planted.py:1 f (81 lines)"]
    short = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES - 1))
    assert _long_functions(f"def f():\n{short}\n", "planted.py") == []


def test_no_function_outside_migrations_is_over_80_lines() -> None:
    offenders: list[str] = []
    files = 0
    for root in LONG_FUNCTION_ROOTS:
        for path in sorted((ROOT / root).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if "migrations" in relative.parts:
                continue
            files += 1
            offenders += _long_functions(path.read_text(encoding="utf-8"), str(relative))
    assert files > 200
    assert offenders == []


def _declared_layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    layered = [c for c in contracts if c["type"] == "layers"]
    assert len(layered) == 1, "one layers contract: the one docs/architecture.md describes"
    (contract,) = layered
    assert contract["containers"] == ["field_api"]
    return [str(layer) for layer in contract["layers"]]


def _documented_layers() -> list[str]:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- layers:start -->(.*?)<!-- layers:end -->", page, re.S)
    assert match, "docs/architecture.md marks its layer list with layers:start/layers:end"
    layers = []
    for line in match.group(1).splitlines():
        item = re.match(r"^\d+\.\s+(.*?)\s+—", line.strip())
        if item:
            names = re.findall(r"`([\w.]+)`", item.group(1))
            layers.append(" | ".join(names))
    return layers


def test_the_architecture_page_lists_the_layers_lint_imports_enforces() -> None:
    declared = _declared_layers()
    assert len(declared) >= 10
    assert _documented_layers() == declared
