"""`robustbench-vit export NAME --out FILE`: a study's trial table as CSV or Parquet."""

from __future__ import annotations

import argparse

from robustbench_vit.analysis.frame import export_results
from robustbench_vit.commands.common import results_of
from robustbench_vit.study.files import study_name


def main(args: argparse.Namespace) -> int:
    """`export NAME --out FILE`: write the table and print where."""
    print(export_results(study_name(args.name), args.out, results_of(args)))
    return 0
