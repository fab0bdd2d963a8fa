"""`robustbench-vit reproduce`: run (or reuse from storage) the studies behind the paper's stability claims,
score each claim, and write the scorecard (HTML, PDF) beside the studies' own reports. The claims run itself is
`commands.common.run_claims` (shared with `compare --claims`, which puts a stem in ViT_C's place)."""

from __future__ import annotations

import argparse

from robustbench_vit.commands.common import Launch, ScorecardRequest, run_claims


def main(args: argparse.Namespace) -> int:
    """`reproduce` from its parsed flags: plan and confirm, run what is missing, score the claims, write and print
    the scorecard (--dry-run: the plan only; --json: the scorecard as JSON; --until-decided: look by look)."""
    return run_claims(ScorecardRequest(preset=args.preset or "default", claims=args.claims, launch=Launch.of(args),
                                       out=args.out, formats=args.format, as_json=args.json))
