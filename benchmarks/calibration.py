"""Calibration of the comparison tests and of the three-way decision, under simulated nulls and alternatives.

    python benchmarks/calibration.py [--sims N] [--quick] [--sequential]

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

- Sequential decisions (`--sequential` prints these tables instead of the others: they take about 4–5 minutes
  at --quick on their own, too long to add to the default run; analysis.sequential): looks every 4, 8 or 16 settings
  per model from that size on, up to budgets of 32, 64 and 128 (every 4 to 128 left out: 32 looks, the slowest
  cell), each look decided by comparison.decide's rule at its spent level. Each simulated study is drawn at 128
  settings and a look at n reads its first n; a look's evidence (permutation p over all permutations, bootstrap) is
  computed once and read at every schedule's level (sequential.Evidence; the staged test of a real run agrees
  with it except with probability ≤ RISK per stage). Null: false more / less robust at any look (≤ 5% required,
  the union bound); +δ: a's errors spread k = 0.61 times b's (mean Δ-area difference δ at 128 settings, more at
  fewer), share stopped as "equivalent" (≤ 2.5% by the bound). Effects: k chosen so the mean Δ-area difference
  at 32 settings is +0.1 / +0.2 / +0.3 (lr_wd_stability shows ~0.1–0.2, lr_sensitivity +0.315 at 12), q = 0.2;
  the mean settings per model at the stop against the fixed design of the budget's size and against the smallest
  fixed design deciding as often; "normal" is sequential.expected_settings from the mean difference and bootstrap
  sd at 32 settings. In this model the difference shrinks as n grows (each model's best is re-taken and moves
  down), so a fixed design's decision rate at +0.2 levels off below 80%, and early looks see a larger effect.

  Measured 2026-12-04, `python benchmarks/calibration.py --sequential --sims 200` (200 studies per cell, 999
  permutations per look, 2,000 bootstrap resamples; 297 s on 2 shared cores), looks below 8 settings per model
  spending nothing (sequential.MIN_LOOK):

      null, false more/less robust %    q = 0.0   q = 0.3   q = 0.6 | +δ, false equivalent %
      every 4, 8, 16 to budget 32         0.0       0.0       0.0   |   0.0
      every 4, 8, 16 to budget 64         0.0       0.0       0.0   |   0.0
      every 8, 16 to budget 128           0.0       0.0       0.0   |   0.0
      (Wilson 95% upper bound 1.9% at 0/200; the fixed design's false equivalent at +δ: 0, 0, 2.0% at 32, 64,
      128 settings; null studies stopped as equivalent: 0–4%. Before MIN_LOOK, the first look of every 4 at 4
      settings called copies equivalent in 2–6% of studies and the +δ difference in 2.0%, and one null study of
      200 (every 4, budget 32, 60% capped) was called more or less robust)

      effect  every budget |  E[n] decided | fixed at N: decided, saving | equal-rate fixed n, saving | normal
      +0.10     8     64   |  62.0   17.0% |   26%    3%                 |   40   -55%                 |  62.0
      +0.10     8    128   | 117.0   24.0% |   28%    9%                 |   64   -83%                 | 121.4
      +0.20     8     32   |  27.1   56.5% |   64%   15%                 |   28     3%                 |  29.0
      +0.20     8     64   |  43.2   74.0% |   72%   32%                 |  112    61%                 |  50.8
      +0.20     8    128   |  66.5   81.5% |   76%   48%                 | >128      —                 |  77.3
      +0.30     8     32   |  23.8   81.5% |   86%   26%                 |   28    15%                 |  24.4
      +0.30     8     64   |  32.1   93.5% |   96%   50%                 |   56    43%                 |  34.3
      +0.30     8    128   |  41.2   98.5% |   98%   68%                 |  112    63%                 |  42.3
      (every 4 and 16 within a few settings of every 8; no study decided the wrong way or "equivalent")

  So a look every 8 settings needs 15–68% fewer settings per model than the fixed design of its budget for
  effects of +0.2 to +0.3, deciding about as often (up to 8 points less at a budget of 32, as often or more at
  64–128); for +0.1, which neither decides often at these sizes, it saves 1–10% and decides less often (17 vs 26%
  at 64). Against a fixed design sized to the same decision rate (which needs the effect known in advance) it
  saves 3–63% for +0.2 and +0.3 and costs more for +0.1.

Permutation tests use 999 Monte Carlo permutations here (the library default is 10,000), except n ≤ 14,
where all 2^n swaps are enumerated exactly. Every cell is seeded: the output is deterministic.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
from scipy.stats import ks_2samp

from robustbench_vit.analysis import inference as I
from robustbench_vit.analysis.comparison import MARGINS, decide
from robustbench_vit.analysis.sequential import Evidence, expected_settings, first_decision, looks_at, schedule

ALPHA, WINDOW, PERMUTATIONS, CHANCE = 0.05, 10.0, 999, 90.0
NS, QS = (9, 32, 64), (0.0, 0.2, 0.4, 0.6)
LARGE_NS, LARGE_QS = (128, 512), (0.0, 0.4)
AREA = I.area_difference(WINDOW)
PRIMARY = [AREA, I.ks_within(WINDOW)]  # what comparison.decide tests, with ALIGN
ALIGN = I.align_shift(100.0)
OLD_PRIMARY = [AREA, I.ks_distance]  # before: the KS gap over the whole Δ range, no alignment
SEQ_EVERY, SEQ_BUDGETS, SEQ_QS = (4, 8, 16), (32, 64, 128), (0.0, 0.3, 0.6)  # look schedules shipped; nulls
SEQ_EFFECTS, SEQ_EFFECT_Q, SEQ_REF_N = (0.1, 0.2, 0.3), 0.2, 32  # Δ-area effects (mean at SEQ_REF_N settings)
FIXED_NS = (8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128)  # fixed designs set against it


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


def schedules() -> dict[tuple[int, int], list]:
    """Every shipped look schedule, (look every, budget) → its looks: the first at `every`, the budget last."""
    return {(e, n): schedule(looks_at(e, n), n) for n in SEQ_BUDGETS for e in SEQ_EVERY
            if n // e <= 16}  # every 4 to 128 (32 looks) left out: the slowest cell, and the bound holds for any


def sequential_cell(sampler, q: float, sims: int, fixed=(), seed: int = 0) -> tuple[dict, dict]:
    """`sims` simulated studies of max(SEQ_BUDGETS) settings per model (a look at n reads the first n), every
    schedule run on the same studies. Returns per schedule each study's (settings at the stop, outcome), and per
    fixed size n each study's Evidence there. The evidence at a size (permutation p, bootstrap) is computed once
    per study and read at every schedule's level, by comparison.decide's rule (sequential.Evidence)."""
    scheds, budget, margin = schedules(), max(SEQ_BUDGETS), MARGINS["area"]
    rng = np.random.default_rng([seed, round(100 * q), 11])
    stops, at = {key: [] for key in scheds}, {n: [] for n in fixed}
    for k in range(sims):
        a, b = sampler(budget, q, rng)
        cache: dict[int, Evidence] = {}

        def evidence(n: int, a=a, b=b, k=k, cache=cache) -> Evidence:
            """The study's evidence at its first n settings (computed once)."""
            if n not in cache:
                cache[n] = Evidence.of(a[:n], b[:n], seed=k, permutations=PERMUTATIONS, window=WINDOW)
            return cache[n]
        for key, looks in scheds.items():
            look, outcome = first_decision(evidence, looks, margin)
            stops[key].append((look.n, outcome))
        for n in fixed:
            at[n].append(evidence(n))
    return stops, at


