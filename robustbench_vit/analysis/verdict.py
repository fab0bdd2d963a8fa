"""The verdict of a comparison as data: computed once from the comparison's numbers, rendered by every format.

A verdict answers two questions, each with its own test: robustness (are a model's errors more concentrated
near its own best? the permutation test on the Δ-EDF area) and absolute error (is it better at the same
settings? the sign test). A model that did not learn has no robustness, so it is never "more robust".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from robustbench_vit.analysis.frame import chance_error
from robustbench_vit.analysis.inference import ALPHA, MAX_N, POWER_TARGET
from robustbench_vit.analysis.metrics import DELTA_WINDOW
from robustbench_vit.analysis.summary import fmt, interval_text

OUTCOMES = ("more robust", "less robust", "differ, EDFs cross", "no significant difference", "not comparable",
            "unavailable", "adaptive")


@dataclass(frozen=True)
class Verdict:
    """One comparison's outcome: a one-sentence headline, the evidence with its numbers, the caveats."""

    model: str
    baseline: str
    outcome: str  # one of OUTCOMES, for the model against the baseline
    headline: str
    evidence: tuple[str, ...] = ()
    caveats: tuple[str, ...] = ()
    more_robust: str | None = None  # the model found more robust, where one is
    p: float | None = None  # the robustness test's p-value, where it ran

    @property
    def title(self) -> str:
        """'model vs baseline' (or what the verdict says where there is no pair)."""
        return f"{self.model} vs {self.baseline}" if self.baseline != "–" else "Comparisons unavailable"

    @property
    def text(self) -> str:
        """Headline, evidence and caveats as one paragraph."""
        return " ".join((self.headline, *self.evidence, *self.caveats))


def _did_not_learn(model: str, x: pd.Series) -> str:
    """Why a model counts as not having learned, with its numbers."""
    n, best = int(x["trials"]), x.get("best_final", math.nan)
    parts = [f"{int(x['diverged'])} diverged" if x["diverged"] else "",
             f"{int(x['collapsed'])} finished at chance" if x["collapsed"] else ""]
    why = " and ".join(p for p in parts if p) or "none trained"
    best_text = f", best error {best:.1f}%" if best == best else ""
    return f"{model} did not learn in this range: none of its {n} trials beat chance ({why}{best_text})"


def _absolute(r: pd.Series) -> str:
    """The absolute-error clause: the paired sign test where settings match, else the best errors."""
    m, b = r["model"], r["baseline"]
    if not r["matched"]:
        return (f"in absolute error, best {m} {r['best_model']:.1f}% vs {b} {r['best_baseline']:.1f}% "
                "(no identical settings to pair)")
    w, lo, p = r["wins"], r["losses"], r["sign_p"]
    first, second, k, j = (m, b, w, lo) if w >= lo else (b, m, lo, w)
    if w == lo:
        return f"in absolute error neither is better ({w} vs {lo} wins over {r['matched']} identical settings)"
    better = "is better" if p < ALPHA else "is ahead, not significantly,"
    return (f"in absolute error {first} {better} at {k} of {r['matched']} identical settings "
            f"({j} the other way, sign test p = {p:.2g})")


def _power(r: pd.Series) -> str:
    """The power caveat: estimated power at this size and the size that would give POWER_TARGET."""
    target = fmt(POWER_TARGET, "%")
    need = (f"about {int(r['needed'])} settings per model would give {target}" if r["needed"] == r["needed"]
            and r["needed"] is not None else f"even {MAX_N} settings per model would not give {target}")
    return (f"Power of the robustness test at {int(r['n_tested'])} settings ≈ {fmt(r['power'], '%')} for a "
            "difference of the size observed (estimated by resampling the observed settings; optimistic when the "
            f"study is small); {need}.")


def _not_comparable(r: pd.Series, x: pd.DataFrame, lost: list[str], failed: list[str]) -> Verdict:
    """The verdict when a model (`lost`) did not learn: no robustness to compare, only absolute error."""
    m, b = r["model"], r["baseline"]
    why = "; ".join(_did_not_learn(who, x.loc[who]) for who in lost)
    ok = [who for who in (m, b) if who not in lost]
    tail = f"so it is not comparable with {ok[0]} on robustness" if ok else "so neither has a robustness to compare"
    chance = chance_error(x.loc[lost[0]].get("num_classes")) if "num_classes" in x else None
    note = f"Chance error here is {chance:.0f}%; " if chance and chance < 100 else ""
    absolute = _absolute(r)
    return Verdict(m, b, "not comparable", f"{why}, {tail}.", (f"{absolute[0].upper()}{absolute[1:]}.",), (
        f"{note}a model that never leaves chance has every Δerror ≈ 0 and would look perfectly robust, so it "
        f"gets no rank.", *failed))


def _adaptive(r: pd.Series, x: pd.DataFrame, failed: list[str]) -> Verdict:
    """The verdict of a TPE study: best errors and how fast each search got there, no robustness test."""
    m, b = r["model"], r["baseline"]
    first, second = (m, b) if r["best_model"] <= r["best_baseline"] else (b, m)
    steps = {who: x.loc[who].get("trials_to_best") for who in (m, b)}
    return Verdict(m, b, "adaptive", f"Adaptive (TPE) search: no robustness verdict; best error {first} "
                   f"{x.loc[first, 'best']:.2f}% vs {second} {x.loc[second, 'best']:.2f}%.", evidence=(
                       f"Each search came within 1 point of its best after {steps[m]:.0f} ({m}) and "
                       f"{steps[b]:.0f} ({b}) trials.",), caveats=(
                       "TPE samples where each model does well, so its trials are not a random sample of the "
                       "space: no error EDF, no robustness test and no random-budget curve apply.", *failed))


