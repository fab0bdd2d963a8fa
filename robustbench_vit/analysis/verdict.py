"""The verdict of a comparison as data: computed once from the comparison's numbers, rendered by every format.

A verdict answers two questions, each with its own test: robustness (are a model's errors more concentrated
near its own best? a three-way decision on the Δ-EDF area: more robust, less robust, equivalent within ±δ, or
inconclusive) and absolute error (is it better at the same settings? the sign test). A model that did not learn
has no robustness, so it is never "more robust"; where the two bests are far apart, Δ-robustness is confounded by
peak error and the decision is taken on the normalised statistic instead (DESIGN.md §1.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, get_args

import pandas as pd

from robustbench_vit.analysis.comparison import Comparison, Decision, Interval, RobustnessOutcome, comparisons
from robustbench_vit.analysis.inference import ALPHA, MAX_N, POWER_TARGET
from robustbench_vit.analysis.metrics import DELTA_WINDOW, RESULTS, model_metrics
from robustbench_vit.analysis.noise import NoiseFloor, floor_for, noise_floors, split_copies
from robustbench_vit.analysis.summary import TERMINAL, fitted, fmt, rounded, terminal_lines, with_next

OUTCOMES: tuple[RobustnessOutcome, ...] = get_args(RobustnessOutcome)
STATISTIC = {"area": f"Δ-EDF area over 0–{DELTA_WINDOW:g} points",
             "retained": "normalised robustness (mean share of the attainable improvement a trial keeps)"}
UNIT = {"area": "Δ-EDF area", "retained": "normalised robustness"}  # the headline's name of each decided statistic
HEADLINE_WORDS = 25  # a headline is read at a glance: at most this many words


@dataclass(frozen=True)
class Verdict:
    """One comparison's outcome: a one-sentence headline, the evidence with its numbers, the caveats."""

    model: str
    baseline: str
    outcome: RobustnessOutcome  # for the model against the baseline
    headline: str
    evidence: tuple[str, ...] = ()
    caveats: tuple[str, ...] = ()
    more_robust: str | None = None  # the model found more robust, where one is
    p: float | None = None  # the robustness test's p-value, where it ran
    confounded: bool = False  # decided on the normalised statistic: the bests are too far apart for Δ
    noise: str = ""  # the noise floor this comparison is read against (measured from copies, or expected)
    summary: str = ""  # the headline at a glance (≤ HEADLINE_WORDS words; `headline` is the full sentence)
    effect: Interval | None = None  # the decided statistic's difference, model − baseline, with its 95% interval
    statistic: str = ""  # which: "area" or "retained" ("" without a decision)
    margin: float | None = None
    needed: int | None = None  # settings per model that would decide (undecided only)
    next: str = ""  # the command an undecided headline ends with (`next_step`), where more settings would decide

    @property
    def short(self) -> str:
        """The headline at a glance: the summary, or the headline where the verdict has no separate summary."""
        return self.summary or self.headline

    @property
    def title(self) -> str:
        """'model vs baseline' (or what the verdict says where there is no pair)."""
        return f"{self.model} vs {self.baseline}" if self.baseline != "–" else "Comparisons unavailable"

    @property
    def line(self) -> str:
        """The headline as one terminal line of at most LINE characters: 'title: headline' where it fits, or the
        headline alone where it names both models. Else the outcome and the effect [95%] with one more note (the
        settings that would decide, the margin, bests far apart), or alone: an undecided one leaves its command
        to the `next:` line after all of them (`headline_lines`). Last, the title and the outcome."""
        lines = [f"{self.title}: {self.short}"]
        if self.model in self.short and self.baseline in self.short:  # it names both: the headline alone
            lines.append(self.short)
        if self.effect is not None and self.statistic:
            e = self.effect
            brief = f"{self.title}: {self.outcome}, {UNIT[self.statistic]} {rounded(e.value, e.low, e.high)}"
            more = [f"; about {self.needed} settings per model would decide" if self.needed is not None else "",
                    f" (±{self.margin:g})" if self.outcome == "equivalent" else "",
                    " (bests far apart)" if self.confounded else ""]
            lines += [brief + m for m in more if m] + [brief]
        lines.append(f"{self.title}: {self.outcome}")
        return fitted(lines)

    @property
    def text(self) -> str:
        """Headline, evidence and caveats as one paragraph."""
        return " ".join((self.headline, *self.evidence, *self.caveats))

    def to_dict(self) -> dict[str, Any]:
        """The verdict's headline and the numbers behind it, as JSON values (`--json`)."""
        e = self.effect
        return {"comparison": self.title, "model": self.model, "baseline": self.baseline, "outcome": self.outcome,
                "headline": self.short, "statistic": self.statistic or None,
                "effect": e.value if e else None, "low": e.low if e else None, "high": e.high if e else None,
                "margin": self.margin, "p": self.p, "needed_per_model": self.needed, "more_robust": self.more_robust,
                "confounded": bool(self.confounded), "line": self.line}


