"""The commands layer's shape, checked from the source: no command imports another (what two commands share lives in
`commands.common`, the sequential runner in `commands.until`, or a layer below), the CLI only parses and dispatches
(loading a command module by name when it runs), and rendering never reaches up into commands or study."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.test_code_layout import PACKAGE, import_graph, modules

COMMANDS = f"{PACKAGE.name}.commands"
SHARED = {f"{COMMANDS}.common", f"{COMMANDS}.until"}  # shared helpers inside commands/, not commands themselves


def sideways(graph: dict[str, set[str]]) -> list[str]:
    """Every import from a command module to another command module (the shared helpers excepted)."""
    return sorted(f"{m} -> {t}" for m, ts in graph.items() if m.startswith(COMMANDS + ".")
                  for t in ts if t.startswith(COMMANDS + ".") and t not in SHARED)


def test_no_command_imports_another_command():
    graph = import_graph(modules())
    commands = {m for m in graph if m.startswith(COMMANDS + ".")}
    assert {f"{COMMANDS}.{c}" for c in ("compare", "reproduce", "leaderboard", "study", "calibrate")} <= commands
    assert sideways(graph) == []
    assert not any(t.startswith(COMMANDS) for t in graph[f"{COMMANDS}.until"])  # the runner needs no command
    planted = {**graph, f"{COMMANDS}.compare": graph[f"{COMMANDS}.compare"] | {f"{COMMANDS}.reproduce"}}
    assert sideways(planted) == [f"{COMMANDS}.compare -> {COMMANDS}.reproduce"]  # the check can fail


def test_rendering_and_analysis_never_import_commands_or_study():
    graph = import_graph(modules())
    for layer, banned in (("analysis", ("study", "report", "commands")), ("report", ("study", "commands"))):
        for m, ts in graph.items():
            if m.startswith(f"{PACKAGE.name}.{layer}"):
                assert not [t for t in ts if t.split(".")[1] in banned], m


def test_every_command_module_has_one_entry_and_the_cli_imports_none():
    mods = modules()
    for name, tree in mods.items():
        if name.startswith(COMMANDS + ".") and name not in SHARED:
            entries = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"]
            assert entries == ["main"], name
    cli = mods[f"{PACKAGE.name}.cli"]
    imported = {n.module for n in ast.walk(cli) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(cli) if isinstance(n, ast.Import) for a in n.names}
    assert {m for m in imported if m and m.startswith(PACKAGE.name)} == {f"{PACKAGE.name}.errors"}


def test_help_loads_no_command_and_nothing_heavy():
    code = ("import sys\nfrom robustbench_vit.cli import main\ntry:\n    main(['compare', '--help'])\n"
            "except SystemExit:\n    pass\nprint(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'optuna', 'pandas', 'matplotlib', 'robustbench_vit')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert out.strip().splitlines()[-1] == "['robustbench_vit', 'robustbench_vit.cli', 'robustbench_vit.errors']"
