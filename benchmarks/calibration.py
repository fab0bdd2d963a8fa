"""Calibration of the comparison tests and of the three-way decision, under simulated nulls and alternatives.

    python benchmarks/calibration.py [--sims N] [--quick]

Each cell simulates `sims` studies of n settings per model (paired: both models run at each setting) with a
share q of trials capped at 100 (did not train), and runs the primary test on each: the paired permutation
test of the Δ-EDF area difference over [0, 10] and the KS gap between the Δ-EDFs within that window together
(min-p), the baseline aligned by the median paired shift first — as the reports use it.

- Null ("same"): setting i has an effect s_i ~ U(5, 40); each model's error is s_i + N(0, 2), independently,
  clipped to [0, 100]; each trial is capped at 100 with probability q. A test of size α rejects in a share α of
  the studies: "FPR" should read 5 % within Monte Carlo error; a cell outside 5 % ± 3 SE is flagged with "!".
- Shift null: model b worse by 7 points at every setting (the same Δ shape). Before the alignment the test
  rejected it 3.5 % at n = 32, 7.5 % at 64, 11.5 % at 128 and ~20 % at 512.
- Scale null (normalised statistic, used where the bests are far apart): b learns a fixed share k = 0.6 of what
  a learns at every setting, b = chance − k·(chance − error), chance 90: the same share of the attainable
  improvement everywhere. Tested with the normalised difference, aligned by the median improvement ratio.
- Init effect: each model's errors are s_i·(1 + 0.15·u) + N(0, 2), u ~ N(0, 1) an initialisation draw. The old
  seeding rule drew u once per model (every trial of a model started from the same weights); the new one draws it
  per trial. Under the old rule the paired test compares two draws, not two architectures.
- The three-way decision (analysis.comparison.decide, margin δ = 0.05 on the Δ-EDF area): under the null the
  share of studies called "more robust" or "less robust" (the A/A rate, ≤ 5 % required) and "equivalent"; under
  an effect of about 2δ (b's errors spread 0.6 times as far from its best) the share decided in the right
  direction next to the mean power the report would state.

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
from robustbench_vit.analysis.comparison import MARGINS, decide

ALPHA, WINDOW, PERMUTATIONS, CHANCE = 0.05, 10.0, 999, 90.0
NS, QS = (9, 32, 64), (0.0, 0.2, 0.4, 0.6)
LARGE_NS, LARGE_QS = (128, 512), (0.0, 0.4)
AREA = I.area_difference(WINDOW)
PRIMARY = [AREA, I.ks_within(WINDOW)]  # what comparison.decide tests, with ALIGN
ALIGN = I.align_shift(100.0)
OLD_PRIMARY = [AREA, I.ks_distance]  # before: the KS gap over the whole Δ range, no alignment


def errors(effect: np.ndarray, q: float, rng: np.random.Generator) -> np.ndarray:
    """One model's errors at settings with these effects: effect + N(0, 2) in [0, 100], each capped w.p. q."""
    e = np.clip(effect + rng.normal(0.0, 2.0, effect.shape), 0.0, 100.0)
    return np.where(rng.random(effect.shape) < q, 100.0, e)