def rerun(study: str | None, preset: str | None = None) -> str | None:
    """The `study run` command of a stored study (its name NAME-PRESET read back as NAME --preset PRESET); None
    where that is not known (no name, or a name that carries --set overrides)."""
    if not study or "-set-" in study:
        return None
    if preset and study.endswith(f"-{preset}"):
        return f"study run {study[:-len(preset) - 1]} --preset {preset}"
    return f"study run {study}"


def next_step(command: str | None) -> str:
    """The command that runs a study on until its comparisons are decided (`command`: the one that ran it)."""
    return f"`{command} --until-decided`" if command else "re-run with `--until-decided`"


def _oriented(c: Comparison, d: Decision) -> tuple[str, str, str]:
    """(lead, other, 'unit +effect [low, high]'): the decided difference read from the model ahead."""
    iv = d.difference
    if iv.value >= 0:
        return c.model, c.baseline, f"{UNIT[d.statistic]} {rounded(iv.value, iv.low, iv.high)}"
    return c.baseline, c.model, f"{UNIT[d.statistic]} {rounded(-iv.value, -iv.high, -iv.low)}"


def summary(c: Comparison, d: Decision, outcome: str, command: str | None = None) -> str:
    """A decision's headline at a glance (≤ HEADLINE_WORDS words): what was decided, the effect with its 95% interval
    in the unit that decided it, and where undecided, what would decide it and the command that runs it."""
    m, b = c.model, c.baseline
    lead, other, effect = _oriented(c, d)
    far = " (bests far apart)" if c.confounded else ""
    if outcome in ("more robust", "less robust"):
        return f"{lead} is more robust than {other}: {effect}{far}."
    effect = f"{UNIT[d.statistic]} {rounded(d.difference.value, d.difference.low, d.difference.high)}"
    if outcome == "equivalent":
        return f"{m} and {b} are equally robust: {effect}, within ±{d.margin:g}{far}."
    if outcome == "differ, EDFs cross":
        return f"{m} and {b} differ, but their Δ-EDFs cross: neither is more robust ({effect})."
    if d.needed is None:
        return (f"Inconclusive: {effect}; even {MAX_N:,} settings per model would not decide with "
                f"{fmt(POWER_TARGET, '%')} power.")
    return f"Inconclusive: {effect}; about {d.needed} settings per model would decide: {next_step(command)}."


def headline_lines(verdicts: list[Verdict], width: int = TERMINAL) -> list[str]:
    """Every verdict's headline for a terminal: one line of at most LINE characters each (`Verdict.line`), then,
    where a line left out its command, one `next:` line with it and the most settings any comparison needs; each
    wrapped at `width`."""
    lines = [v.line for v in verdicts]
    cut = [v for v, line in zip(verdicts, lines) if v.next and v.next not in line]
    command = cut[0].next.replace("`", "") if cut else None
    what = "every comparison" if len(cut) > 1 else "it"
    return terminal_lines(with_next(lines, command, [v.needed for v in cut if v.needed is not None], what), width)


