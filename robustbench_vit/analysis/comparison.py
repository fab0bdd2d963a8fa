"""One comparison of a model with a baseline, computed once as a frozen value (DESIGN.md §1.1–1.2).

Verdicts, tables, the scorecard and `compare` all read the same `Comparison`. Its robustness answer is a
three-way decision with a practical margin δ: "more robust" / "less robust" (the permutation test significant
and the difference's 95% interval beyond ±δ), "equivalent within ±δ" (the interval inside it), otherwise
"inconclusive" with the power to decide and the size that would. Δ from one's own best compares robustness only
between models whose bests are close: where they are far apart (PEAK_POINTS, PEAK_SHARE) the decision is taken on
the normalised statistic (`inference.retained`: the share of the attainable improvement a trial keeps) instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy.stats import binomtest, norm

from robustbench_vit.analysis import inference as I
from robustbench_vit.analysis.frame import ERROR_CAP, chance_error
from robustbench_vit.analysis.metrics import (DELTA_WINDOW, WITHIN, dominance, is_adaptive, matched, pairs,
                                              peak_confounded, results)

MARGINS = {"area": 0.05, "retained": 0.05}  # default δ per decided statistic (a study's `margins:` overrides)
# What a comparison (or its verdict) says of a model against a baseline: the three-way decision and its undecided or
# unavailable cases (verdict.OUTCOMES lists them all).
RobustnessOutcome = Literal["more robust", "less robust", "equivalent", "inconclusive", "differ, EDFs cross",
                            "not comparable", "unavailable", "adaptive"]
DECIDED: tuple[RobustnessOutcome, ...] = ("more robust", "less robust", "equivalent")
_Z = float(norm.ppf(1 - I.ALPHA / 2))
_Z_POWER = float(norm.ppf(I.POWER_TARGET))


@dataclass(frozen=True)
class Interval:
    """A difference (model − baseline) with its 95% bootstrap interval."""

    value: float
    low: float
    high: float

    def text(self, spec: str, scale: float = 1.0) -> str:
        """'value [low, high]' in `spec`, times `scale` (e.g. 100 for percentage points)."""
        return f"{self.value * scale:{spec}} [{self.low * scale:{spec}}, {self.high * scale:{spec}}]"

    def side(self, margin: float) -> int:
        """+1 when the whole interval lies above +margin, −1 below −margin, else 0."""
        return 1 if self.low > margin else -1 if self.high < -margin else 0

    def inside(self, margin: float) -> bool:
        """Whether the whole interval lies within (−margin, +margin)."""
        return -margin < self.low and self.high < margin


@dataclass(frozen=True)
class Decision:
    """The three-way robustness decision on one statistic (model − baseline; > 0: the model is more robust)."""

    statistic: str  # "area" (Δ-EDF area over the window) or "retained" (normalised: share of improvement kept)
    model_value: float
    baseline_value: float
    difference: Interval
    se: float  # bootstrap standard deviation of the difference
    test: I.TestResult
    margin: float
    outcome: RobustnessOutcome  # "more robust" | "less robust" | "equivalent" | "inconclusive"
    power: float  # estimated probability that a study of this size decides, if the observed difference is true
    needed: int | None  # settings per model to decide with POWER_TARGET (None: more than MAX_N)
    alpha: float = I.ALPHA  # the level the decision was taken at (test p < alpha, (1 − alpha) interval)

    @property
    def p(self) -> float:
        """The permutation test's p-value."""
        return self.test.p

    def power_at(self, effect: float) -> float:
        """Estimated probability that this study decides a true difference of `effect` (e.g. 2δ) beyond the margin,
        from the difference's bootstrap sd (normal approximation)."""
        return decision_power(effect, self.se, self.margin, n_tested=1, n=1, alpha=self.alpha)

    @property
    def decided(self) -> bool:
        """Whether the decision is more / less robust or equivalent."""
        return self.outcome in DECIDED


