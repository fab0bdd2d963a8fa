"""Decisions under optional stopping: alpha spent over planned looks, with repeated confidence intervals.

A study run `--until-decided` looks at its comparisons after every few settings and stops once each is decided.
Testing every look at 5% would not be a 5% test (repeated fixed-level tests are not one, DESIGN.md §1.2). Here
look k, at n_k settings per model out of a budget of N, gets its own level α_k, and the decision is the fixed
design's three-way decision taken at that level (`comparison.decide(..., alpha=α_k)`: the permutation test
significant at p < α_k and the (1 − α_k) bootstrap interval beyond ±δ; equivalent when that interval lies inside
±δ). The levels come from an alpha-spending function (Lan & DeMets 1983) of the Kim & DeMets (1987) power family,
f(t) = min(t, 1)^ρ with t = n / N and ρ = RHO = 2:

    α_k = (α − S) · (f(n_k / N) − f(n_{k−1} / N)) / (1 − f(n_{k−1} / N)),

S being the α spent by the earlier looks (under whatever budget they had) and n_{k−1} the previous look's size
(0 for the first); a look at n ≥ N spends everything left. Under one budget throughout this is the plain
spending function, α_k = α·(f(t_k) − f(t_{k−1})); when a later run raises the budget, what is left is spread over
the new remainder. Σ α_k ≤ α always.

Error control is by the union (Bonferroni) bound over the looks, valid whatever the dependence between them (the
looks share their first settings; the p-values are Monte Carlo): a false "more / less robust" needs some look's
test to reject a true null, probability ≤ Σ α_k ≤ α; a false "equivalent" at a true difference of ±δ needs some
look's interval to miss it on one side, ≤ Σ α_k / 2 (repeated confidence intervals, Jennison & Turnbull 1989;
Jennison & Turnbull 2000, ch. 9). The bound is conservative (a group-sequential boundary computed from the joint
distribution of the looks would spend more per look), but it needs no joint distribution of a permutation
statistic across looks, and a run can continue later with a larger budget. A look with level 0 (nothing left to
spend, or no settings added since the previous look) decides nothing: `decide_at` reads it as inconclusive.

Measured 2026-12-04 (`python benchmarks/calibration.py --sequential --sims 200`; tables in that file's docstring,
summary in `methods.SEQUENTIAL_CALIBRATION`): under the null, with 0–60% of trials capped and looks every 4, 8 or
16 settings up to budgets of 32–128, false "more / less robust" in none of 200 studies per cell (24 cells); at a
true +δ, false "equivalent" in none (before MIN_LOOK, 2% from looks at 4 settings). Looking every 8 settings, Δ-area effects of +0.2 / +0.3 stopped after 43 / 32 settings
per model on average with a budget of 64 (the fixed design: 64, deciding 72 / 96% against 74 / 94%) and after
67 / 41 with a budget of 128: 32–68% fewer settings; +0.1 is rarely decided by either design at these sizes.
Caveats: 999 permutations cannot give p below 0.001, so looks spending less decide nothing in simulation (the
library's staged 10,000 can); 2,000 bootstrap resamples put the (1 − α_k) interval at the extreme resamples when
α_k < 0.001, narrower than it should be (the false-equivalence rate above includes this).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from robustbench_vit.analysis import inference as I
from robustbench_vit.analysis.comparison import MARGINS, Decision, Interval, decide
from robustbench_vit.analysis.frame import ERROR_CAP
from robustbench_vit.analysis.metrics import DELTA_WINDOW

ALPHA = I.ALPHA
RHO = 2.0  # Kim–DeMets power: 1 spends evenly (Pocock-like), 3 keeps more for the end (O'Brien–Fleming-like)
MIN_LOOK = 8  # settings per model below which a look before the budget spends nothing and decides nothing
PATHS = 20_000  # simulated paths of expected_settings' normal approximation (seeded: deterministic)


def spend(t: float, alpha: float = ALPHA, rho: float = RHO) -> float:
    """The α spent by information fraction t (settings so far / the budget): alpha · min(t, 1)^rho, 0 for t ≤ 0."""
    return alpha * min(max(t, 0.0), 1.0) ** rho


@dataclass(frozen=True)
class Look:
    """One look of a sequential decision: its size, the level it is decided at, and the α spent so far."""

    n: int  # settings per model at the look
    level: float  # α_k: the test is significant at p < level, the interval is at 1 − level
    spent: float  # cumulative α spent, this look included (≤ α)
    budget: int = 0  # the budget (settings per model) the look was spent under (0: not recorded)

    def to_dict(self) -> dict:
        """The look as plain JSON values (stored in an Optuna study's user attrs)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping) -> Look:
        """A look from `to_dict`'s output (a record without a budget reads as budget 0)."""
        return cls(int(raw["n"]), float(raw["level"]), float(raw["spent"]), int(raw.get("budget", 0)))


def next_look(history: Sequence[Look], n: int, budget: int, *, alpha: float = ALPHA, rho: float = RHO) -> Look:
    """The look at n settings per model after the looks in `history` (oldest first, possibly spent under other
    budgets), the budget now `budget` settings per model: the α left times the spending function's increment
    since the previous look over what it has left; everything left at n ≥ budget. A look at no more settings
    than the last one that spent, or at fewer than MIN_LOOK settings (below the budget), gets level 0: a
    percentile bootstrap over 4 settings cannot hold a level of 10⁻⁴ (in simulation, looks at 4 settings called
    copies "equivalent" in 2–6% of studies, and a true difference of δ in 2%)."""
    spent = history[-1].spent if history else 0.0
    prev = next((lk.n for lk in reversed(history) if lk.level > 0), 0)  # the increment runs from the last spend
    left = max(alpha - spent, 0.0)
    if n >= budget:
        level = left
    elif n < MIN_LOOK:
        level = 0.0
    else:
        before, now = spend(prev / budget, 1.0, rho), spend(n / budget, 1.0, rho)
        level = left * (now - before) / (1.0 - before) if now > before else 0.0
    return Look(int(n), float(level), float(min(alpha, spent + level)), int(budget))


def schedule(ns: Sequence[int], budget: int, *, alpha: float = ALPHA, rho: float = RHO,
             history: Sequence[Look] = ()) -> list[Look]:
    """The looks at sizes `ns` (increasing) under one budget, after `history` (a continued run's earlier looks)."""
    looks = list(history)
    for n in ns:
        looks.append(next_look(looks, n, budget, alpha=alpha, rho=rho))
    return looks[len(history):]


def looks_at(every: int, budget: int, first: int | None = None) -> list[int]:
    """The sizes a `--until-decided` run looks at: `first` (default `every`), then every `every` more, the
    budget last (looked at even where it is not on that step)."""
    first = every if first is None else first
    return [*range(first, budget, every), budget]


def decidable(a, b, cap: float = ERROR_CAP) -> bool:
    """Whether a look can decide anything: at least 2 settings, and each model learned somewhere (a result below
    the cap: a model that did not learn has no robustness, DESIGN.md §1.1)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return min(len(a), len(b)) >= 2 and bool((a < cap).any() and (b < cap).any())


def decide_at(a, b, statistic: str, look: Look, **decide_kwargs) -> Decision:
    """`comparison.decide` at the look's level (chance defaults to ERROR_CAP, margin to the statistic's δ,
    paired to True). A look with level 0 decides nothing (the fixed design's numbers, read as inconclusive),
    nor does one that is not `decidable` (fewer than 2 settings: inconclusive without numbers)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    kw = {"chance": ERROR_CAP, "margin": MARGINS[statistic], "paired": True, **decide_kwargs}
    if min(len(a), len(b)) < 2:
        nan, test = math.nan, I.TestResult((math.nan,), 1.0, 1.0, (1.0,), 0, True, kw["paired"])
        return Decision(statistic, nan, nan, Interval(nan, nan, nan), nan, test, kw["margin"], "inconclusive",
                        0.0, None, 0.0)
    if look.level <= 0 or not decidable(a, b, cap=min(ERROR_CAP, decide_kwargs.get("chance", ERROR_CAP))):
        d = decide(a, b, statistic, **kw)
        return dataclasses.replace(d, outcome="inconclusive", power=0.0, needed=None, alpha=max(look.level, 0.0))
    return decide(a, b, statistic, alpha=look.level, **kw)


def run_sequential(a_full, b_full, *, every: int, budget: int, first: int | None = None, statistic: str = "area",
                   alpha: float = ALPHA, rho: float = RHO, **decide_kwargs) -> tuple[Look, Decision]:
    """A whole sequential study on paired arrays (setting i of both models at index i, at least `budget` long):
    decide at each look on the first n settings and stop at the first decided look. Returns that look and its
    decision, or the budget's look and its undecided decision."""
    a_full, b_full = np.asarray(a_full, float), np.asarray(b_full, float)
    if min(len(a_full), len(b_full)) < budget:
        raise ValueError(f"run_sequential: {min(len(a_full), len(b_full))} settings, fewer than the budget {budget}")
    look, d = None, None
    for look in schedule(looks_at(every, budget, first), budget, alpha=alpha, rho=rho):
        d = decide_at(a_full[:look.n], b_full[:look.n], statistic, look, **decide_kwargs)
        if d.decided:
            break
    return look, d


@dataclass(frozen=True, eq=False)
class Evidence:
    """What a Δ-EDF area decision at one size rests on, whatever its level (to simulate many schedules on the
    same studies): the observed difference, the permutation p over all permutations, the sorted bootstrap."""

    n: int
    value: float
    p: float
    boot: np.ndarray
    ok: bool = True  # `decidable` (else every level reads inconclusive)

    @classmethod
    def of(cls, a, b, *, seed: int = 0, permutations: int = I.PERMUTATIONS,
           window: float = DELTA_WINDOW) -> Evidence:
        """The paired, shift-aligned evidence, computed as `comparison.decide` computes it (same seeds)."""
        a, b = np.asarray(a, float), np.asarray(b, float)
        stats = [I.area_difference(window), I.ks_within(window)]
        test = I.paired_test(a, b, stats, seed=seed, align=I.align_shift(ERROR_CAP), permutations=permutations)
        boot = np.sort(I.bootstrap(a, b, stats[0], paired=True, seed=seed))
        return cls(len(a), float(stats[0](a, b)), test.p, boot, decidable(a, b))

    def outcome(self, level: float, margin: float) -> str:
        """The three-way decision at `level`, by `comparison.decide`'s rule (level 0: inconclusive)."""
        if level <= 0 or not self.ok:
            return "inconclusive"
        lo, hi = np.quantile(self.boot, [level / 2, 1 - level / 2])
        diff = Interval(self.value, float(lo), float(hi))
        side = diff.side(margin)
        if side and self.p < level:
            return "more robust" if side > 0 else "less robust"
        return "equivalent" if diff.inside(margin) else "inconclusive"


def first_decision(evidence: Callable[[int], Evidence], looks: Sequence[Look], margin: float) -> tuple[Look, str]:
    """The first of `looks` whose decision is taken, and its outcome (else the last look and "inconclusive");
    `evidence(n)`: the Evidence at n settings (lazily computed: a study that stops early costs less)."""
    for look in looks:
        outcome = evidence(look.n).outcome(look.level, margin)
        if outcome != "inconclusive":
            return look, outcome
    return looks[-1], "inconclusive"


def expected_settings(difference: float, se: float, n_observed: int, margin: float, *, looks: Sequence[int],
                      budget: int, alpha: float = ALPHA, rho: float = RHO) -> float:
    """Expected settings per model until a sequential decision (an undecided run counts at the budget), by the
    normal approximation: the true difference taken as `difference`, its estimate at n settings normal with sd
    se·√(n_observed / n) and the looks nested (a cumulative mean: independent increments); a look decides a
    direction when |d̂| − z_k·se_n > δ and equivalence when |d̂| + z_k·se_n < δ, z_k = Φ⁻¹(1 − α_k/2).
    `looks`: the sizes looked at (those from the budget on dropped; the budget is always the last, as
    `--until-decided` does). PATHS seeded paths: deterministic."""
    ns = sorted({int(n) for n in looks if 0 < n < budget}) + [int(budget)]
    if not se > 0 or not math.isfinite(se):
        return float(ns[0] if abs(difference) != margin else budget)
    levels = np.array([lk.level for lk in schedule(ns, budget, alpha=alpha, rho=rho)])
    z = np.where(levels > 0, norm.isf(np.maximum(levels, 1e-300) / 2), np.inf)
    nn = np.array(ns, float)
    steps = np.random.default_rng(0).standard_normal((PATHS, len(ns))) * np.sqrt(np.diff(nn, prepend=0.0))
    est = difference + se * math.sqrt(n_observed) * np.cumsum(steps, axis=1) / nn  # d̂ at each look
    se_n = se * np.sqrt(n_observed / nn)
    decided = (np.abs(est) - z * se_n > margin) | (np.abs(est) + z * se_n < margin)
    return float(np.where(decided.any(axis=1), nn[np.argmax(decided, axis=1)], float(budget)).mean())