def _did_not_learn(model: str, x: pd.Series) -> str:
    """Why a model counts as not having learned, with its numbers."""
    n, best = int(x["trials"]), x.get("best_final", math.nan)
    parts = [f"{int(x['diverged'])} diverged" if x["diverged"] else "",
             f"{int(x['collapsed'])} finished at chance" if x["collapsed"] else ""]
    why = " and ".join(p for p in parts if p) or "none trained"
    best_text = f", best error {best:.1f}%" if best == best else ""
    return f"{model} did not learn in this range: none of its {n} trials beat chance ({why}{best_text})"


def _absolute(c: Comparison) -> str:
    """The absolute-error clause: the paired sign test where settings match, else the best errors."""
    m, b = c.model, c.baseline
    if not c.matched:
        return (f"in absolute error, best {m} {c.best_model:.1f}% vs {b} {c.best_baseline:.1f}% "
                "(no identical settings to pair)")
    w, lo, p = c.wins, c.losses, c.sign_p
    first, k, j = (m, w, lo) if w >= lo else (b, lo, w)
    if w == lo:
        return f"in absolute error neither is better ({w} vs {lo} wins over {c.matched} identical settings)"
    better = "is better" if p < ALPHA else "is ahead, not significantly,"
    return (f"in absolute error {first} {better} at {k} of {c.matched} identical settings "
            f"({j} the other way, sign test p = {p:.2g})")


def _power(c: Comparison, d: Decision) -> str:
    """The power caveat: the estimated chance of a decision at this size and the size that would decide."""
    target = fmt(POWER_TARGET, "%")
    need = (f"about {d.needed} settings per model would decide with {target}" if d.needed is not None
            else f"even {MAX_N} settings per model would not decide with {target}")
    return (f"Power to decide at {c.n_tested} settings ≈ {fmt(d.power, '%')}, taking the observed difference as "
            f"the true one (normal approximation of its bootstrap spread); {need}.")


def _not_comparable(c: Comparison, x: pd.DataFrame, failed: list[str]) -> Verdict:
    """The verdict when a model did not learn: no robustness to compare, only absolute error."""
    m, b = c.model, c.baseline
    lost = [who for who, ok in ((m, c.learned_model), (b, c.learned_baseline)) if not ok]
    why = "; ".join(_did_not_learn(who, x.loc[who]) for who in lost)
    ok = [who for who in (m, b) if who not in lost]
    tail = f"so it is not comparable with {ok[0]} on robustness" if ok else "so neither has a robustness to compare"
    note = f"Chance error here is {c.chance:.0f}%; " if c.chance < 100 else ""
    absolute = _absolute(c)
    short = (f"{' and '.join(lost)} did not learn (never beat chance): no robustness to compare."
             if len(lost) < 2 else "Neither model learned (neither beat chance): no robustness to compare.")
    return Verdict(m, b, "not comparable", f"{why}, {tail}.", (f"{absolute[0].upper()}{absolute[1:]}.",), (
        f"{note}a model that never leaves chance has every Δerror ≈ 0 and would look perfectly robust, so it "
        f"gets no rank.", *failed), summary=short)


def _adaptive(c: Comparison, x: pd.DataFrame, failed: list[str]) -> Verdict:
    """The verdict of a TPE study: best errors and how fast each search got there, no robustness test."""
    m, b = c.model, c.baseline
    first, second = (m, b) if c.best_model <= c.best_baseline else (b, m)
    steps = {who: x.loc[who].get("trials_to_best") for who in (m, b)}
    head = (f"Adaptive (TPE) search: no robustness verdict; best error {first} {x.loc[first, 'best']:.2f}% vs "
            f"{second} {x.loc[second, 'best']:.2f}%.")
    return Verdict(m, b, "adaptive", head, summary=head, evidence=(
                       f"Each search came within 1 point of its best after {steps[m]:.0f} ({m}) and "
                       f"{steps[b]:.0f} ({b}) trials.",), caveats=(
                       "TPE samples where each model does well, so its trials are not a random sample of the "
                       "space: no error EDF, no robustness test and no random-budget curve apply.", *failed))