def null_pair(n: int, q: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Both models from one distribution: effects s ~ U(5, 40), errors s + noise for each."""
    s = rng.uniform(5.0, 40.0, n)
    return errors(s, q, rng), errors(s, q, rng)


def shifted_pair(n: int, q: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Model b worse by 7 points at every setting, with the same spread around its best as a."""
    s = rng.uniform(5.0, 40.0, n)
    return errors(s, q, rng), errors(s + 7.0, q, rng)


def scaled_pair(n: int, q: float, rng: np.random.Generator, k: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """Model b learns a share k of what a learns at every setting: b = chance − k·(chance − a-like error)."""
    s = rng.uniform(5.0, 40.0, n)
    b = errors(s, q, rng)
    return errors(s, q, rng), np.where(b >= 100.0, 100.0, CHANCE - k * (CHANCE - b))


def init_pair(per_trial: bool):
    """Errors s·(1 + 0.15·u) + noise with u an init draw: once per model (old rule) or per trial (new rule)."""
    def pair(n: int, q: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        s = rng.uniform(5.0, 40.0, n)
        u = rng.normal(size=(2, n) if per_trial else (2, 1))
        return errors(s * (1 + 0.15 * u[0]), q, rng), errors(s * (1 + 0.15 * u[1]), q, rng)
    pair.__name__ = "init_new" if per_trial else "init_old"
    return pair


def wider_pair(k: float):
    """An effect on the Δ-EDF area: a's errors spread k times as far from its best as b's (k < 1: a more robust)."""
    def pair(n: int, q: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        s = rng.uniform(5.0, 40.0, n)
        return errors(5.0 + k * (s - 5.0), q, rng), errors(s, q, rng)
    return pair


def spread_for(effect: float, n: int, q: float, draws: int = 200) -> float:
    """The spread factor k of `wider_pair` whose mean Δ-EDF area difference at (n, q) is `effect` (bisection)."""
    lo, hi = 0.05, 1.0
    for _ in range(12):
        k = (lo + hi) / 2
        rng = np.random.default_rng([n, round(100 * q), 3])
        mean = np.mean([AREA(*wider_pair(k)(n, q, rng)) for _ in range(draws)])
        lo, hi = (k, hi) if mean > effect else (lo, k)  # the effect shrinks as k grows towards 1
    return (lo + hi) / 2


def permutation(stats, permutations: int = PERMUTATIONS, align=ALIGN):
    """The paired permutation test on one statistic or several as (a, b, k) → (p, first statistic), seeded by k."""
    def run(a, b, k):
        """One simulated study's test."""
        r = I.paired_test(a, b, stats, permutations=permutations, seed=k, align=align)
        return r.p, r.statistic
    return run


def normalised(permutations: int = PERMUTATIONS):
    """The paired test of the normalised difference (share of the attainable improvement kept), scale-aligned."""
    return permutation(I.retained_difference(CHANCE), permutations, I.align_scale(CHANCE))


def decisions(n: int, q: float, sims: int, sampler=null_pair, seed: int = 0) -> dict[str, float]:
    """Shares of `sims` studies the three-way decision calls more / less robust / equivalent, and the mean power
    each study states for a difference of 2δ."""
    rng = np.random.default_rng([seed, n, round(100 * q), 7])
    out = [decide(*sampler(n, q, rng), "area", chance=CHANCE, margin=MARGINS["area"], paired=True, seed=k,
                  permutations=PERMUTATIONS) for k in range(sims)]
    share = {o: float(np.mean([d.outcome == o for d in out])) for o in ("more robust", "less robust", "equivalent")}
    return share | {"power": float(np.mean([d.power_at(2 * MARGINS["area"]) for d in out]))}


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
    """Print the calibration tables."""
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
    print("false-positive rate (%): primary = Δ-EDF area + KS within the window (min-p), shift-aligned; area / KS "
          "= each alone; shift = b worse by 7 everywhere (old = before the alignment); scale = normalised test, b "
          "learning 0.6 of a's improvement; init old / new = one init draw per model / per trial; ks_2samp = the "
          "old scipy test")
    print(f"\n{'n':>3} {'q':>4} | {'primary':>7} {'area':>6} {'KS':>6} | {'shift':>6} {'old':>6} | {'scale':>6} | "
          f"{'init old':>8} {'new':>6} | {'ks_2samp':>8}")
    cells = [(n, q) for n in NS for q in QS] + [(n, q) for n in LARGE_NS for q in LARGE_QS]
    for n, q in cells:
        rates = [rejection_rate(n, q, sims, t) for t in (None, permutation(AREA), permutation(I.ks_within(WINDOW)))]
        rates += [rejection_rate(n, q, sims, sampler=shifted_pair),
                  rejection_rate(n, q, sims, permutation(OLD_PRIMARY, align=None), sampler=shifted_pair),
                  rejection_rate(n, q, sims, normalised(), sampler=scaled_pair),
                  rejection_rate(n, q, sims, sampler=init_pair(False)),
                  rejection_rate(n, q, sims, sampler=init_pair(True)), rejection_rate(n, q, sims, old_ks)]
        cols = [fpr(r, sims) for r in rates]
        print(f"{n:>3} {q:>4.1f} | {cols[0]:>7} {cols[1]:>6} {cols[2]:>6} | {cols[3]:>6} {cols[4]:>6} | "
              f"{cols[5]:>6} | {cols[6]:>8} {cols[7]:>6} | {cols[8]:>8}", flush=True)
    print(f"\nthree-way decision, margin δ = ±{MARGINS['area']:g} on the Δ-EDF area. A/A: share of null studies "
          "called more or less robust (must be ≤ 5 %) and equivalent. 2δ: a true difference of 2δ (a's errors "
          "spread k times as far from its best as b's, k chosen per cell): share decided 'more robust', next to the "
          "mean power the studies state for 2δ")
    print(f"{'n':>3} {'q':>4} | {'A/A more/less':>13} {'equivalent':>10} | {'k':>5} {'2δ decided':>10} "
          f"{'stated':>6}")
    for n, q in [(n, q) for n in (32, 64, 128, 512) for q in (0.0, 0.4)]:
        k = spread_for(2 * MARGINS["area"], n, q)
        aa, alt = decisions(n, q, sims), decisions(n, q, sims, wider_pair(k))
        print(f"{n:>3} {q:>4.1f} | {100 * (aa['more robust'] + aa['less robust']):12.1f}% "
              f"{100 * aa['equivalent']:9.1f}% | {k:5.2f} {100 * alt['more robust']:9.1f}% "
              f"{100 * alt['power']:5.1f}%", flush=True)
    print(f"\nelapsed: {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
