"""The shape of the code: the import graph (no cycle, no upward arrow, no generic top-level
name) and short functions.

Layers, each importing only those below it: cli -> flows -> tasks -> core (the rest of
product_images). Imports inside functions count too (an import hidden in a function to dodge a
cycle is still a cycle). `product_images.testing` (the stand-in and the local S3 server that
users run) sits on the core and is imported by nothing but the CLI.
"""

from __future__ import annotations

import ast
import os
import statistics
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "product_images"
LAYERS = {"product_images.cli": 3, "product_images.flows": 2, "product_images.tasks": 1}


def _modules() -> dict[str, Path]:
    found = {}
    files = [
        Path(folder, name)
        for folder, _, names in os.walk(PACKAGE, followlinks=True)  # cli/, flows/, tasks/ links
        for name in names
        if name.endswith(".py")
    ]
    for path in files:
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _imported(module: str) -> Iterator[tuple[str, int]]:
    """(module imported, line) for every absolute import in `module`, at any depth."""
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                yield (full if full in MODULES else node.module), node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno


def _edges() -> dict[str, set[str]]:
    return {m: {t for t, _ in _imported(m) if t in MODULES and t != m} for m in MODULES}


def _layer(module: str) -> int:
    return next((n for prefix, n in LAYERS.items() if module.startswith(prefix)), 0)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in edges[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = stack[stack.index(module) :]
            del stack[stack.index(module) :]
            if len(component) > 1:
                found.append(sorted(component))

    for module in edges:
        if module not in index:
            visit(module)
    return found


def test_the_package_has_modules_in_every_layer() -> None:
    assert {_layer(m) for m in MODULES} == {0, 1, 2, 3}
    assert len(MODULES) > 100


def test_no_import_cycle() -> None:
    assert _cycles(_edges()) == []


def test_the_cycle_finder_finds_one() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module: str) -> None:
    upward = [
        f"line {line}: {target}"
        for target, line in _imported(module)
        if target in MODULES and _layer(target) > _layer(module)
    ]
    assert upward == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_nothing_imports_a_generic_top_level_name(module: str) -> None:
    generic = [
        f"line {line}: {target}"
        for target, line in _imported(module)
        if target.split(".")[0] in {"cli", "flows", "tasks"}
    ]
    assert generic == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) < 3))
def test_only_the_cli_imports_the_testing_doubles(module: str) -> None:
    if module.startswith("product_images.testing"):
        return
    assert not [t for t, _ in _imported(module) if t.startswith("product_images.testing")]


def _body_lengths() -> list[int]:
    """Lines of each function's body, its docstring left out."""
    lengths = []
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                body = node.body[1:] if ast.get_docstring(node) is not None else node.body
                if body:
                    lengths.append(body[-1].end_lineno - body[0].lineno + 1)  # type: ignore[operator]
    return lengths


def test_functions_stay_short() -> None:
    lengths = _body_lengths()
    assert statistics.median(lengths) <= 10
    assert sum(n > 15 for n in lengths) / len(lengths) < 0.15  # "most under 15 lines"