def verdict(r: pd.Series, mm: pd.DataFrame) -> Verdict:
    """The verdict of one comparison row (metrics.comparisons) given the per-model metrics."""
    m, b = r["model"], r["baseline"]
    x = mm.set_index("model")
    failed = [f"{who}: {k} trial{'s' if k > 1 else ''} failed (no result: crashed, killed or out of memory), left "
              f"out; the comparison is incomplete until `study run` re-runs {'them' if k > 1 else 'it'}." for who, k in
              ((m, r.get("failed_model", 0)), (b, r.get("failed_baseline", 0))) if k]
    empty = [who for who, n in ((m, r["n_model"]), (b, r["n_baseline"])) if not n]
    if empty:
        has = "has" if len(empty) == 1 else "have"
        return Verdict(m, b, "unavailable", f"No comparison: {' and '.join(empty)} {has} no results yet.",
                       caveats=tuple(failed))
    lost = [who for who, k in ((m, "learned_model"), (b, "learned_baseline")) if not r[k]]
    if lost:
        return _not_comparable(r, x, lost, failed)
    if r["design"] == "adaptive":
        return _adaptive(r, x, failed)
    if "p" not in r or pd.isna(r.get("p")):
        return Verdict(m, b, "unavailable", f"No robustness comparison: it needs at least 2 results per model "
                       f"(have {r['n_model']} and {r['n_baseline']}); {_absolute(r)}.", caveats=tuple(failed))
    sig = r["p"] < ALPHA
    lead, other = (m, b) if r["auc_diff"] >= 0 else (b, m)
    areas = f"Δ-EDF area {r['auc_model']:.2f} vs {r['auc_baseline']:.2f}, permutation test p = {r['p']:.2g}"
    if sig and r["above"] == lead:  # "more robust" only where the lead's Δ-EDF never lies below the other's
        outcome = "more robust" if lead == m else "less robust"
        claim = f"{lead} is more robust than {other} ({areas})"
    elif sig:
        outcome = "differ, EDFs cross"
        claim = (f"The Δerror distributions of {m} and {b} differ significantly, but the Δ-EDFs cross, so neither "
                 f"is more robust over the whole 0–{DELTA_WINDOW:g} point window ({areas})")
    else:
        outcome = "no significant difference"
        claim = f"No significant robustness difference between {m} and {b} ({areas})"
    pairing = ("the same settings" if r["design"] == "paired" else "all results, unpaired")
    evidence = [
        f"Robustness test: {r['test']} on {int(r['n_tested'])} settings of the Δ-EDF area difference and the "
        f"largest gap between the Δ-EDFs together (min-p), p = {r['p']:.2g}.",
        f"Δ-EDF area over 0–{DELTA_WINDOW:g} points, {m} − {b}: {interval_text(r, 'auc', '+.3f')} (95% bootstrap "
        f"interval over {pairing}; on its own, permutation p = {r['p_area']:.2g}).",
        f"Within 2 points of their best: {m} − {b} {interval_text(r, 'within_2', '+.0f', 100)} percentage points.",
        f"Did not train (diverged or at chance): {fmt(x.at[m, 'did_not_train_rate'], '%')} vs "
        f"{fmt(x.at[b, 'did_not_train_rate'], '%')}, difference "
        f"{interval_text(r, 'did_not_train', '+.0f', 100)} points.",
        f"Best error {r['best_model']:.2f}% vs {r['best_baseline']:.2f}%, difference "
        f"{interval_text(r, 'best', '+.2f')} points.",
        f"Largest gap between the Δ-EDFs (KS D) {r['ks_d']:.2f}, on its own permutation p = {r['ks_p']:.2g}."]
    caveats = []
    if not sig or r["power"] < POWER_TARGET:
        caveats.append(_power(r) + (" Not significant at this power is inconclusive, not evidence of no "
                                    "difference." if not sig and r["power"] < POWER_TARGET else ""))
    return Verdict(m, b, outcome, f"{claim}; {_absolute(r)}.", tuple(evidence), tuple(caveats + failed),
                   more_robust=lead if outcome.endswith("robust") else None, p=float(r["p"]))


def verdicts(mm: pd.DataFrame, cmp: pd.DataFrame) -> list[Verdict]:
    """One verdict per comparison, or one saying why there is nothing to compare."""
    if len(mm) < 2:
        only = mm["model"].iloc[0] if len(mm) else "none"
        return [Verdict("–", "–", "unavailable", f"Only one model in this study ({only}): comparisons against a "
                        "baseline are unavailable; the metrics and figures below describe it alone.")]
    if cmp.empty:
        return [Verdict("–", "–", "unavailable", "No baseline (vit_p_* or vit_c_*) of the same size as another "
                        "model in this study to compare against (models are compared only within one size).")]
    return [verdict(r, mm) for _, r in cmp.iterrows()]
