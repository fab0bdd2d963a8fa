"""Permutation tests, intervals and power: calibration under a simulated null, degenerate inputs, hand computations."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from robustbench_vit.analysis import inference as I

_spec = importlib.util.spec_from_file_location("calibration", Path(__file__).parents[1] / "benchmarks/calibration.py")
C = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(C)

SIMS = 400
BAND = 3 * math.sqrt(0.05 * 0.95 / SIMS)  # 3 Monte Carlo SE of a 5 % rate from 400 studies: 3.27 points
AREA = I.area_difference(10.0)


@pytest.mark.parametrize("q", [0.0, 0.2, 0.4, 0.6])
@pytest.mark.parametrize("n", [9, 32, 64])
def test_primary_test_has_size_alpha(n, q):
    # both models from one distribution, a share q capped at 100: the paired test of the Δ-EDF area and the KS
    # distance together (min-p) rejects 5 % of null studies (n = 9: all 512 swaps enumerated exactly; n = 32, 64:
    # 199 Monte Carlo permutations here, for speed — the size is α at any count, with the +1 correction)
    assert abs(C.rejection_rate(n, q, SIMS, C.permutation(C.PRIMARY, 199)) - 0.05) <= BAND


@pytest.mark.parametrize("q", [0.0, 0.6])
def test_area_alone_has_size_alpha_with_ties(q):
    # the area alone at n = 9 (exact): were ties with the observed statistic counted whole, these cells would fall
    # to 0-0.5 % (checked); the randomised tie-break keeps them at 5 %
    assert abs(C.rejection_rate(9, q, SIMS, C.permutation(AREA)) - 0.05) <= BAND


def test_combined_test_with_few_permutations_has_size_alpha():
    # with 19 permutations the observed values must join the null for the tail fractions (else ~10 %)
    sims = 1000
    rate = C.rejection_rate(32, 0.2, sims, C.permutation(C.PRIMARY, 19))
    assert abs(rate - 0.05) <= 3 * math.sqrt(0.05 * 0.95 / sims)


@pytest.mark.parametrize("n, q", [(32, 0.0), (32, 0.4), (128, 0.0), (512, 0.0), (512, 0.4)])
def test_constant_shift_is_not_a_difference(n, q):
    # Δerror is measured from each model's best, so a model worse by a constant is equally robust. Without the
    # alignment (the old test) a shift of 7 was rejected 3.5 % at n = 32, 7.5 % at 64, 11.5 % at 128, ~20 % at 512
    sims = 200 if n == 512 else SIMS
    band = 3 * math.sqrt(0.05 * 0.95 / sims)
    assert C.rejection_rate(n, q, sims, C.permutation(C.PRIMARY, 199), sampler=C.shifted_pair) <= 0.05 + band
    # exactly a + 7: the same Δ at every setting → statistic 0, no swap gives a smaller |T| → p_conservative 1
    a = np.array([12.0, 20, 31, 100])
    r = I.paired_test(a, np.minimum(a + 7, 100), AREA)
    assert r.statistic == pytest.approx(0, abs=1e-12) and r.p_conservative == 1


def test_the_old_test_leaks_a_shift_at_512_settings():
    # what the alignment fixes: the unaligned test with the KS gap over the whole Δ range flags the shift
    rate = C.rejection_rate(512, 0.4, 100, C.permutation(C.OLD_PRIMARY, 199, align=None), sampler=C.shifted_pair)
    assert rate > 0.05 + 3 * math.sqrt(0.05 * 0.95 / 100)


@pytest.mark.parametrize("n", [32, 512])
def test_scale_change_is_not_a_difference_in_normalised_robustness(n):
    # b learns 0.6 of what a learns at every setting: the same share of the attainable improvement everywhere
    sims = 200
    rate = C.rejection_rate(n, 0.2, sims, C.normalised(199), sampler=C.scaled_pair)
    assert abs(rate - 0.05) <= 3 * math.sqrt(0.05 * 0.95 / sims)


def test_one_init_per_model_breaks_the_test_and_one_per_trial_holds():
    # DESIGN.md §1.2: every trial of a model from the same initial weights (the old seeding rule) leaves one
    # random effect per model that no permutation varies; with an init draw per trial the test holds its size
    sims, n = 200, 512
    band = 3 * math.sqrt(0.05 * 0.95 / sims)
    assert C.rejection_rate(n, 0.0, sims, sampler=C.init_pair(per_trial=False)) > 0.05 + band
    assert abs(C.rejection_rate(n, 0.0, sims, sampler=C.init_pair(per_trial=True)) - 0.05) <= band


@pytest.mark.parametrize("n, q", [(32, 0.4), (512, 0.0)])
def test_three_way_decision_aa_rate_and_power_at_two_margins(n, q):
    # copies of one model are called more or less robust in at most 5 % of studies (measured 0 % of 40 at
    # n = 32–512: the interval must clear the margin too); a true difference of 2δ is decided at least as often
    # as the power the studies state for it (the stated power is conservative: 13 vs 20 % at 32, 45 vs 58 % at 512)
    sims = 40
    aa = C.decisions(n, q, sims)
    assert aa["more robust"] + aa["less robust"] <= 0.05
    alt = C.decisions(n, q, sims, C.wider_pair(C.spread_for(0.1, n, q, draws=50)))
    assert alt["less robust"] == 0 and alt["more robust"] >= alt["power"] - 0.15


def check(r: I.TestResult, n_perm: int) -> None:
    """A test result is finite, with 0 < p ≤ p_conservative ≤ 1 and the expected number of permutations."""
    assert math.isfinite(r.statistic) and 0 < r.p <= r.p_conservative <= 1 and r.permutations == n_perm


def test_degenerate_inputs():
    rng = np.random.default_rng(1)
    learning, capped = rng.uniform(10, 40, 8), np.full(8, 100.0)
    # a model that never trained: every Δ = 0, so area 1 (Δ alone cannot tell it from a perfectly robust one)
    for stat in (AREA, I.ks_distance):
        check(I.paired_test(capped, learning, stat), 2**8)
        check(I.two_sample_test(capped, learning, stat), 10_000)
    assert I.paired_test(capped, learning, AREA).statistic > 0
    lo, hi = I.bootstrap_interval(capped, learning, AREA, paired=True)
    assert 0 < lo <= hi <= 1
    # identical samples: statistic 0, every permutation ties → no evidence at all: p = p_conservative = 1
    for stat in (AREA, I.ks_distance):
        r = I.paired_test(learning, learning, stat)
        check(r, 2**8)
        assert r.statistic == 0 and r.p == r.p_conservative == 1
        assert I.two_sample_test(learning, learning, stat).p_conservative == 1
    assert I.bootstrap_interval(learning, learning, AREA, paired=True) == (0.0, 0.0)
    # one setting: both samples are their own best → Δ = 0, statistic 0; swaps: 2 (paired), C(2, 1) = 2 (two-sample)
    for a, b in (([30.0], [50.0]), ([30.0], [100.0])):
        for stat in (AREA, I.ks_distance):
            r = I.paired_test(a, b, stat)
            check(r, 2)
            assert r.statistic == 0 and r.p_conservative == 1
            check(I.two_sample_test(a, b, stat), 2)
        assert I.bootstrap_interval(a, b, AREA, paired=False) == (0.0, 0.0)
    # two settings: 4 swaps, C(4, 2) = 6 re-deals
    check(I.paired_test([10.0, 100], [20.0, 25], AREA), 4)
    check(I.two_sample_test([10.0, 100], [20.0, 25], I.ks_distance), 6)
    assert all(map(math.isfinite, I.bootstrap_interval([10.0, 100], [20.0, 25], AREA, paired=True)))
    assert 0 <= I.power([10.0, 100], [20.0, 25], AREA, paired=True, n=2, sims=50) <= 1
    assert all(math.isnan(x) for x in I.wilson(0, 0))


def test_ks_distance_with_ties():
    # a = 2, 3, 3, 3 → Δa = 0, 1, 1, 1; b = 5, 6, 7, 7 → Δb = 0, 1, 2, 2 (F = share strictly below x)
    # just above 0: Fa = Fb = 1/4 → 0; just above 1: Fa = 4/4, Fb = 2/4 → 1/2; above 2: 1, 1 → 0. D = 1/2.
    # Walking the pooled sorted values without grouping ties would pass 0, 0 | 1a 1a 1a → 3/4 (wrong).
    a, b = np.array([2, 3, 3, 3.0]), np.array([5, 6, 7, 7.0])
    assert I.ks_distance(a, b) == pytest.approx(0.5)
    assert I.ks_distance(b, a) == pytest.approx(0.5) and I.ks_distance(a, a + 10) == 0
    # vectorised over leading axes: one row per pair
    assert I.ks_distance(np.stack([a, a]), np.stack([b, a])).tolist() == pytest.approx([0.5, 0])


def test_paired_exact_by_hand():
    # settings (a, b) = (10, 10), (11, 30), (12, 50); area over [0, 10] = mean(max(0, 1 − Δ/10))
    # no swap: Δa = 0, 1, 2 → 0.9; Δb = 0, 20, 40 → 1/3; T = 0.5667. Swapping setting 1 changes nothing.
    # swap 2: a = 10, 30, 12 → (1 + 0 + 0.8)/3 = 0.6; b = 10, 11, 50 → (1 + 0.9 + 0)/3 = 0.6333; T = −0.0333
    # swap 3: T = +0.0333; swap 2 and 3: T = −0.5667. Over the 8 swaps |T*| = 0.5667 four times, 0.0333 four
    # times → 0 above, 4 ties: p_conservative = 4/8, randomised p = U·4/8 ∈ (0, 0.5]
    r = I.paired_test([10.0, 11, 12], [10.0, 30, 50], AREA)
    assert r.statistic == pytest.approx(0.9 - 1 / 3) and r.exact and r.permutations == 8
    assert r.p_conservative == 0.5 and 0 < r.p <= 0.5
    assert r.method() == "paired permutation test (exact, all 8 permutations)"


def test_permutation_counts_and_p_range():
    rng = np.random.default_rng(2)
    for n in (3, 14, 15, 40):
        a, b = C.null_pair(n, 0.3, rng)
        r = I.paired_test(a, b, AREA, permutations=999)
        assert (r.exact, r.permutations) == ((True, 2**n) if n <= 14 else (False, 999))
        check(r, r.permutations)
    a, b = rng.uniform(0, 50, 4), rng.uniform(0, 50, 5)  # C(9, 4) = 126 re-deals
    assert I.two_sample_test(a, b, I.ks_distance, permutations=126).exact
    r = I.two_sample_test(a, b, I.ks_distance, permutations=125)
    assert not r.exact and r.permutations == 125
    r = I.permutation_test(a, b, AREA, paired=False, permutations=200)
    assert r.exact and r.permutations == 126 and not r.paired
    check(r, 126)


def clear_effect(n=30, seed=4):
    """a within 0.5 of its best at every setting, b spread over 30 points: a is clearly more robust."""
    rng = np.random.default_rng(seed)
    return 20 + rng.uniform(0, 0.5, n), 20 + rng.uniform(0, 30, n)


def test_bootstrap_interval_covers_a_clear_effect():
    a, b = clear_effect()
    observed = float(AREA(a, b))  # ≈ 0.98 − 0.17: a's Δ ≤ 0.5, b's Δ spread over [0, 30]
    for paired in (True, False):
        lo, hi = I.bootstrap_interval(a, b, AREA, paired=paired)
        assert 0 < lo < observed < hi  # the interval holds the observed difference and excludes 0


def test_wilson():
    # 0/10: centre = half = (z²/20)/(1 + z²/10) → lower 0, upper (z²/10)/(1 + z²/10) = 0.38415/1.38415 = 0.27753
    assert I.wilson(0, 10) == (0.0, pytest.approx(0.27753, abs=1e-5))
    # 10/10 mirrors it: lower 1 − 0.27753
    assert I.wilson(10, 10) == pytest.approx((0.72247, 1.0), abs=1e-5)
    lo, hi = I.wilson(5, 10)
    assert lo == pytest.approx(1 - hi) and lo < 0.5 < hi


def test_power_and_needed():
    rng = np.random.default_rng(4)
    a = rng.uniform(10, 40, 30)
    # identical samples: every resampled study has T = 0 = every T* → no evidence, p = 1 → never rejects
    assert I.power(a, a, AREA, paired=True, n=32) == 0
    assert I.power(a, a + 7, AREA, paired=True, n=32) <= 0.05  # same Δ shape: T = 0, the smallest |T*|
    tight, spread = clear_effect()
    assert I.power(tight, spread, AREA, paired=True, n=32) > 0.95
    assert I.power(tight, spread, AREA, paired=False, n=32) > 0.95
    assert I.needed_for_power(a, a, AREA, paired=True) is None
    assert I.needed_for_power(tight, spread, AREA, paired=True) <= 12


def test_a_smaller_alpha_widens_the_interval_and_can_leave_a_decision_inconclusive():
    # a sequential look decides at its spent level: the test at p < α, the (1 − α) interval beyond ±δ
    from robustbench_vit.analysis.comparison import decide

    rng = np.random.default_rng(0)
    base = rng.exponential(6, 48)
    b, a = 20 + base, 20 + 0.6 * base + rng.normal(0, 0.5, 48)
    kw = dict(chance=90.0, margin=0.05, paired=True)
    usual, strict = decide(a, b, "area", **kw), decide(a, b, "area", **kw, alpha=0.001)
    assert usual == decide(a, b, "area", **kw, alpha=I.ALPHA) and usual.alpha == I.ALPHA and strict.alpha == 0.001
    assert usual.outcome == "more robust" and strict.outcome == "inconclusive"
    assert strict.difference.value == usual.difference.value
    assert strict.difference.low < usual.difference.low and strict.difference.high > usual.difference.high
    assert strict.power < usual.power and strict.power_at(0.1) < usual.power_at(0.1)


def _staged(alpha: float, permutations: int = I.PERMUTATIONS):
    """The decision's staged test (C.PRIMARY, aligned), (a, b, k) → (p, permutations evaluated)."""
    def run(a, b, k):
        r = I.paired_test(a, b, C.PRIMARY, permutations=permutations, seed=k, align=C.ALIGN, alpha=alpha)
        return r.p, r.permutations
    return run


