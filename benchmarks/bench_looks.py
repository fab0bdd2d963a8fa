"""How long one look and one report's computation take (issue 19, item 4): targets ≤ 1 s per look at 512 settings
per model, ≤ 5 s per report's computation at 2,048.

    python benchmarks/bench_looks.py [--sizes 32,128,512,2048] [--reports 512,2048]

One look = `comparison.compare` of one pair (the area decision with the area + KS min-p permutation test, the
retained decision, the secondary bootstrap intervals, dominance). A report's computation = what
`report.collect` computes before rendering: noise floors, metrics, comparisons, importances, verdicts (figures and
HTML are rendering). Both on bench_report's synthetic paired study. Each row is measured twice side by side in one
run: "before" forces every Monte Carlo test to its full 10,000 permutations (inference.ADAPTIVE = False, the old
path), "after" stages them (1,000 / 2,500 / 5,000 / 10,000, stopping once p is clearly on one side of α).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_report import study  # noqa: E402

from robustbench_vit.analysis import inference as I  # noqa: E402
from robustbench_vit.analysis.comparison import compare, comparisons  # noqa: E402
from robustbench_vit.analysis.importance import importances  # noqa: E402
from robustbench_vit.analysis.metrics import model_metrics, results  # noqa: E402
from robustbench_vit.analysis.noise import noise_floors, split_copies  # noqa: E402
from robustbench_vit.analysis.verdict import verdicts  # noqa: E402

LOOK_S, REPORT_S, LOOK_AT, REPORT_AT = 1.0, 5.0, 512, 2048
SPEC = {"design": {"kind": "random"}}


def timed(adaptive: bool, fn):
    """(seconds, result) of fn() with the staged tests on or off."""
    I.ADAPTIVE = adaptive
    try:
        t = time.perf_counter()
        out = fn()
        return time.perf_counter() - t, out
    finally:
        I.ADAPTIVE = True


def look(n: int):
    """One pair's comparison at n settings per model."""
    res = results(study(n))
    a, b = res[res["model"] == "vit_c_x"], res[res["model"] == "vit_p_x"]
    return lambda: compare("vit_c_x", "vit_p_x", a, b)


def report(n: int):
    """What report.collect computes for a study of n settings per model, before rendering."""
    data = study(n)
    data.attrs["searched"] = ("lr", "weight_decay")

    def run():
        floors = noise_floors(data)
        df, _ = split_copies(data)
        mm = model_metrics(df)
        cmp = comparisons(df)
        imp = importances(df, SPEC)
        return verdicts(mm, cmp, floors), imp
    return run


def verdict_of(out) -> str:
    """The look's or report's outcome, with the area test's p and permutations."""
    c = out if hasattr(out, "robustness") else None
    if c is None:
        (v,), _ = out
        return f"{v.outcome}, p = {v.p:.2g}"
    t = c.robustness.test
    return f"{c.outcome}, p = {t.p:.2g} ({t.permutations:,} permutations)"


def main() -> None:
    """Print the two timing tables with PASS / FAIL against the targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="32,128,512,2048", help="settings per model of one look")
    parser.add_argument("--reports", default="512,2048", help="settings per model of a report's computation")
    args = parser.parse_args()
    rows = [("look", int(n), look, LOOK_S if int(n) == LOOK_AT else None) for n in args.sizes.split(",")]
    rows += [("report", int(n), report, REPORT_S if int(n) == REPORT_AT else None) for n in args.reports.split(",")]
    print(f"{'what':>6} {'settings':>8} | {'before s':>8} {'after s':>8} {'speed-up':>8} | {'target':>7}  after's outcome")
    for what, n, make, target in rows:
        fn = make(n)
        fn()  # warm-up (imports, caches of numpy / optuna)
        before, _ = timed(False, fn)
        after, out = timed(True, fn)
        verdict = "" if target is None else f"≤ {target:g} s {'PASS' if after <= target else 'FAIL'}"
        print(f"{what:>6} {n:>8} | {before:8.2f} {after:8.2f} {before / after:7.1f}× | {verdict:>11}  {verdict_of(out)}")


if __name__ == "__main__":
    main()
