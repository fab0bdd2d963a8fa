"""`robustbench-vit report NAME`: write a study's report (HTML, PDF) and print where."""

from __future__ import annotations

import argparse

from robustbench_vit.commands.common import results_of
from robustbench_vit.report.build import build_report
from robustbench_vit.study.files import study_name


def main(args: argparse.Namespace) -> int:
    """`report NAME`: write the study's HTML (and PDF) report and print where."""
    paths = build_report(study_name(args.name), results_of(args), out_dir=args.out, formats=args.format)
    for fmt, path in paths.items():
        print(f"{fmt}: {path}")
    return 0
