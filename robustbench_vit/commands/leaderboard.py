"""`robustbench-vit leaderboard`: every stem found in a storage, ranked within each study against the same baselines
(analysis/leaderboard.py), as a static site (index.html and one page per stem, self-contained: no script, no
network) and as CSV / JSON (report/leaderboard.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from robustbench_vit.commands.common import results_of, write_leaderboard_of
from robustbench_vit.errors import UserError
from robustbench_vit.report.leaderboard import parse_formats
from robustbench_vit.store import Results, stored_study_names
from robustbench_vit.study.files import study_name

REPORTS = Path("reports")  # where each study's report is linked from (STUDY/report.html), and the site's parent


def leaderboard_command(studies: list[str], results: Results, *, out: str | None = None, formats: str = "html") -> int:
    """`leaderboard`: rank every stem of the given studies (default: all in the storage), linking each study's report
    (reports/STUDY/report.html); print where it went."""
    fmts = parse_formats(formats)
    names = studies or stored_study_names(results)
    if not names:
        where = results.storage or str(results.runs_dir)
        raise UserError(f"no studies in {where!r}; run `robustbench-vit compare` or `study run` first")
    write_leaderboard_of(names, results, Path(out or REPORTS / "leaderboard"), formats=fmts,
                         reports={s: REPORTS / s / "report.html" for s in names})
    return 0


def main(args: argparse.Namespace) -> int:
    """`leaderboard` from its parsed flags."""
    return leaderboard_command([study_name(s) for s in args.studies], results_of(args), out=args.out,
                               formats=args.format)
