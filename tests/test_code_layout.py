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


# The layers, bottom to top (ARCHITECTURE.md): a module imports only from layers below its own, or from its own
# package. Packages on one layer are siblings and never import each other (analysis/ reads storage through store/,
# never through study/). The package root and cli.py load the rest lazily (by name), so they sit on top.
LAYERS = (
    ("errors", "provenance", "shipped", "states"),
    ("models", "data", "store"),
    ("train",),
    ("study", "analysis"),
    ("report",),
    ("commands",),
    ("cli",),
)
MAX_DEFERRED = 15  # imports inside functions, each deliberate and commented (ARCHITECTURE.md, "Imports")


def layer_of(module: str) -> tuple[int, str]:
    """(layer index, top-level package or module) of a package module (`robustbench_vit.X.…` → X)."""
    top = module.split(".")[1] if module.count(".") else ""
    for i, names in enumerate(LAYERS):
        if top in names:
            return i, top
    raise AssertionError(f"{module}: not on any layer of LAYERS (add it, and to ARCHITECTURE.md)")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import that runs from a layer to one above it, or across to a sibling package on the same layer."""
    bad = []
    for source, targets in graph.items():
        if source == PACKAGE.name:
            continue
        level, top = layer_of(source)
        for target in targets:
            if target == PACKAGE.name:
                bad.append(f"{source} -> {target}")
                continue
            t_level, t_top = layer_of(target)
            if t_level > level or (t_level == level and t_top != top):
                bad.append(f"{source} -> {target}")
    return sorted(bad)


def test_no_import_runs_up_a_layer_or_across_to_a_sibling():
    graph = import_graph(modules())
    assert upward_imports(graph) == []
    assert {m for m in graph if m.startswith("robustbench_vit.store")}  # the storage layer exists ...
    assert not any(t.startswith("robustbench_vit.study") for m, ts in graph.items()
                   if m.startswith("robustbench_vit.analysis") for t in ts)  # ... and analysis reads through it
    planted = {**graph, "robustbench_vit.analysis.frame": graph["robustbench_vit.analysis.frame"]
               | {"robustbench_vit.study.plan"}}
    assert upward_imports(planted) == ["robustbench_vit.analysis.frame -> robustbench_vit.study.plan"]  # it can fail


def test_optuna_storage_is_touched_only_by_the_storage_layer():
    outside = []
    for f in sorted(PACKAGE.rglob("*.py")):
        if f.parent.name == "store":
            continue
        text = f.read_text()
        if "optuna.storages" in text or "optuna._" in text or "from optuna.storages" in text:
            outside.append(str(f.relative_to(PACKAGE)))
    assert outside == []


def deferred_imports(mods: dict[str, ast.Module]) -> list[tuple[str, int, str]]:
    """(module, line, the import's source line) of every import inside a function."""
    out = []
    for name, tree in mods.items():
        lines = (PACKAGE.parent / (name.replace(".", "/"))).with_suffix(".py")
        path = lines if lines.is_file() else lines.with_suffix("") / "__init__.py"
        source = path.read_text().splitlines()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for m in ast.walk(node):
                    if isinstance(m, (ast.Import, ast.ImportFrom)):
                        out.append((name, m.lineno, source[m.lineno - 1], source[m.lineno - 2]))
    return out


def test_imports_sit_at_the_top_and_each_deferred_one_says_why():
    found = deferred_imports(modules())
    uncommented = [f"{m}:{line}" for m, line, text, above in found if "#" not in text and
                   not above.strip().startswith("#")]
    assert len(found) <= MAX_DEFERRED, [f"{m}:{line}" for m, line, *_ in found]
    assert uncommented == []