def _claim(c: Comparison, d: Decision, outcome: str) -> str:
    """The robustness sentence of a decided or undecided comparison, with its numbers."""
    m, b = c.model, c.baseline
    lead, other = (m, b) if d.difference.value >= 0 else (b, m)
    what = STATISTIC[d.statistic]
    nums = (f"{what} {d.model_value:.2f} vs {d.baseline_value:.2f}, difference {d.difference.text('+.3f')}, "
            f"margin ±{d.margin:g}, permutation test p = {d.p:.2g}")
    if outcome in ("more robust", "less robust"):
        return f"{lead} is more robust than {other} ({nums})"
    if outcome == "equivalent":
        return f"{m} and {b} are equally robust within ±{d.margin:g} ({nums})"
    if outcome == "differ, EDFs cross":
        return (f"The Δerror distributions of {m} and {b} differ beyond the margin, but the Δ-EDFs cross, so "
                f"neither is more robust over the whole 0–{DELTA_WINDOW:g} point window ({nums})")
    return f"Inconclusive: neither more robust nor equivalent within ±{d.margin:g} at this size ({nums})"


def _noise(c: Comparison, floors: dict[str, NoiseFloor] | None) -> str:
    """The noise-floor sentence: copies of the baseline (or the model) measured, else the permutation null's."""
    floor = floor_for(c, floors)
    if floor is None:
        return ""
    text = f"Noise floor: {floor.text('area')}; here {c.robustness.difference.value:+.3f}"
    if floor.pairs:
        rate, lo, hi = floor.rate
        text += (f"; the decision separated {floor.separated} of {len(floor.pairs)} pairs of copies (A/A rate "
                 f"{fmt(rate, '%')}, 95% interval {fmt(lo, '%')}–{fmt(hi, '%')})")
    return text + "."


def verdict(c: Comparison, mm: pd.DataFrame, floors: dict[str, NoiseFloor] | None = None,
            command: str | None = None) -> Verdict:
    """The verdict of one comparison given the per-model metrics (for the did-not-train counts) and the measured
    noise floors (noise.noise_floors) where there are copies; `command`: the `study run` that ran it (`rerun`), which
    an undecided headline gives with --until-decided."""
    m, b = c.model, c.baseline
    x = mm.set_index("model")
    failed = [f"{who}: {k} trial{'s' if k > 1 else ''} failed (no result: crashed, killed or out of memory), left "
              f"out; the comparison is incomplete until `study run` re-runs {'them' if k > 1 else 'it'}." for who, k in
              ((m, c.failed_model), (b, c.failed_baseline)) if k]
    empty = [who for who, n in ((m, c.n_model), (b, c.n_baseline)) if not n]
    if empty:
        has = "has" if len(empty) == 1 else "have"
        return Verdict(m, b, "unavailable", f"No comparison: {' and '.join(empty)} {has} no results yet.",
                       caveats=tuple(failed), summary=f"No comparison: {' and '.join(empty)} {has} no results yet"
                       + (f"; `{command}` runs them." if command else "."))
    if not c.learned:
        return _not_comparable(c, x, failed)
    if c.design == "adaptive":
        return _adaptive(c, x, failed)
    d = c.decision
    if d is None:
        return Verdict(m, b, "unavailable", f"No robustness comparison: it needs at least 2 results per model "
                       f"(have {c.n_model} and {c.n_baseline}); {_absolute(c)}.", caveats=tuple(failed),
                       summary=f"No robustness test: it needs at least 2 results per model (have {c.n_model} and "
                       f"{c.n_baseline}).")
    outcome = c.outcome
    area, pairing = c.robustness, ("the same settings" if c.design == "paired" else "all results, unpaired")
    lead = m if d.difference.value >= 0 else b
    claim = _claim(c, d, outcome)
    if c.confounded:
        claim = (f"Δ-robustness is confounded by peak error (best {m} {c.best_model:.1f}% vs {b} "
                 f"{c.best_baseline:.1f}%, chance {c.chance:.0f}%): Δ from a far worse best is small for a model "
                 f"that is bad everywhere. In normalised terms, {claim[0].lower()}{claim[1:]}")
    evidence = [
        f"Robustness test: {d.test.method()} on {c.n_tested} settings"
        + (" of the Δ-EDF area difference and the largest gap between the Δ-EDFs within the window together "
           "(min-p), the baseline aligned by the median paired shift first" if d.statistic == "area" else
           " of the normalised difference, the baseline aligned by the median paired improvement ratio first")
        + f", p = {d.p:.2g}.",
        f"Δ-EDF area over 0–{DELTA_WINDOW:g} points, {m} − {b}: {area.difference.text('+.3f')} (95% bootstrap "
        f"interval over {pairing}; on its own, permutation p = {c.p_area:.2g})"
        + ("; not comparable as robustness here." if c.confounded else "."),
        f"Normalised robustness {m} − {b}: {c.normalised.difference.text('+.3f')}.",
        f"Within 2 points of their best: {m} − {b} {c.differences['within_2'].text('+.0f', 100)} percentage points.",
        f"Did not train (diverged or at chance): {fmt(x.at[m, 'did_not_train_rate'], '%')} vs "
        f"{fmt(x.at[b, 'did_not_train_rate'], '%')}, difference "
        f"{c.differences['did_not_train'].text('+.0f', 100)} points.",
        f"Best error {c.best_model:.2f}% vs {c.best_baseline:.2f}%, difference {c.differences['best'].text('+.2f')} "
        "points.",
        f"Largest gap between the Δ-EDFs within the window (KS D) {c.ks_d:.2f}, on its own permutation p = "
        f"{c.ks_p:.2g}."]
    noise = _noise(c, floors)
    caveats = [] if d.decided else [_power(c, d)]
    return Verdict(m, b, outcome, f"{claim}; {_absolute(c)}.", tuple([noise] if noise else []) + tuple(evidence),
                   tuple(caveats + failed), more_robust=lead if outcome in ("more robust", "less robust") else None,
                   p=float(d.p), confounded=c.confounded, noise=noise, summary=summary(c, d, outcome, command),
                   effect=d.difference, statistic=d.statistic, margin=d.margin,
                   needed=None if d.decided else d.needed,
                   next=next_step(command) if not d.decided and d.needed is not None else "")


