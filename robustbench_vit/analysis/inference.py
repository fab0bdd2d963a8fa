"""Statistical inference for comparisons: permutation tests, bootstrap intervals, power by simulation.

Every function takes error samples in percent, with did-not-train trials already at the cap (ERROR_CAP), and is
vectorised over leading axes, so one numpy call evaluates thousands of permutations or resamples.

- The tests are permutation tests, exact under their null whatever the shape of the errors (capped trials
  included): paired (swap the two models' results within each identical setting) or two-sample (re-deal the
  pooled results). Each model's best is re-taken in every permutation, because Δerror is measured from it.
- p-values are two-sided: exact enumeration up to EXACT_MAX pairs, else a seeded Monte Carlo of
  PERMUTATIONS draws with the +1 correction; ties with the observed statistic are broken at random (seeded),
  which keeps the size at α where the statistic has many ties (see `_tail_p`).
- Staged Monte Carlo (a decision's test, which knows its level α): permutations are drawn in stages (STAGES,
  then all PERMUTATIONS) and the test stops after a stage where a Clopper–Pearson bound (RISK per stage) puts the
  running p clearly below or clearly above α; the reported p is that stage's, a Monte Carlo p over the permutations
  evaluated, +1 correction and randomised ties as always. Its decision differs from the full run's only with
  probability ≤ RISK per stage; the size stays α (tests/test_inference.py, benchmarks/bench_looks.py).
- Intervals are percentile bootstraps over settings (paired) or within each sample (unpaired).
- Power is estimated by resampling the observed settings at a given size and running the same test; it
  assumes the observed difference is the true one, so it is an estimate, optimistic for small studies.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy.stats import beta, norm

ALPHA = 0.05
PERMUTATIONS = 10_000  # Monte Carlo permutations of a test's p-value
STAGES = (1_000, 2_500, 5_000)  # a staged test (alpha given) may stop after these many permutations (then all)
RISK = 1e-3  # per stage: the binomial bound's chance of putting p on the wrong side of alpha
ADAPTIVE = True  # decisions stage their permutations (False: always all PERMUTATIONS, the old path)
EXACT_MAX = 14  # paired tests enumerate all 2^n swaps up to this many settings (16,384)
BOOTSTRAP = 2_000  # resamples of a bootstrap interval
POWER_SIMS, POWER_PERMUTATIONS = 200, 199  # simulated studies per power estimate, permutations in each
POWER_TARGET = 0.8
SEARCH_SIMS, SEARCH_PERMUTATIONS = 100, 99  # cheaper estimates while searching for the size that gives the target
MAX_N = 512  # largest study size a power search considers
_TOL = 1e-9  # statistics within this of the observed one count as ties (floating-point sums differ in order)

Statistic = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (…, n), (…, m) → (…)


def deltas(e: np.ndarray) -> np.ndarray:
    """Δerror along the last axis: each error minus the best of its sample."""
    return e - e.min(axis=-1, keepdims=True)


def area(e: np.ndarray, window: float) -> np.ndarray:
    """Δ-EDF area over [0, window] along the last axis: mean(max(0, 1 − Δ/window)); 1 = every trial at the best."""
    return np.clip(1.0 - deltas(e) / window, 0.0, 1.0).mean(axis=-1)


def area_difference(window: float) -> Statistic:
    """The primary statistic: Δ-EDF area of a minus that of b (> 0: a is more concentrated near its best)."""
    return lambda a, b: area(a, window) - area(b, window)


def ks_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Largest vertical distance between the Δerror EDFs of a and b (the KS D), along the last axis.

    F(x) = fraction of Δ strictly below x; the distance is taken just above each observed Δ (after every tie).
    """
    # Δ in units of 1e-9 (equal Δs computed in another order are ties), times 2, plus the sample's tag (0: a, 1: b):
    # one integer sort orders the pooled values and keeps track of whose each is (4–5× faster than an argsort)
    ka = np.rint(deltas(a) * 1e9).astype(np.int64) * 2
    kb = np.rint(deltas(b) * 1e9).astype(np.int64) * 2 + 1
    n, m = ka.shape[-1], kb.shape[-1]
    k = np.sort(np.concatenate([ka, kb], axis=-1), axis=-1)
    gap = np.cumsum(np.where(k & 1, -1.0 / m, 1.0 / n), axis=-1)
    v = k >> 1
    last_of_tie = np.concatenate([v[..., 1:] != v[..., :-1], np.ones(v.shape[:-1] + (1,), bool)], axis=-1)
    return np.where(last_of_tie, np.abs(gap), 0.0).max(axis=-1)


