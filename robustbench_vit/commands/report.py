"""`robustbench-vit report NAME`: write a study's report (HTML, PDF), print each comparison's headline and where the
files went (--json: both as one JSON object)."""

from __future__ import annotations

import argparse
import json

from robustbench_vit.analysis.verdict import headline_lines
from robustbench_vit.commands.common import results_of, terminal_width
from robustbench_vit.report.build import write_report
from robustbench_vit.study.files import study_name


def main(args: argparse.Namespace) -> int:
    """`report NAME`: write the study's HTML (and PDF) report, print its headlines, then where the files are."""
    content, paths = write_report(study_name(args.name), results_of(args), out_dir=args.out, formats=args.format)
    if args.json:
        print(json.dumps({"study": content.study, "verdicts": [v.to_dict() for v in content.verdicts],
                          "files": {k: str(v) for k, v in paths.items()}}, indent=2))
        return 0
    print("\n".join(headline_lines(content.verdicts, terminal_width())))
    for fmt, path in paths.items():
        print(f"{fmt}: {path}")
    return 0