def rate(k: int, sims: int, limit: float) -> str:
    """k of sims in percent with its Wilson 95% interval, flagged ! when above limit + 3 Monte Carlo SE."""
    lo, hi = I.wilson(k, sims)
    flag = "!" if k / sims > limit + 3 * math.sqrt(limit * (1 - limit) / sims) else " "
    return f"{100 * k / sims:4.1f} [{100 * lo:3.1f}, {100 * hi:4.1f}]{flag}"


def sequential_null(sims: int) -> None:
    """Table 1: false more / less robust under the null for every schedule and capped share; false equivalent at
    a true difference of +δ."""
    print(f"\nsequential decisions (analysis.sequential: Kim–DeMets ρ = 2 alpha spending over the budget, each "
          f"look decided at its level α_k, union bound). Null (both models alike): share of {sims} studies called "
          f"more / less robust at any look, % [Wilson 95%], ! = above 5% + 3 SE; eq = stopped as equivalent")
    cells = {q: sequential_cell(null_pair, q, sims)[0] for q in SEQ_QS}
    print(f"{'every':>5} {'budget':>6} | " + " | ".join(f"q = {q:.1f}: {'more/less':>16} {'eq':>5}" for q in SEQ_QS))
    for key in schedules():
        cols = []
        for q in SEQ_QS:
            outs = [o for _, o in cells[q][key]]
            wrong = sum(o in ("more robust", "less robust") for o in outs)
            cols.append(f"{'':9}{rate(wrong, sims, ALPHA):>16} {100 * outs.count('equivalent') / sims:4.0f}%")
        print(f"{key[0]:>5} {key[1]:>6} | " + " | ".join(cols), flush=True)
    delta = MARGINS["area"]
    k = spread_for(delta, max(SEQ_BUDGETS), 0.0)
    stops, at = sequential_cell(wider_pair(k), 0.0, sims, fixed=(32, 64, 128))
    print(f"\ntrue difference +δ = +{delta:g} (spread k = {k:.2f}: mean Δ-area difference δ at "
          f"{max(SEQ_BUDGETS)} settings, more below), q = 0: share of {sims} studies called equivalent, % [Wilson "
          f"95%], ! = above 2.5% + 3 SE (the bound is Σα_k/2 = 2.5%); the fixed design at α = 5%: " + ", ".join(
              f"n = {n}: {100 * np.mean([e.outcome(ALPHA, delta) == 'equivalent' for e in ev]):.1f}%"
              for n, ev in at.items()))
    for key, st in stops.items():
        print(f"{key[0]:>5} {key[1]:>6} | {rate(sum(o == 'equivalent' for _, o in st), sims, ALPHA / 2)}")