def ks_within(window: float) -> Statistic:
    """The largest gap between the Δ-EDFs over [0, window] (what the report draws): Δ beyond the window are all
    alike, so where a capped trial sits (100 − best) does not matter, and the statistic is shift-invariant."""
    return lambda a, b: ks_distance(np.minimum(deltas(a), window), np.minimum(deltas(b), window))


def retained(e: np.ndarray, chance: float) -> np.ndarray:
    """Normalised robustness along the last axis: the mean share of the attainable improvement (chance − best) that
    a trial keeps, mean(clip((chance − e) / (chance − best), 0, 1)); 1 = every trial at the best, 0 = at chance.
    Invariant to a scale change of the errors towards chance (e → chance − k·(chance − e))."""
    span = np.maximum(chance - e.min(axis=-1, keepdims=True), 1e-9)
    return np.clip((chance - e) / span, 0.0, 1.0).mean(axis=-1)


def retained_difference(chance: float) -> Statistic:
    """Normalised robustness of a minus that of b (> 0: a keeps more of what it can gain)."""
    return lambda a, b: retained(a, chance) - retained(b, chance)


Align = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (a, b) → b moved onto a's level before permuting


def align_shift(cap: float) -> Align:
    """b shifted by the median paired difference a − b over the settings where neither is capped (DESIGN.md §1.2).

    The permutation null is exchangeability; a model worse by a constant is not exchangeable with the other,
    although its Δ shape is the same, and the test would flag it more often as n grows. Shift-invariant
    statistics (Δ-EDF area, the KS gap within the window) are unchanged by moving b; only the null is.
    """
    def align(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ok = (a < cap) & (b < cap)
        if a.ndim > 1:
            ok = ok.all(axis=tuple(range(1, a.ndim)))
        d = (a - b)[ok] if ok.any() else np.zeros(1)
        return b + float(np.median(d))
    return align


def align_scale(chance: float) -> Align:
    """b rescaled towards chance by the median ratio of the paired improvements (chance − a) / (chance − b) over
    the settings where both learned: the alignment of `retained`, which a scale change leaves unchanged."""
    def align(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ok = (a < chance) & (b < chance)
        k = float(np.median((chance - a[ok]) / (chance - b[ok]))) if ok.any() else 1.0
        return chance - k * (chance - b)
    return align


@dataclass(frozen=True)
class TestResult:
    """A permutation test's outcome: the observed statistics, the combined two-sided p, how p was obtained."""

    statistics: tuple[float, ...]  # observed value of each statistic, in the order given
    p: float  # of all statistics together (min-p combination); the one statistic's p where there is one
    p_conservative: float  # ties with the observed value counted whole (≥ p)
    p_each: tuple[float, ...]  # each statistic's own permutation p (randomised ties, as p)
    permutations: int  # permutations evaluated (all of them when exact)
    exact: bool
    paired: bool
    floor: tuple[float, ...] = ()  # per statistic: 95% quantile of |T| under the null (what copies would differ by)
    planned: int = 0  # the permutations a staged test could have run (> permutations: it stopped early)

    @property
    def statistic(self) -> float:
        """The first (primary) statistic's observed value."""
        return self.statistics[0]

    def method(self) -> str:
        """How the p-value was obtained, in words."""
        kind = "paired" if self.paired else "two-sample"
        how = f"exact, all {self.permutations:,}" if self.exact else f"Monte Carlo, {self.permutations:,}"
        if self.planned > self.permutations:
            return (f"{kind} permutation test (Monte Carlo, {self.permutations:,} of up to {self.planned:,} "
                    "permutations: stopped once p was clearly on one side of the level)")
        return f"{kind} permutation test ({how} permutations)"


def _tail_p(observed: float, null: np.ndarray, exact: bool, u: float) -> tuple[float, float]:
    """(randomised, conservative) p of an observed value against its permutation null; larger = more extreme.

    Ties with the observed value are broken at random: p = (#{T* > T} + u·#{T* = T}) / N with u ~ U(0, 1]
    (seeded). The Δ-EDF area is flat wherever trials lie beyond the window, so ties are common, and counting them
    whole (the conservative p, also returned) would hold the size far below α in small studies. Under a Monte
    Carlo null the observed value counts as one more tie (the +1 correction). An observed value at the least
    extreme end of the null (e.g. two identical samples, where every permutation ties) is no evidence: p = 1.
    """
    above, ties = int(np.sum(null > observed + _TOL)), int(np.sum(np.abs(null - observed) <= _TOL))
    extra = 0 if exact else 1
    n, ties = len(null) + extra, ties + extra
    if observed <= null.min() + _TOL:
        return 1.0, 1.0
    return (above + u * ties) / n, (above + ties) / n


def _tail_fraction(values: np.ndarray, null: np.ndarray) -> np.ndarray:
    """For each value, the fraction of the null at or above it (a p-value on the null's own scale)."""
    ordered = np.sort(null)
    return (len(null) - np.searchsorted(ordered, values - _TOL, side="left")) / len(null)


def _stages(permutations: int, alpha: float | None) -> list[int]:
    """Where a Monte Carlo test may stop: after each of STAGES below `permutations` (alpha given), then at all."""
    return [k for k in STAGES if k < permutations] + [permutations] if alpha is not None else [permutations]


def _settled(p: float, evaluated: int, alpha: float) -> bool:
    """Whether a running Monte Carlo p over `evaluated` permutations lies clearly on one side of alpha: its
    Clopper–Pearson (1 − RISK) bound on the p of all permutations excludes alpha (p = 1: the observed value is at
    the null's least extreme end, no evidence whatever the count)."""
    if p >= 1.0:
        return True
    k = min(max(p * (evaluated + 1) - 1.0, 0.0), evaluated - 1.0)  # permutations at least as extreme (randomised)
    upper = float(beta.ppf(1 - RISK, k + 1, evaluated - k))
    lower = float(beta.ppf(RISK, k, evaluated - k + 1)) if k > 0 else 0.0
    return upper < alpha or lower > alpha


def _combined(observed: np.ndarray, null: np.ndarray, exact: bool, rng: np.random.Generator
              ) -> tuple[float, float, tuple[float, ...]]:
    """Two-sided (p, conservative p, each statistic's own p) of K statistics: observed (K,), null (K, N).

    Each statistic's |value| becomes its tail fraction within its own null; the smallest over the statistics is
    compared with the same minimum taken in every permutation (Westfall & Young 1993; Pesarin's nonparametric
    combination), so the combined test stays exact. A Monte Carlo null gets the observed values added, so that
    the observed and the permuted tail fractions are taken against the same set. One statistic: its own test.
    """
    u = 1.0 - rng.random()  # one tie-breaking draw for every p of this test
    obs, dist = np.abs(observed), np.abs(null)
    each = tuple(_tail_p(float(o), d, exact, u)[0] for o, d in zip(obs, dist))
    if len(obs) == 1:
        return (*_tail_p(float(obs[0]), dist[0], exact, u), each)
    full = dist if exact else np.concatenate([obs[:, None], dist], axis=1)
    min_full = np.min([_tail_fraction(d, d) for d in full], axis=0)
    min_obs = min(float(_tail_fraction(np.array([o]), d)[0]) for o, d in zip(obs, full))
    return (*_tail_p(-min_obs, -(min_full if exact else min_full[1:]), exact, u), each)


def _swaps(n: int, permutations: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """Swap masks of a paired test: all 2^n when n ≤ EXACT_MAX (exact), else `permutations` random ones."""
    if n <= EXACT_MAX:
        return (np.arange(2**n)[:, None] >> np.arange(n)) & 1 == 1, True
    return rng.random((permutations, n)) < 0.5, False


def _deals(n: int, m: int, permutations: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """Index arrays re-dealing n + m pooled results: every split when few enough (exact), else random ones."""
    if math.comb(n + m, n) <= permutations:
        return np.array([[*c, *(j for j in range(n + m) if j not in c)] for c in combinations(range(n + m), n)]), True
    return rng.permuted(np.tile(np.arange(n + m), (permutations, 1)), axis=1), False


def _stats(stats: Statistic | Sequence[Statistic]) -> list[Statistic]:
    """One statistic or several, as a list."""
    return [stats] if callable(stats) else list(stats)


def _per_setting(swap: np.ndarray, extra: int) -> np.ndarray:
    """A swap mask over settings, broadcastable over `extra` trailing axes: a paired setting may hold several
    results (e.g. one per optimizer), which are swapped together."""
    return swap.reshape(swap.shape + (1,) * extra)


def permutation_test(a, b, stats: Statistic | Sequence[Statistic], *, paired: bool,
                     permutations: int = PERMUTATIONS, seed: int = 0, align: Align | None = None,
                     alpha: float | None = None) -> TestResult:
    """Permutation test of a against b on one statistic or several (min-p combined).

    Paired: a[i] and b[i] are the two models at setting i and the null swaps them (a[i] may be a row of results
    that belong together, swapped whole); two-sample: the pooled results are re-dealt into samples of the
    original sizes. `align` (paired): b is moved onto a's level before swapping (statistics invariant to that
    move observe the same value; their null no longer counts the level difference as evidence). `alpha` (the
    level of the decision the test serves): a Monte Carlo test stops after the first stage where p is clearly on
    one side of it (see `_settled`); None: all `permutations`. Run to the end, the result is the unstaged one.
    """
    a, b, fns, rng = np.asarray(a, float), np.asarray(b, float), _stats(stats), np.random.default_rng(seed)
    if paired:
        swap, exact = _swaps(len(a), permutations, rng)
        swap = _per_setting(swap, a.ndim - 1)
        bb = align(a, b) if align is not None else b

        def permuted(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
            """Permutations lo…hi − 1 of (a, b)."""
            s = swap[lo:hi]
            return np.where(s, bb, a), np.where(s, a, bb)
        total = len(swap)
    else:
        idx, exact = _deals(len(a), len(b), permutations, rng)
        pool = np.concatenate([a, b])

        def permuted(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
            """Permutations lo…hi − 1 of (a, b)."""
            pooled = pool[idx[lo:hi]]
            return pooled[:, :len(a)], pooled[:, len(a):]
        total = len(idx)
    observed = np.array([float(f(a, b)) for f in fns])
    stages = [total] if exact else _stages(total, alpha)
    parts, done, tie_rng = [], 0, copy.deepcopy(rng)  # every stage breaks ties with the same draw
    for end in stages:
        pa, pb = permuted(done, end)
        parts.append(np.stack([f(pa, pb) for f in fns]))
        done, null = end, np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
        p, p_cons, each = _combined(observed, null, exact, copy.deepcopy(tie_rng))
        if end < total and _settled(p, end, alpha):
            break
    floor = tuple(float(q) for q in np.quantile(np.abs(null), 1 - ALPHA, axis=1))
    return TestResult(tuple(observed), p, p_cons, each, null.shape[1], exact, paired, floor,
                      total if done < total else 0)


def paired_test(a, b, stats: Statistic | Sequence[Statistic], **kw) -> TestResult:
    """The paired permutation test (a[i], b[i]: the two models at setting i)."""
    return permutation_test(a, b, stats, paired=True, **kw)


def two_sample_test(a, b, stats: Statistic | Sequence[Statistic], **kw) -> TestResult:
    """The two-sample permutation test (samples of any sizes, nothing paired)."""
    return permutation_test(a, b, stats, paired=False, **kw)


def _resample(a: np.ndarray, b: np.ndarray, size: tuple[int, int], *, count: int, paired: bool,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` bootstrap samples of (a, b): pairs drawn together (paired) or each sample on its own."""
    ia = rng.integers(0, len(a), (count, size[0]))
    ib = ia if paired else rng.integers(0, len(b), (count, size[1]))
    return a[ia], b[ib]


def bootstrap(a, b, fn: Statistic, *, paired: bool, resamples: int = BOOTSTRAP, seed: int = 0) -> np.ndarray:
    """fn over `resamples` bootstrap samples of (a, b): settings resampled in pairs, or each sample alone."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ra, rb = _resample(a, b, (len(a), len(b)), count=resamples, paired=paired,
                       rng=np.random.default_rng(seed))
    return fn(ra, rb)


def bootstrap_interval(a, b, fn: Statistic, *, paired: bool, resamples: int = BOOTSTRAP, alpha: float = ALPHA,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile (1 − α) bootstrap interval of fn(a, b) (see `bootstrap`)."""
    lo, hi = np.quantile(bootstrap(a, b, fn, paired=paired, resamples=resamples, seed=seed), [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def wilson(k: int, n: int, alpha: float = ALPHA) -> tuple[float, float]:
    """Wilson score interval of a rate k/n (NaN for n = 0); sensible at 0/n and n/n, unlike the normal one."""
    if n == 0:
        return (math.nan, math.nan)
    z = float(norm.ppf(1 - alpha / 2))
    p, z2 = k / n, z * z
    centre, half = (p + z2 / (2 * n)) / (1 + z2 / n), z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return (max(0.0, round(centre - half, 12)), min(1.0, round(centre + half, 12)))  # 0/n: 0, not 3e-17


def power(a, b, stats: Statistic | Sequence[Statistic], *, paired: bool, n: int, alpha: float = ALPHA,
          sims: int = POWER_SIMS, permutations: int = POWER_PERMUTATIONS, seed: int = 0) -> float:
    """Estimated power of the permutation test at n settings (n per model): the share of simulated studies,
    each n settings resampled from the observed ones, in which the test rejects at α."""
    a, b, fns, rng = np.asarray(a, float), np.asarray(b, float), _stats(stats), np.random.default_rng(seed)
    rejected = 0
    chunk = max(1, 2_000_000 // max(1, permutations * n))  # simulations per vectorised step (memory bound)
    for start in range(0, sims, chunk):
        k = min(chunk, sims - start)
        sa, sb = _resample(a, b, (n, n), count=k, paired=paired, rng=rng)  # (k, n)
        if paired:
            swap = _per_setting(rng.random((k, permutations, n)) < 0.5, a.ndim - 1)
            pa, pb = np.where(swap, sb[:, None], sa[:, None]), np.where(swap, sa[:, None], sb[:, None])
        else:
            idx = rng.permuted(np.tile(np.arange(2 * n), (k, permutations, 1)), axis=2)
            pooled = np.take_along_axis(np.concatenate([sa, sb], axis=1)[:, None, :], idx, axis=2)
            pa, pb = pooled[..., :n], pooled[..., n:]
        observed = np.stack([f(sa, sb) for f in fns], axis=1)  # (k, K)
        null = np.stack([f(pa, pb) for f in fns], axis=1)  # (k, K, permutations)
        rejected += sum(_combined(o, z, False, rng)[0] <= alpha for o, z in zip(observed, null))
    return rejected / sims


def needed_for_power(a, b, stats: Statistic | Sequence[Statistic], *, paired: bool, target: float = POWER_TARGET,
                     alpha: float = ALPHA, start: int = 2, seed: int = 0) -> int | None:
    """Smallest settings per model, from `start` on a 2–3–4–6–8–12… ladder up to MAX_N, whose estimated power
    reaches `target` (SEARCH_SIMS studies each); None when even MAX_N does not."""
    ladder = [n for n in sorted({int(m * 2**k) for m in (2, 3) for k in range(12)}) if start <= n <= MAX_N]

    def enough(n: int) -> bool:
        """Whether the power at n reaches the target."""
        return power(a, b, stats, paired=paired, n=n, alpha=alpha, sims=SEARCH_SIMS,
                     permutations=SEARCH_PERMUTATIONS, seed=seed) >= target

    if not ladder or not enough(ladder[-1]):
        return None
    lo, hi = 0, len(ladder) - 1  # power grows with n: bisect for the first size that is enough
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if enough(ladder[mid]) else (mid + 1, hi)
    return ladder[lo]