@dataclass(frozen=True)
class Comparison:
    """Everything one comparison of `model` with `baseline` says, computed once (see `compare`)."""

    model: str
    baseline: str
    n_model: int  # results (complete, at chance, diverged) of each
    n_baseline: int
    failed_model: int = 0
    failed_baseline: int = 0
    learned_model: bool = False
    learned_baseline: bool = False
    design: str = "paired"  # "paired", "two-sample" or "adaptive"
    matched: int = 0  # identical settings both ran
    wins: int = 0  # paired settings where the model's error is lower
    losses: int = 0
    ties: int = 0
    sign_p: float = math.nan
    best_model: float = math.nan
    best_baseline: float = math.nan
    n_tested: int = 0
    chance: float = ERROR_CAP
    confounded: bool = False  # bests far apart: Δ-robustness confounded by peak error (decided on `retained`)
    robustness: Decision | None = None  # the Δ-EDF area decision (None: fewer than 2 results each, or adaptive)
    normalised: Decision | None = None  # the same decision on the normalised statistic
    ks_d: float = math.nan  # largest gap between the Δ-EDFs within the window, and its own permutation p
    ks_p: float = math.nan
    p_area: float = math.nan  # the area difference's own permutation p
    above: str = ""  # whose Δ-EDF lies above over the window: a model's name, "equal" or "crossing"
    differences: Mapping[str, Interval] = field(default_factory=dict)  # within_k, did_not_train, best

    @property
    def learned(self) -> bool:
        """Whether both models learned (a model that did not has no robustness)."""
        return self.learned_model and self.learned_baseline

    @property
    def decision(self) -> Decision | None:
        """The decision the verdict rests on: the normalised one where peak error confounds Δ, else the area's."""
        return self.normalised if self.confounded else self.robustness

    @property
    def outcome(self) -> RobustnessOutcome:
        """The decision's outcome, "differ, EDFs cross" where the area decides a direction its Δ-EDFs contradict."""
        d = self.decision
        if d is None:
            return "unavailable"
        lead = self.model if d.difference.value >= 0 else self.baseline
        if d.statistic == "area" and d.outcome in ("more robust", "less robust") and self.above != lead:
            return "differ, EDFs cross"
        return d.outcome


def _z(alpha: float) -> float:
    """Φ⁻¹(1 − alpha/2), the two-sided critical value at level alpha (the default's computed once)."""
    return _Z if alpha == I.ALPHA else float(norm.ppf(1 - alpha / 2))


def decision_power(difference: float, se: float, margin: float, *, n_tested: int, n: int,
                   alpha: float = I.ALPHA) -> float:
    """Estimated probability that a study of n settings decides at level alpha (direction beyond ±margin, or
    equivalence within it), taking the observed difference as the true one and its bootstrap sd scaled by
    √(n_tested / n): the normal approximation Φ(| |d| − δ | / se_n − z), z = Φ⁻¹(1 − alpha/2)."""
    if se <= 0:
        return 1.0 if abs(difference) != margin else 0.0
    gap = abs(abs(difference) - margin)
    return float(norm.cdf(gap / (se * math.sqrt(n_tested / n)) - _z(alpha)))


def needed_to_decide(difference: float, se: float, margin: float, n_tested: int, *,
                     alpha: float = I.ALPHA) -> int | None:
    """Settings per model whose decision power at level alpha reaches POWER_TARGET (None: more than MAX_N)."""
    gap = abs(abs(difference) - margin)
    if se <= 0:
        return n_tested
    if gap == 0:
        return None
    n = math.ceil(n_tested * (se * (_z(alpha) + _Z_POWER) / gap) ** 2)
    return n if n <= I.MAX_N else None


def decide(a: np.ndarray, b: np.ndarray, statistic: str, *, chance: float, margin: float, paired: bool,
           seed: int = 0, window: float = DELTA_WINDOW, permutations: int = I.PERMUTATIONS,
           alpha: float = I.ALPHA) -> Decision:
    """The three-way decision at level alpha on a statistic of errors a (model) and b (baseline) at n_tested
    settings: the permutation test significant at p < alpha and the (1 − alpha) bootstrap interval beyond ±margin
    (more / less robust), the interval inside ±margin (equivalent), else inconclusive. A sequential procedure
    passes its spent level per look."""
    if statistic == "area":
        stats, align = [I.area_difference(window), I.ks_within(window)], I.align_shift(ERROR_CAP)
        values = (float(I.area(a, window)), float(I.area(b, window)))
    else:
        stats, align = [I.retained_difference(chance)], I.align_scale(chance)
        values = (float(I.retained(a, chance)), float(I.retained(b, chance)))
    test = I.permutation_test(a, b, stats, paired=paired, seed=seed, align=align if paired else None,
                              permutations=permutations, alpha=alpha if I.ADAPTIVE else None)
    boot = I.bootstrap(a, b, stats[0], paired=paired, seed=seed)
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])  # the interval of I.bootstrap_interval, and its sd
    diff = Interval(float(stats[0](a, b)), float(lo), float(hi))
    se, n = float(boot.std()), min(len(a), len(b))
    side = diff.side(margin)
    outcome = ("more robust" if side > 0 else "less robust") if side and test.p < alpha else (
        "equivalent" if diff.inside(margin) else "inconclusive")
    return Decision(statistic, *values, diff, se, test, margin, outcome,
                    decision_power(diff.value, se, margin, n_tested=n, n=n, alpha=alpha),
                    needed_to_decide(diff.value, se, margin, n, alpha=alpha), alpha)


