"""Calibration of the comparison tests: false-positive rate under a simulated null, power under an alternative.

    python benchmarks/calibration.py [--sims N] [--quick]

Each cell simulates `sims` studies of n settings per model (paired: both models run at each setting) with a
share q of trials capped at 100 (did not train), and runs the primary test on each: the paired permutation
test of the Δ-EDF area difference over [0, 10] and the KS distance between the Δ-EDFs together (min-p
combination), as the reports use it; and each of the two statistics alone.

- Null: setting i has an effect s_i ~ U(5, 40); each model's error is s_i + N(0, 2), independently, clipped to
  [0, 100]; each trial is capped at 100 with probability q, independently. The two models are exchangeable, so
  a test of size α rejects in a share α of the studies: "FPR" should read 5 % within Monte Carlo error;
  a cell outside 5 % ± 3 SE is flagged with "!" (by chance, about 1 honest cell in 370 is).
- Alternative (power): the same, but model b's error is s_i/2 + 2.5 + N(0, 2): its errors spread half as far
  from its best (more robust), with the same best (2.5 + 5/2 = 5). "mean Δarea" is the average observed area
  difference (a − b; negative: b better); compare it with a real study's to read the power column.
- For contrast: the old scipy.stats.ks_2samp on Δerror as the project used to call it (its p assumes no ties,
  but capped trials of a sample all tie at 100 − best, so it rejects far too often when q > 0).

Permutation tests use 999 Monte Carlo permutations here (the library default is 10,000), except n ≤ 14,
where all 2^n swaps are enumerated exactly. Every cell is seeded: the output is deterministic.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from scipy.stats import ks_2samp

from robustbench_vit.analysis import inference as I

ALPHA, WINDOW, PERMUTATIONS = 0.05, 10.0, 999
NS, QS = (9, 32, 64), (0.0, 0.2, 0.4, 0.6)
AREA = I.area_difference(WINDOW)
PRIMARY = [AREA, I.ks_distance]  # what metrics.compare_pair tests


def errors(effect: np.ndarray, q: float, rng: np.random.Generator) -> np.ndarray:
    """One model's errors at settings with these effects: effect + N(0, 2) in [0, 100], each capped w.p. q."""
    e = np.clip(effect + rng.normal(0.0, 2.0, effect.shape), 0.0, 100.0)
    return np.where(rng.random(effect.shape) < q, 100.0, e)


def null_pair(n: int, q: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Both models from one distribution: effects s ~ U(5, 40), errors s + noise for each."""
    s = rng.uniform(5.0, 40.0, n)
    return errors(s, q, rng), errors(s, q, rng)


def alternative_pair(n: int, q: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Model b more robust: its errors s/2 + 2.5 + noise spread half as far from its best as a's s + noise."""
    s = rng.uniform(5.0, 40.0, n)
    return errors(s, q, rng), errors(0.5 * s + 2.5, q, rng)


def permutation(stats, permutations: int = PERMUTATIONS):
    """The paired permutation test on one statistic or several as (a, b, k) → (p, first statistic), seeded by k."""
    def run(a, b, k):
        """One simulated study's test."""
        r = I.paired_test(a, b, stats, permutations=permutations, seed=k)
        return r.p, r.statistic
    return run


def old_ks(a, b, k):
    """The old test, for contrast: scipy's ks_2samp on Δerror (errors minus each sample's best)."""
    r = ks_2samp(I.deltas(a), I.deltas(b))
    return r.pvalue, r.statistic


def simulate(n: int, q: float, sims: int, test=None, sampler=null_pair, seed: int = 0) -> np.ndarray:
    """(p, statistic) of `test` (default: the primary) in `sims` seeded simulated studies: a (sims, 2) array."""
    test = test or permutation(PRIMARY)
    rng = np.random.default_rng([seed, n, round(100 * q)])  # one stream per cell: the same studies for every test
    return np.array([test(*sampler(n, q, rng), seed * sims + k) for k in range(sims)], dtype=float)


def rejection_rate(n: int, q: float, sims: int, test=None, sampler=null_pair, alpha: float = ALPHA,
                   seed: int = 0) -> float:
    """Share of `sims` simulated studies (n settings, capped share q) in which the test rejects at α."""
    return float(np.mean(simulate(n, q, sims, test, sampler, seed)[:, 0] <= alpha))


def se(sims: int, alpha: float = ALPHA) -> float:
    """Monte Carlo standard error of a rejection rate α estimated from `sims` studies."""
    return math.sqrt(alpha * (1 - alpha) / sims)


def fpr(rate: float, sims: int) -> str:
    """A false-positive rate in percent, flagged with ! when outside α ± 3 SE."""
    return f"{100 * rate:5.1f}{'!' if abs(rate - ALPHA) > 3 * se(sims) else ' '}"


def main() -> None:
    """Print the calibration table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=None, help="simulated studies per cell (default 400)")
    parser.add_argument("--quick", action="store_true", help="100 simulated studies per cell (rough)")
    args = parser.parse_args()
    sims = args.sims or (100 if args.quick else 400)
    t0 = time.perf_counter()
    print(f"{sims} simulated studies per cell, α = {ALPHA}; Monte Carlo SE of a 5 % rate = "
          f"√(0.05·0.95/{sims}) = {100 * se(sims):.2f} points; ! = outside 5 % ± 3 SE "
          f"[{100 * (ALPHA - 3 * se(sims)):.1f}, {100 * (ALPHA + 3 * se(sims)):.1f}] %")
    print(f"paired permutation tests: {PERMUTATIONS} Monte Carlo permutations (n > {I.EXACT_MAX}), "
          f"exact 2^n enumeration for n ≤ {I.EXACT_MAX}")
    print(f"false-positive rate (%) under the null: primary = Δ-EDF area difference over [0, {WINDOW:g}] and KS "
          "distance together (min-p), area / KS = each alone, ks_2samp = the old scipy test on Δerror; power (%) "
          "of the primary and mean Δarea (a − b) under the alternative")
    print(f"\n{'n':>3} {'q':>4} | {'primary':>7} {'area':>6} {'KS':>6} {'ks_2samp':>8} | {'power':>6} "
          f"{'mean Δarea':>10}")
    for n in NS:
        for q in QS:
            rates = [rejection_rate(n, q, sims, t) for t in (None, permutation(AREA), permutation(I.ks_distance),
                                                             old_ks)]
            alt = simulate(n, q, sims, sampler=alternative_pair)
            print(f"{n:>3} {q:>4.1f} | {fpr(rates[0], sims):>7} " + " ".join(f"{fpr(r, sims):>6}" for r in rates[1:3])
                  + f" {fpr(rates[3], sims):>8} | {100 * np.mean(alt[:, 0] <= ALPHA):6.1f} {alt[:, 1].mean():10.3f}")
    print(f"\nelapsed: {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