def sequential_effects(sims: int) -> None:
    """Table 2: expected settings to a decision for effects of the default studies' sizes, against the fixed
    design with the same decision rate."""
    margin = MARGINS["area"]
    print(f"\n$ python {' '.join(sys.argv)}\neffects (a's errors spread k times b's; mean Δ-area difference at {SEQ_REF_N} settings as given), "
          f"q = {SEQ_EFFECT_Q:g}, {sims} studies: E[n] = mean settings per model at the stop (undecided: the "
          "budget N), decided = share called more robust (wrong = less robust or equivalent); at N = the fixed "
          "design of the budget's size (α = 5%): its share decided, and the saving 1 − E[n] / N; fixed n = the "
          f"smallest fixed design ({', '.join(map(str, FIXED_NS))}) deciding at least as often as the sequential "
          "one (an oracle that knew the effect), saving = 1 − E[n] / fixed n; normal = "
          f"sequential.expected_settings from the mean difference and bootstrap sd at {SEQ_REF_N} settings")
    print(f"{'effect':>6} {'every':>5} {'budget':>6} | {'E[n]':>5} {'decided':>7} {'wrong':>5} | {'at N':>5} "
          f"{'saving':>6} | {'fixed n':>7} {'saving':>6} | {'normal':>6}")
    for effect in SEQ_EFFECTS:
        k = spread_for(effect, SEQ_REF_N, SEQ_EFFECT_Q)
        stops, at = sequential_cell(wider_pair(k), SEQ_EFFECT_Q, sims, fixed=FIXED_NS)
        fixed = {n: float(np.mean([e.outcome(ALPHA, margin) == "more robust" for e in ev])) for n, ev in at.items()}
        ref = at[SEQ_REF_N]
        d, sd = float(np.mean([e.value for e in ref])), float(np.mean([e.boot.std() for e in ref]))
        for (every, budget), st in stops.items():
            mean_n = float(np.mean([n for n, _ in st]))
            right = float(np.mean([o == "more robust" for _, o in st]))
            wrong = float(np.mean([o in ("less robust", "equivalent") for _, o in st]))
            eq = next((n for n, r in fixed.items() if r >= right), None) if right > 0 else None
            saving = f"{100 * (1 - mean_n / eq):5.0f}%" if eq else "     —"
            normal = expected_settings(d, sd, SEQ_REF_N, margin, looks=looks_at(every, budget), budget=budget)
            print(f"{effect:+6.2f} {every:>5} {budget:>6} | {mean_n:5.1f} {100 * right:6.1f}% {100 * wrong:4.1f}% | "
                  f"{100 * fixed[budget]:4.0f}% {100 * (1 - mean_n / budget):5.0f}% | "
                  f"{eq or '>' + str(max(FIXED_NS)):>7} {saving} | {normal:6.1f}", flush=True)
        n80 = next((n for n, r in fixed.items() if r >= 0.8), None)
        print(f"{'':6} fixed design: decided {', '.join(f'{100 * fixed[n]:.0f}% at {n}' for n in SEQ_BUDGETS)}; "
              f"80% at {n80 or '> ' + str(max(FIXED_NS))} settings; mean difference {d:+.3f}, bootstrap sd {sd:.3f} "
              f"at {SEQ_REF_N}", flush=True)


def sequential(sims: int) -> None:
    """The sequential decisions' tables (null error rates, then the saving against the fixed design)."""
    print(f"\n$ python {' '.join(sys.argv)}\n{sims} simulated studies per cell; {PERMUTATIONS} permutations per look (exact 2^n for n ≤ "
          f"{I.EXACT_MAX}), {I.BOOTSTRAP:,} bootstrap resamples; schedules: a look every 4, 8 or 16 settings per "
          f"model from that size on, the budget ({', '.join(map(str, SEQ_BUDGETS))}) last")
    sequential_null(sims)
    sequential_effects(sims)


def main() -> None:
    """Print the calibration tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=None, help="simulated studies per cell (default 400)")
    parser.add_argument("--quick", action="store_true", help="100 simulated studies per cell (rough)")
    parser.add_argument("--sequential", action="store_true", help="only the sequential decisions' tables")
    args = parser.parse_args()
    sims = args.sims or (100 if args.quick else 400)
    t0 = time.perf_counter()
    if args.sequential:
        sequential(sims)
        print(f"\nelapsed: {time.perf_counter() - t0:.1f} s")
        return
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
