"""The package's shape, checked from its source: no import cycles (including imports inside functions), no
function over 60 lines, no function taking more than four arguments by position."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "robustbench_vit"
MAX_LINES, MAX_POSITIONAL = 60, 4


def modules() -> dict[str, ast.Module]:
    """Every module of the package by dotted name (a package by its own name), parsed."""
    out = {}
    for f in sorted(PACKAGE.rglob("*.py")):
        parts = list(f.relative_to(PACKAGE.parent).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = ast.parse(f.read_text(), str(f))
    return out


def import_graph(mods: dict[str, ast.Module]) -> dict[str, set[str]]:
    """module → the package modules it imports anywhere in its body (`from pkg import submodule` counts as the
    submodule; importing a.b.c also runs the packages above it, except the importer's own)."""
    graph: dict[str, set[str]] = {}
    for name, tree in mods.items():
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith(PACKAGE.name):
                targets |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in mods else node.module
                            for a in node.names}
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.startswith(PACKAGE.name)}
        parents = {".".join(t.split(".")[:i]) for t in targets for i in range(2, t.count(".") + 1)}
        graph[name] = {t for t in targets | parents if t in mods and t != name and not name.startswith(t + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def functions(mods: dict[str, ast.Module]):
    """(module, function node) for every function and method of the package."""
    for name, tree in mods.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield name, node


def test_no_module_imports_one_that_imports_it_back():
    graph = import_graph(modules())
    assert graph["robustbench_vit.study.launch"] >= {"robustbench_vit.study.options", "robustbench_vit.study.spec"}
    assert cycles(graph) == []
    assert cycles({**graph, "robustbench_vit.study.plan": graph["robustbench_vit.study.plan"]
                   | {"robustbench_vit.study.launch"}})  # the check finds a cycle when there is one


def test_functions_are_short_and_take_at_most_four_positional_arguments():
    long, positional = [], []
    for module, f in functions(modules()):
        if f.end_lineno - f.lineno + 1 > MAX_LINES:
            long.append(f"{module}.{f.name}: {f.end_lineno - f.lineno + 1} lines")
        args = [a.arg for a in f.args.posonlyargs + f.args.args if a.arg not in ("self", "cls")]
        if len(args) > MAX_POSITIONAL:
            positional.append(f"{module}.{f.name}: {len(args)} positional")
    assert long == [] and positional == []
