"""Replay the hopeless-trial rule (train.loop.hopeless) on stored learning curves: what would it have stopped?

    python benchmarks/replay_early_stop.py [RUNS_DIR]      # default runs (where `study run` stores)

RUNS_DIR holds studies run with early stopping off (or before it existed), so every curve is complete. For every
study found there (RUNS_DIR/<study>/study.db) and each candidate rule (margin m points, fraction f, minimum
epochs e), it prints: the trials with a result (N), how many the rule stops, how many of those learned (finished
complete and below chance by more than the analysis's CHANCE_MARGIN: the trials the rule must never stop) with
a Wilson 95% interval over the learned trials, and the epochs it saves (absolute, and % of all epochs trained).
"slack" is how close the rule came to stopping a learned trial: the smallest distance, over learned trials, between
the best error of its first k epochs and the threshold chance − m (points; negative: a learned trial was stopped).

The rule (`all first k epochs within m points of chance`, k = max(e, ceil(f × epochs))) fires at its first check
or never, since a curve at chance for k + 1 epochs was at chance for the first k: so only k matters.

Shipped rule: m = 2 points, f = 0.8, e = 2 (train.loop STOP_MARGIN / STOP_FRACTION / STOP_MIN_EPOCHS): the
candidate that stops 0 learned trials on every study with a safety margin (slack ≥ 3 points). Measured 2026-12-04 on
every built-in default study (peak: its first 8 of 24 trials; 158 trials with a result, 152 learned, 2018 epochs):
it stops 2 trials (both on lr_wd_stability, vit_p_micro at 89-90% error at every epoch), 0 of 152 learned
[0, 2.5%]; lr_wd_stability 0 of 60 [0, 6.0%], optimizer_stability 0 of 22 [0, 14.9%], lr_sensitivity 0/24,
wd_sensitivity 0/14, epoch_stability 0/24, peak 0/8. Epochs saved: 4 of 640 on lr_wd_stability (0.6%), 0 of 222 on
optimizer_stability, 4 of 2018 overall (0.2%); slack 4.4 points. Every earlier rule stops a learned trial or has no
margin: m = 2 at f = 0.3-0.7 stops 1-2 learned trials (curves at chance for 7 of 10 epochs that end at 76%); m = 1,
f = 0.4 saves 16 epochs (0.8%) but stops 1 learned trial on epoch_stability. On these short (4-32 epoch) CPU
schedules a curve at chance does not tell a hopeless trial from a slow starter until late: early stopping saves
little here; it saves more where hopeless trials are common and schedules long (a 50-epoch trial stops at 40).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd

from robustbench_vit.analysis.frame import CHANCE_MARGIN, chance_error, load_results
from robustbench_vit.analysis.inference import wilson
from robustbench_vit.store import Results

CANDIDATES = [  # (margin points, fraction of epochs, minimum epochs)
    (2.0, 0.1, 1), (2.0, 0.3, 2), (5.0, 0.3, 2), (1.0, 0.4, 2), (2.0, 0.5, 2), (1.0, 0.6, 2), (2.0, 0.7, 2),
    (1.0, 0.8, 2), (2.0, 0.8, 2), (5.0, 0.8, 2), (2.0, 0.9, 2),
]
SHIPPED = (2.0, 0.8, 2)


def first_check(epochs: int, fraction: float, min_epochs: int) -> int:
    """The epoch count k at which the rule looks (it never looks again)."""
    return max(min_epochs, math.ceil(fraction * epochs - 1e-9))


def learned(r) -> bool:
    """Trained to the end and learned: complete, and below chance by more than the analysis's margin."""
    return r["status"] == "complete" and r["final_error"] < chance_error(r["num_classes"]) - CHANCE_MARGIN


def replay(df: pd.DataFrame, margin: float, fraction: float, min_epochs: int) -> dict:
    """What one rule does on one study's trials (results only: failed / running trials are left out)."""
    n = stopped = false_stops = saved = trained = n_learned = 0
    slack = math.inf
    for _, r in df[df["status"].isin(("complete", "collapsed", "diverged"))].iterrows():
        errors = [h["val_error"] for h in r["history"]]
        epochs, ran = int(r["epochs"]), len(errors)
        k = first_check(epochs, fraction, min_epochs)
        threshold = chance_error(r["num_classes"]) - margin
        n, trained = n + 1, trained + ran
        fires = k < epochs and ran > k and all(e >= threshold for e in errors[:k])
        if learned(r):
            n_learned += 1
            if k < epochs and ran > k:
                slack = min(slack, threshold - min(errors[:k]))
        if fires:
            stopped += 1
            saved += ran - k
            false_stops += learned(r)
    lo, hi = wilson(false_stops, n_learned)
    return {"N": n, "learned": n_learned, "stopped": stopped, "false": false_stops, "lo": lo, "hi": hi,
            "saved": saved, "trained": trained, "slack": slack}


def main(runs_dir: str = "runs") -> int:
    """Print the replay table: every study under runs_dir × every candidate rule (the shipped one marked *)."""
    studies = sorted(p.parent.name for p in Path(runs_dir).glob("*/study.db"))
    if not studies:
        print(f"no studies under {runs_dir}", file=sys.stderr)
        return 1
    frames = {s: load_results(s, Results.of(runs_dir)) for s in studies}
    print(f"{'rule (m, f, e)':<16} {'study':<22} {'N':>4} {'stopped':>7} {'learned stopped [95%]':>26} "
          f"{'epochs saved':>17} {'slack':>6}")
    for rule in CANDIDATES:
        tot = {"N": 0, "learned": 0, "stopped": 0, "false": 0, "saved": 0, "trained": 0, "slack": math.inf}
        for s in studies:
            x = replay(frames[s], *rule)
            for key in tot:
                tot[key] = min(tot[key], x[key]) if key == "slack" else tot[key] + x[key]
            _line(rule, s, x)
        lo, hi = wilson(tot["false"], tot["learned"])
        _line(rule, "ALL", tot | {"lo": lo, "hi": hi})
        print()
    return 0


def _line(rule: tuple, study: str, x: dict) -> None:
    """One row of the table."""
    name = f"{'*' if rule == SHIPPED else ' '}{rule[0]:g}, {rule[1]:g}, {rule[2]}"
    share = 100 * x["saved"] / x["trained"] if x["trained"] else 0.0
    print(f"{name:<16} {study:<22} {x['N']:>4} {x['stopped']:>7} "
          f"{x['false']:>4}/{x['learned']:<3} [{100 * x['lo']:.0f}, {100 * x['hi']:.1f}%]".ljust(70) +
          f" {x['saved']:>5}/{x['trained']:<5} {share:4.1f}% {x['slack']:>6.1f}")


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
