"""`robustbench-vit models` and `stems`: the built-in models and the registered stems, as tables or JSON."""

from __future__ import annotations

import argparse
import json
import textwrap

from rich import box
from rich.console import Console
from rich.table import Table

from robustbench_vit.models import model_table, reference_row, stem_table

MODEL_KEYS = ("name", "stem", "size", "reference", "depth", "params", "gmacs", "flop_ratio", "activations", "img_size")


def models_command(as_json: bool = False, extra: tuple[str, ...] = (), size: str = "micro") -> int:
    """`models`: the built-in models (each size's ViT_P, ViT_C and RegNetY reference, then any `extra` model such as
    timm:resnet18 at `size`) with depth, params, GMACs, FLOPs relative to ViT_P and activations (or JSON)."""
    rows = model_table() + [reference_row(name, size) for name in extra]
    if as_json:
        print(json.dumps([{k: r[k] for k in MODEL_KEYS} for r in rows], indent=2))
        return 0
    t = Table(title="robustbench-vit models", box=box.SIMPLE_HEAD, show_edge=False,
              caption="FLOPs/P: GMACs over the size's ViT_P (references, stem -, are not FLOP-matched)")
    for col in ("name", "stem", "depth", "params M", "GMACs", "FLOPs/P", "acts M", "img"):
        t.add_column(col, justify="left" if col in ("name", "stem") else "right", no_wrap=col == "name")
    for r in rows:
        t.add_row(r["name"], r["stem"] or "-", str(r["depth"] or "-"), f"{r['params'] / 1e6:.2f}",
                  f"{r['gmacs']:.3g}", f"{r['flop_ratio']:.3f}", f"{r['activations'] / 1e6:.3g}", str(r["img_size"]))
    Console().print(t)
    return 0


def stems_command(size: str = "micro", as_json: bool = False) -> int:
    """`stems`: every registered stem (the baselines and the zoo) with its citation, params, GMACs, activations and
    FLOP-matched depth at `size` (or JSON); plain text, one line of numbers and the citation under it, within 80
    columns."""
    rows = stem_table(size)
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    line = "{:<15} {:<25} {:>5} {:>8} {:>8} {:>7} {:>6}"
    print(f"stems at {size}: depth FLOP-matched to vit_p_{size} (FLOPs/P), acts: activations")
    print(line.format("stem", "model", "depth", "params M", "GMACs", "FLOPs/P", "acts M"))
    for r in rows:
        print(line.format(r["stem"], r["model"], r["depth"], f"{r['params'] / 1e6:.3f}", f"{r['gmacs']:.4g}",
                          f"{r['flop_ratio']:.3f}", f"{r['activations'] / 1e6:.3g}"))
        print(textwrap.fill(r["citation"], 80, initial_indent=" " * 16, subsequent_indent=" " * 16))
    return 0


def main(args: argparse.Namespace) -> int:
    """`models` or `stems` from its parsed flags."""
    if args.command == "stems":
        return stems_command(args.size, args.json)
    return models_command(args.json, tuple(args.model or ()), args.size)
