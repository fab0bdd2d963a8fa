"""`robustbench-vit models` and `stems`: the built-in models and the registered stems, as tables or JSON."""

from __future__ import annotations

import argparse
import json
import textwrap

from rich.console import Console
from rich.table import Table

from robustbench_vit.models import model_table, stem_table


def models_command(as_json: bool = False) -> int:
    """`models`: the built-in models with depth, params, GMACs and FLOPs relative to patchify (or JSON)."""
    rows = model_table()
    if as_json:
        keys = ("name", "stem", "depth", "params", "gmacs", "img_size")
        print(json.dumps([{k: r[k] for k in keys} for r in rows], indent=2))
        return 0
    t = Table(title="robustbench-vit models")
    for col in ("name", "stem", "depth", "params (M)", "GMACs", "FLOPs / patchify", "img"):
        t.add_column(col, justify="left" if col in ("name", "stem") else "right")
    for r in rows:
        t.add_row(r["name"], r["stem"], str(r["depth"]), f"{r['params'] / 1e6:.2f}", f"{r['gmacs']:.4g}",
                  f"{r['flop_ratio']:.3f}", str(r["img_size"]))
    Console().print(t)
    return 0


def stems_command(size: str = "micro", as_json: bool = False) -> int:
    """`stems`: every registered stem (the baselines and the zoo) with its citation, params, GMACs and FLOP-matched
    depth at `size` (or JSON); plain text, one line of numbers and the citation under it, within 80 columns."""
    rows = stem_table(size)
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    line = "{:<16} {:<25} {:>5} {:>8} {:>9} {:>7}"
    print(f"stems at {size}: trunk depth FLOP-matched to vit_p_{size} (FLOPs/P: ratio to it)")
    print(line.format("stem", "model", "depth", "params M", "GMACs", "FLOPs/P"))
    for r in rows:
        print(line.format(r["stem"], r["model"], r["depth"], f"{r['params'] / 1e6:.3f}", f"{r['gmacs']:.4g}",
                          f"{r['flop_ratio']:.3f}"))
        print(textwrap.fill(r["citation"], 80, initial_indent=" " * 17, subsequent_indent=" " * 17))
    return 0


def main(args: argparse.Namespace) -> int:
    """`models` or `stems` from its parsed flags."""
    return stems_command(args.size, args.json) if args.command == "stems" else models_command(args.json)