@pytest.mark.parametrize("n, q", [(32, 0.0), (64, 0.4)])
def test_staged_test_has_size_alpha_and_decides_as_the_full_one(n, q):
    # stopping after 1,000 / 2,500 / 5,000 of 10,000 permutations once p is clearly on one side of α keeps the size
    # at α; on the same studies its decisions match the full 10,000's (each may differ with probability ≤ RISK per
    # stage), and most null studies stop at the first stage
    staged = C.simulate(n, q, SIMS, _staged(0.05))
    assert abs(np.mean(staged[:, 0] < 0.05) - 0.05) <= BAND and np.mean(staged[:, 1] == I.STAGES[0]) > 0.8
    full = C.simulate(n, q, SIMS, C.permutation(C.PRIMARY, I.PERMUTATIONS))
    assert np.mean((staged[:, 0] < 0.05) != (full[:, 0] < 0.05)) <= 2 / SIMS


def test_staged_test_runs_to_the_end_when_needed_and_resolves_a_small_level():
    rng = np.random.default_rng(5)
    a, b = C.null_pair(64, 0.0, rng)
    stats, kw = C.PRIMARY, dict(paired=True, seed=3, align=C.ALIGN)
    full = I.permutation_test(a, b, stats, **kw)
    # no level, or one it never settles against: all permutations, the unstaged result exactly
    assert I.permutation_test(a, b, stats, **kw, alpha=None) == full
    assert I.permutation_test(a, b, stats, **kw, alpha=full.p) == full and full.planned == 0
    early = I.permutation_test(a, b, stats, **kw, alpha=0.05)
    assert early.permutations == I.STAGES[0] and early.planned == I.PERMUTATIONS and "of up to 10,000" in early.method()
    # a clear effect at α = 0.001 (a sequential look's spent level): 1,000 permutations cannot show p < 0.001
    # (p ≥ 1/1,001), so the test goes on until they can
    strong = I.permutation_test(a - 0.9 * (a - a.min()), b, stats, **kw, alpha=0.001)
    assert strong.p < 0.001 and strong.permutations >= 5_000
