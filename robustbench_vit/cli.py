"""Command line: parses arguments and calls one library function per command."""

from __future__ import annotations

import argparse
import json
import sys

from robustbench_vit.errors import UserError


def add_storage_options(p: argparse.ArgumentParser) -> None:
    """Options every study command shares: where results live."""
    p.add_argument("--runs-dir", default="runs", help="folder for the default SQLite storage (default: runs)")
    p.add_argument("--storage", default=None, help="SQLAlchemy URL (e.g. postgresql://...); overrides --runs-dir")


def cmd_models(args: argparse.Namespace) -> int:
    """Print the model table (or JSON)."""
    from robustbench_vit.models import model_table

    rows = model_table()
    if args.json:
        keys = ("name", "stem", "depth", "params", "gmacs", "img_size")
        print(json.dumps([{k: r[k] for k in keys} for r in rows], indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    t = Table(title="robustbench-vit models")
    for col in ("name", "stem", "depth", "params (M)", "GMACs", "FLOPs / patchify", "img"):
        t.add_column(col, justify="left" if col in ("name", "stem") else "right")
    for r in rows:
        t.add_row(r["name"], r["stem"], str(r["depth"]), f"{r['params'] / 1e6:.2f}", f"{r['gmacs']:.4g}",
                  f"{r['flop_ratio']:.3f}", str(r["img_size"]))
    Console().print(t)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree."""
    parser = argparse.ArgumentParser(prog="robustbench-vit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list the built-in models with params and GMACs")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=cmd_models)

    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: user mistakes become one line on stderr and exit code 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"robustbench-vit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("robustbench-vit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