def verdicts(mm: pd.DataFrame, cmp: list[Comparison], floors: dict[str, NoiseFloor] | None = None,
             command: str | None = None) -> list[Verdict]:
    """One verdict per comparison, or one saying why there is nothing to compare (`command`: the `study run` that an
    undecided verdict's headline gives)."""
    if len(mm) < 2:
        only = mm["model"].iloc[0] if len(mm) else "none"
        return [Verdict("–", "–", "unavailable", f"Only one model in this study ({only}): comparisons against a "
                        "baseline are unavailable; the metrics and figures below describe it alone.",
                        summary=f"Only one model ({only}): nothing to compare it with.")]
    if not cmp:
        return [Verdict("–", "–", "unavailable", "No baseline (vit_p_* or vit_c_*) of the same size as another "
                        "model in this study to compare against (models are compared only within one size).",
                        summary="No baseline of the same size as another model: nothing to compare.")]
    return [verdict(c, mm, floors, command) for c in cmp]


@dataclass(frozen=True)
class Analysed:
    """A study's trial table analysed once: its own trials (A/A copies split off), their noise floors, the metrics
    per model, every comparison and its verdict."""

    frame: pd.DataFrame
    floors: dict[str, NoiseFloor]
    metrics: pd.DataFrame
    comparisons: list[Comparison]
    verdicts: list[Verdict]


def analyse(df: pd.DataFrame, command: str | None = None) -> Analysed:
    """Noise floors (from the copies in `df`), metrics, comparisons and verdicts of a study's trial table (`command`:
    the `study run` that runs it on, for undecided headlines; None: the generic advice)."""
    floors = noise_floors(df) if len(df) else {}
    own, _ = split_copies(df)  # A/A copies measure the noise floor; they are not compared themselves
    mm = model_metrics(own) if len(own) else pd.DataFrame(columns=["model"])
    cmp = comparisons(own) if len(own) else []
    done = len(own) and own["status"].isin(RESULTS).any()
    found = (verdicts(mm, cmp, floors, command) if done
             else [Verdict("–", "–", "unavailable", "No trial has a result yet.")])
    return Analysed(own, floors, mm, cmp, found)