def _differences(window: float) -> dict[str, I.Statistic]:
    """The secondary differences (model − baseline) that get a bootstrap interval, vectorised over resamples."""
    return {**{f"within_{k}": (lambda a, b, k=k: (I.deltas(a) <= k).mean(-1) - (I.deltas(b) <= k).mean(-1))
               for k in WITHIN},
            "did_not_train": lambda a, b: (a >= ERROR_CAP).mean(-1) - (b >= ERROR_CAP).mean(-1),
            "best": lambda a, b: a.min(-1) - b.min(-1)}


def _sign_test(m: pd.DataFrame) -> dict:
    """Wins / losses / ties of a over b on matched settings, and the two-sided sign-test p."""
    wins, losses = int((m["error_a"] < m["error_b"]).sum()), int((m["error_a"] > m["error_b"]).sum())
    p = binomtest(wins, wins + losses).pvalue if wins + losses else math.nan
    return {"matched": len(m), "wins": wins, "losses": losses, "ties": len(m) - wins - losses, "sign_p": float(p)}


def compare(model: str, baseline: str, a: pd.DataFrame, b: pd.DataFrame, *, adaptive: bool = False,
            margins: Mapping[str, float] | None = None, window: float = DELTA_WINDOW, seed: int = 0,
            alpha: float = I.ALPHA, **counts) -> Comparison:
    """The comparison of `model` (result rows a) with `baseline` (rows b).

    Paired design (≥ 2 identical settings, not adaptive): tests and intervals use the matched settings; otherwise
    the two-sample versions on all results. Adaptive designs: best errors and the sign test only. `alpha`: the
    level of both decisions and of the secondary (1 − alpha) intervals (a sequential look's spent level).
    """
    margins = {**MARGINS, **(margins or {})}
    m = matched(a, b)
    chance = chance_error(pd.concat([a, b])["num_classes"].max()) if "num_classes" in a else ERROR_CAP
    base = dict(model=model, baseline=baseline, n_model=len(a), n_baseline=len(b), chance=chance,
                learned_model=bool((a["status"] == "complete").any()) if len(a) else False,
                learned_baseline=bool((b["status"] == "complete").any()) if len(b) else False, **counts,
                **_sign_test(m))
    if len(a) and len(b):
        base |= {"best_model": float(a["error"].min()), "best_baseline": float(b["error"].min())}
    if adaptive:
        return Comparison(**base, design="adaptive")
    paired = len(m) >= 2
    ea, eb = (m["error_a"], m["error_b"]) if paired else (a["error"], b["error"])
    ea, eb = ea.to_numpy(float), eb.to_numpy(float)
    base |= {"design": "paired" if paired else "two-sample", "n_tested": len(ea) if paired else min(len(ea), len(eb))}
    if min(len(ea), len(eb)) < 2:
        return Comparison(**base)
    area = decide(ea, eb, "area", chance=chance, margin=margins["area"], paired=paired, seed=seed, window=window,
                  alpha=alpha)
    confounded = base["learned_model"] and base["learned_baseline"] and peak_confounded(
        base["best_model"], base["best_baseline"], chance)
    normalised = decide(ea, eb, "retained", chance=chance, margin=margins["retained"], paired=paired, seed=seed,
                        alpha=alpha)
    diffs = {}
    for name, fn in _differences(window).items():
        lo, hi = I.bootstrap_interval(ea, eb, fn, paired=paired, seed=seed, alpha=alpha)
        diffs[name] = Interval(float(fn(ea, eb)), lo, hi)
    above = dominance(ea, eb, window=window)
    above = {"a": model, "b": baseline}.get(above, above)
    return Comparison(**base, confounded=confounded, robustness=area, normalised=normalised,
                      ks_d=area.test.statistics[1], ks_p=area.test.p_each[1], p_area=area.test.p_each[0],
                      above=above, differences=diffs)


def comparisons(df: pd.DataFrame, *, window: float = DELTA_WINDOW, alpha: float = I.ALPHA) -> list[Comparison]:
    """Every model against each baseline of its size (metrics.pairs), in report order, at level alpha."""
    res, adaptive = results(df), is_adaptive(df)
    sizes = df.dropna(subset=["size"]).groupby("model")["size"].first().to_dict() if "size" in df else {}
    out = []
    for m, b in pairs(df["model"], sizes):
        failed = {f"failed_{k}": int((df.loc[df["model"] == x, "status"] == "failed").sum())
                  for k, x in (("model", m), ("baseline", b))}
        out.append(compare(m, b, res[res["model"] == m], res[res["model"] == b], adaptive=adaptive,
                           margins=df.attrs.get("margins"), window=window, alpha=alpha,
                           **failed))
    return out

