"""How long a report's analysis takes as a study grows: metrics, comparisons (tests, intervals, power to decide),
noise floors and verdicts, on a synthetic paired study of n settings per model (two models, random lr × wd).

    python benchmarks/bench_report.py [--sizes 32,512,2048]

Prints seconds per step, measured side by side in one run (no figures or HTML rendering: those depend on the
plotting backend, not on n's statistics). Before the three-way decision (2026-12-03 morning) the same analysis took
1.6 s at 32 settings, 8.2 s at 512 and 37.6 s at 2,048: the power of the permutation test was simulated (200
studies × 199 permutations) and its size searched.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from robustbench_vit.analysis.comparison import comparisons
from robustbench_vit.analysis.metrics import model_metrics
from robustbench_vit.analysis.noise import noise_floors
from robustbench_vit.analysis.verdict import verdicts


def study(n: int, seed: int = 0) -> pd.DataFrame:
    """Two models on n shared random (lr, wd) settings; ViT_P's errors spread 2.5 times as far, 10% of its trials capped."""
    rng = np.random.default_rng(seed)
    lr, wd = 10 ** rng.uniform(-4, -1, n), 10 ** rng.uniform(-3, 0.5, n)
    s = np.abs(np.log10(lr) + 2.7) * 8 + np.abs(np.log10(wd) + 1) * 2
    rows = []
    for model, k, q in (("vit_p_x", 2.5, 0.1), ("vit_c_x", 1.0, 0.02)):
        e = np.clip(5 + k * s + rng.normal(0, 1.5, n), 0, 100)
        capped = rng.random(n) < q
        rows.append(pd.DataFrame(dict(model=model, size="x", point=range(n), seed=0, lr=lr, weight_decay=wd,
                                      status=np.where(capped, "diverged", "complete"), error=np.where(capped, 100, e),
                                      final_error=e, num_classes=10, number=range(n))))
    df = pd.concat(rows, ignore_index=True)
    df.attrs["design"] = "random"
    return df


def main() -> None:
    """Print the timing table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="32,512,2048", help="settings per model (comma-separated)")
    sizes = [int(x) for x in parser.parse_args().sizes.split(",")]
    print(f"{'settings':>8} | {'metrics':>8} {'comparisons':>11} {'noise':>6} {'verdicts':>8} | {'total s':>7}  outcome")
    for n in sizes:
        df = study(n)
        t = [time.perf_counter()]
        mm = model_metrics(df)
        t.append(time.perf_counter())
        cmp = comparisons(df)
        t.append(time.perf_counter())
        floors = noise_floors(df)
        t.append(time.perf_counter())
        (v,) = verdicts(mm, cmp, floors)
        t.append(time.perf_counter())
        steps = np.diff(t)
        print(f"{n:>8} | {steps[0]:8.2f} {steps[1]:11.2f} {steps[2]:6.2f} {steps[3]:8.3f} | {t[-1] - t[0]:7.2f}  "
              f"{v.outcome}")


if __name__ == "__main__":
    main()
