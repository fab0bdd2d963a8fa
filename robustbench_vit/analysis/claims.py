"""The paper's stability claims as data (studies/claims/paper.yaml), each scored on its study's results:
reproduced, contradicted, inconclusive (a test without the power to tell) or incomplete (failed trials).

A claim is reproduced only by a significant test in the paper's direction and contradicted only by a significant
one against it; a robustness claim is "equivalent" where the two are equally robust within the margin; everything
else is inconclusive, with the power of the test at this size and the size that would
give 80%. The tests are the permutation tests of `inference` (exact under their null, calibrated in
benchmarks/calibration.py and tests/test_inference.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
import yaml
from scipy.stats import norm
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from robustbench_vit.analysis import inference as I
from robustbench_vit.analysis.comparison import comparisons
from robustbench_vit.analysis.metrics import fraction_within, matched, model_metrics, results
from robustbench_vit.analysis.noise import expected_floor, noise_floors
from robustbench_vit.analysis.summary import TERMINAL, fitted, fmt, rounded, terminal_lines, with_next
from robustbench_vit.analysis.verdict import verdict
from robustbench_vit.errors import UserError, choices
from robustbench_vit.models.reference import regnety_name
from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.shipped import study_dirs

# A claim's status here: reproduced / contradicted (a significant test for or against the paper), equivalent (the
# claimed difference lies within the margin), inconclusive (no test can tell yet), incomplete (failed trials).
ClaimStatus = Literal["reproduced", "contradicted", "equivalent", "inconclusive", "incomplete"]
STATUSES: tuple[ClaimStatus, ...] = get_args(ClaimStatus)
CLAIM_DECIDED: tuple[ClaimStatus, ...] = ("reproduced", "contradicted", "equivalent")  # a sequential run stops here
Role = Literal["conv", "patch", "reference"]  # ViT_C (or a user stem in its place), ViT_P, the size's CNN reference
EQUIVALENCE_WIDER = 5  # an equivalence claim's interval is at level alpha / 5 (99%): see claim_interval
COST_MEASURES = ("step_seconds", "activations")  # what a cost claim compares: measured step time, activations


class Claim(BaseModel):
    """One claim of the paper and how it is tested here (see the header of studies/claims/paper.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    statement: str
    where: str
    paper: str
    from_figure: bool = False
    study: str
    test: Literal["robustness", "best", "gap", "cost"]
    # The models it speaks of, by role (Roles): the first is claimed more robust / lower in error / hit less by the
    # change / as cheap as the second; a gap of one model is that model's own change (expect: equivalent).
    models: tuple[Role, ...] = ("conv", "patch")
    expect: Literal["more", "at_least", "equivalent"] = "more"  # at_least: "equivalent" reproduces it too
    subset: dict[str, Any] = {}
    within: float | None = None  # robustness: also report the share of trials within this many points of best
    across: str | None = None  # gap: the setting whose two values form the gap
    high: Any = None  # gap: best error at `high` minus best error at `low` (shortest / longest: of the values)
    low: Any = None
    margin: float = 1.0  # best / gap: "equivalent" when the difference's interval lies within ±margin points
    tolerance: dict[str, float] = {}  # cost: the allowed difference in % per measure (step_seconds, activations)

    @model_validator(mode="after")
    def _check(self) -> "Claim":
        """Two models of distinct roles, or one for a gap within a model; a cost claim names its tolerances."""
        if len(set(self.models)) != len(self.models) or not 1 <= len(self.models) <= 2:
            raise ValueError(f"models: one or two distinct roles, got {list(self.models)}")
        if len(self.models) == 1 and self.test != "gap":
            raise ValueError(f"models: a {self.test} test compares two models")
        if self.test == "cost" and not set(self.tolerance) <= set(COST_MEASURES) or (self.test == "cost") != bool(
                self.tolerance):
            raise ValueError(f"tolerance: a cost test's percent per measure ({', '.join(COST_MEASURES)})")
        return self


def claims_file() -> Path:
    """The shipped claims file: ./studies/claims/paper.yaml, else the built-in one."""
    for d in study_dirs():
        if (d / "claims" / "paper.yaml").is_file():
            return d / "claims" / "paper.yaml"
    raise UserError(f"no claims file (claims/paper.yaml) in {', '.join(map(str, study_dirs()))}")


def load_claims(only: list[str] | None = None, path: Path | None = None) -> list[Claim]:
    """The claims (all, or the ids in `only`, in file order); one UserError line for a bad file or id."""
    path = path or claims_file()
    try:
        claims = [Claim.model_validate(c) for c in yaml.safe_load(path.read_text())["claims"]]
    except (ValidationError, KeyError, TypeError, yaml.YAMLError) as e:
        raise UserError(f"{path}: not a valid claims file ({str(e).splitlines()[0]})") from None
    ids = [c.id for c in claims]
    bad = sorted(set(only or ()) - set(ids))
    if bad:
        raise UserError(f"--claims {bad[0]!r}: unknown claim; allowed: {choices(ids)}")
    return [c for c in claims if not only or c.id in only]


@dataclass(frozen=True)
class ClaimLook:
    """The look of a `--until-decided` run a claim is scored at: its number, settings per model, trials, the level it
    spent, and whether the decision was taken there (else: the last look, undecided)."""

    look: int
    n: int
    trials: int
    level: float
    decided: bool

    def to_dict(self) -> dict:
        """{"look", "n", "trials", "level", "decided"}: the scorecard JSON's `sequential` entry."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Score:
    """A claim's outcome here: status, our number with its interval, the test, its power, and why."""

    claim: Claim
    status: ClaimStatus
    ours: str
    test: str
    p: float | None
    power: float | None
    needed: int | None  # settings per model for 80% power (None: not searched, or > MAX_N)
    why: str
    ran: str  # what was run: models, results per model, epochs
    look: ClaimLook | None = None  # --until-decided: the deciding look (or the last, undecided)
    effect: float | None = None  # the tested difference (> 0: as claimed), its bootstrap sd, the equivalence
    se: float | None = None  # margin and the settings it rests on: what an expected-cost estimate needs
    margin: float | None = None
    n: int | None = None
    interval: tuple[float, float] | None = None  # the effect's 95% interval (> 0: as claimed)
    unit: str = ""  # the effect's unit: "Δ-EDF area", "normalised robustness" or "error points"
    floor: float | None = None  # the noise floor of the effect, where one is known in its unit

    @property
    def look_text(self) -> str:
        """Where a sequential run took (or left) the decision: look, trials, the level it spent ("" if fixed)."""
        if not self.look:
            return ""
        lk = self.look
        when = "decided at" if lk.decided else "undecided after"
        return f"{when} look {lk.look}: {lk.trials} trials, {lk.n} settings per model, level {lk.level:.2g}"

    @property
    def power_text(self) -> str:
        """Power and, where it is short of 80%, the size that would reach it."""
        if self.power is None or self.power != self.power:
            return "–"
        if self.power >= I.POWER_TARGET:
            return fmt(self.power, "%")
        need = f"{self.needed} per model" if self.needed else f"> {I.MAX_N} per model"
        return f"{fmt(self.power, '%')} (80% at {need})"


def _status(claim: Claim, p: float, effect: float, interval: tuple[float, float], *,
            alpha: float = I.ALPHA) -> ClaimStatus:
    """A test significant at `alpha` is for the claim or against it by the sign of `effect` (> 0: as claimed); the
    (1 − alpha) interval inside ±margin is equivalence; `claim_status` says what that makes of the claim."""
    inside = -claim.margin < interval[0] and interval[1] < claim.margin
    return claim_status(claim, for_=p < alpha and effect > 0, against=p < alpha and effect < 0,
                    inside=inside)


@dataclass(frozen=True)
class ScoredClaim:
    """One row of a scorecard: a claim's score at one model size, and the link to its study's report."""

    score: Score
    size: str
    report: str  # the study report, relative to the scorecard (../STUDY/report.html)
    decide_with: str = "reproduce --until-decided"  # the command that looks on (the run's preset, stem, --budget)

    @property
    def next_step(self) -> str:
        """What would decide an inconclusive claim, with the command; what finishes an incomplete one ("" else)."""
        s = self.score
        if s.status == "incomplete":
            return "re-run the study to finish its failed trials"
        if s.status != "inconclusive":
            return ""
        need = f"about {s.needed} settings per model" if s.needed else "more settings"
        return f"{need} would decide: `{self.decide_with}`"

    @property
    def headline(self) -> str:
        """The claim at a glance: 'id (size): status, effect [95% interval]', and what would decide it."""
        s = self.score
        text = f"{s.claim.id} ({self.size}): {s.status}"
        if s.effect is not None and s.interval:
            text += f", {s.unit} {rounded(s.effect, *s.interval)}"
        elif s.status != "incomplete":
            text += f"; {s.why}"
        return text + (f"; {self.next_step}" if self.next_step else "") + "."

    @property
    def line(self) -> str:
        """The headline as one terminal line of at most LINE characters: the headline where it fits; else without
        its command (given once after every claim, `claim_lines`), then the status and effect alone."""
        s = self.score
        base = f"{s.claim.id} ({self.size}): {s.status}"
        if s.effect is not None and s.interval:
            base += f", {s.unit} {rounded(s.effect, *s.interval)}"
        more = f"; about {s.needed} settings per model would decide" if s.status == "inconclusive" and s.needed else ""
        return fitted([self.headline, *([base + more] if more else []), base])


def claim_lines(rows: Sequence[ScoredClaim], width: int = TERMINAL) -> list[str]:
    """Every claim's line for a terminal (`ScoredClaim.line`), then, where an inconclusive one left out its
    command, one `next:` line with it and the most settings any claim needs (and how many need more than any size
    the power search tried); each wrapped at `width`."""
    lines = [row.line for row in rows]
    cut = [row for row, line in zip(rows, lines) if row.score.status == "inconclusive" and "--until" not in line]
    command = cut[0].decide_with if cut else None
    beyond = sum(1 for row in cut if row.score.needed is None and row.score.power == row.score.power
                 and row.score.power is not None and row.score.power < I.POWER_TARGET)
    what = "every claim" if not beyond else f"the others; {beyond} would need more than {I.MAX_N}"
    return terminal_lines(with_next(lines, command, [r.score.needed for r in cut if r.score.needed], what), width)


@dataclass(frozen=True)
class Scorecard:
    """A scorecard: the preset, when, what each study ran, and one scored claim per (claim, model size)."""

    preset: str
    generated: str
    studies: dict[str, str]  # study name → what it ran (dataset, models, trials, epochs)
    rows: tuple[ScoredClaim, ...]


@dataclass(frozen=True)
class Roles:
    """The models a claim's roles name at one size: the conv stem (ViT_C, or a user stem in its place), ViT_P and the
    size's CNN reference (None where the study runs none)."""

    size: str
    conv: str
    patch: str
    reference: str | None = None

    def names(self, roles: tuple[Role, ...]) -> list[str | None]:
        """The model of each role, in order."""
        return [getattr(self, r) for r in roles]


def baselines(models: list[ModelSpec], stem: ModelSpec | None = None) -> list[Roles]:
    """The roles at every size whose two ViT baselines are both among `models`, with the size's RegNetY where it runs
    too; with a stem: its size, the stem in the conv stem's place."""
    names = {m.name for m in models}

    def reference(size: str) -> str | None:
        """The size's RegNetY, if the study runs it."""
        return regnety_name(size) if regnety_name(size) in names else None

    if stem is not None:
        return [Roles(stem.size, stem.name, f"vit_p_{stem.size}", reference(stem.size))]
    sizes = dict.fromkeys(m.size for m in models if m.stem in ("patchify", "conv"))
    return [Roles(s, f"vit_c_{s}", f"vit_p_{s}", reference(s)) for s in sizes
            if {f"vit_p_{s}", f"vit_c_{s}"} <= names]


def claim_key(claim: Claim, size: str) -> str:
    """The key of a claim's sequential decision (one per model size)."""
    return f"claim {claim.id} ({size})"


def claim_trials(claim: Claim, df: pd.DataFrame, roles: Roles) -> int:
    """The trials a claim's decision rests on (its subset, its models)."""
    for key, value in claim.subset.items():
        df = df[df[key] == value]
    return int(df["model"].isin(roles.names(claim.models)).sum())


def _ran(df: pd.DataFrame, models: list[str]) -> str:
    """What was run for a claim: results per model and the epochs trained."""
    res = results(df)
    per = ", ".join(f"{m} {int((res['model'] == m).sum())}" for m in models)
    epochs = sorted(res["epochs"].dropna().unique()) if "epochs" in res else []
    span = f"{int(epochs[0])}" if len(epochs) == 1 else f"{int(epochs[0])}–{int(epochs[-1])}" if epochs else "?"
    return f"results: {per}; {span} epochs"


def score(claim: Claim, df: pd.DataFrame, roles: Roles, *, alpha: float = I.ALPHA, power: bool = True) -> Score:
    """Score `claim` on a study's trial table, its roles' models as `roles` names them, its test at level `alpha` (a
    sequential look's spent level; default the fixed design's 5%). `power`: False skips the simulated power search
    of best / gap tests (a look needs only the decision)."""
    names = roles.names(claim.models)
    if None in names:
        return Score(claim, "inconclusive", "–", "–", None, None, None, "the study runs no CNN reference at size "
                     f"{roles.size} (its study file's `reference: regnety` adds one)", "")
    for key, value in claim.subset.items():
        df = df[df[key] == value]
    df = df[df["model"].isin(names)]
    ran = _ran(df, names)
    failed = int((df["status"] == "failed").sum())
    if failed:
        return Score(claim, "incomplete", "–", "–", None, None, None, f"{failed} trial(s) failed without a result; "
                     "run the study again to finish them", ran)
    if not set(names) <= set(results(df)["model"]):
        return Score(claim, "inconclusive", "–", "–", None, None, None, "no results yet for "
                     f"{' and '.join(names)}", ran)
    test = {"robustness": _robustness, "best": _best, "gap": _gap, "cost": _cost}[claim.test]
    return test(claim, df, *names, ran=ran, alpha=alpha, power=power)


def claim_status(claim: Claim, *, for_: bool, against: bool, inside: bool) -> ClaimStatus:
    """A claim's status from a decision: significant for it (`for_`) or against it, or equivalent within the margin
    (`inside`). `expect: more` is reproduced only by `for_`; `at_least` by `for_` or `inside`; `equivalent` by
    `inside`, and contradicted by any significant difference outside the margin."""
    if claim.expect == "equivalent":
        return "reproduced" if inside else "contradicted" if for_ or against else "inconclusive"
    if for_ or (inside and claim.expect == "at_least"):
        return "reproduced"
    return "contradicted" if against else "equivalent" if inside else "inconclusive"


def _robustness(claim: Claim, df: pd.DataFrame, first: str, second: str, *, ran: str, alpha: float = I.ALPHA,
                power: bool = True) -> Score:
    """The study's own robustness verdict (the three-way decision on the Δ-EDF area), `first` against `second`.

    Reproduced: `first` decided more robust (or, `expect: at_least`, equally robust within the margin); contradicted:
    decided less robust; equivalent: decided equal within the margin (the claim of a difference does not hold);
    otherwise inconclusive, with why.
    """
    c = next(c for c in comparisons(df, alpha=alpha) if {c.model, c.baseline} == {first, second})
    v = verdict(c, model_metrics(df))
    sign = 1 if c.model == first else -1  # differences are model − baseline
    res = results(df)
    within = (f"{fmt(fraction_within(res.loc[res['model'] == first, 'error'], claim.within), '%')} vs "
              f"{fmt(fraction_within(res.loc[res['model'] == second, 'error'], claim.within), '%')} within "
              f"{claim.within:g} points of their best; " if claim.within else "")
    d = c.decision
    if d is None or not c.learned:
        return Score(claim, "inconclusive", within.rstrip("; ") or "–", "–", None, None, None, v.headline, ran)
    iv = d.difference
    lo, hi = sorted((sign * iv.low, sign * iv.high))
    what = "normalised robustness" if c.confounded else "Δ-EDF area"
    floor = noise_floors(df).get(second) or expected_floor(c)
    noise = f"; noise floor ±{floor.floors['area']:.3f} ({floor.source})" if floor and not c.confounded else ""
    ours = (f"{within}{what} {first} − {second} {sign * iv.value:+.3f} [{lo:+.3f}, {hi:+.3f}] (margin ±{d.margin:g}"
            f"{noise})")
    status = claim_status(claim, for_=v.more_robust == first, against=v.more_robust == second,
                      inside=v.outcome == "equivalent")
    why = {"more robust": f"{v.more_robust} is more robust beyond the margin",
           "less robust": f"{v.more_robust} is more robust beyond the margin",
           "equivalent": f"equally robust within ±{d.margin:g}" + (
               "" if claim.expect == "at_least" else ": the claimed difference does not appear"),
           "differ, EDFs cross": "the Δerror distributions differ, but the Δ-EDFs cross",
           "inconclusive": f"neither beyond nor inside the margin at {c.n_tested} settings",
           }.get(v.outcome, v.headline)
    if c.confounded:
        why += " (bests far apart: decided on the normalised statistic)"
    return Score(claim, status, ours, f"three-way decision on the {what}, permutation test over {c.n_tested} "
                 f"settings, p = {d.p:.2g}", float(d.p), float(d.power), d.needed, why, ran,
                 effect=sign * iv.value, se=d.se, margin=d.margin, n=c.n_tested, interval=(lo, hi), unit=what,
                 floor=floor.floors["area"] if floor and not c.confounded else None)


def best_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Best error of a minus best error of b (> 0: b reaches lower), along the settings axis."""
    return a.min(-1) - b.min(-1)


def gap_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(best at high − best at low) of a minus the same of b; settings hold [low, high] results (last axis)."""
    def gap(x: np.ndarray) -> np.ndarray:
        return x[..., 1].min(-1) - x[..., 0].min(-1)

    return gap(a) - gap(b)


def claim_interval(claim: Claim, a: np.ndarray, b: np.ndarray, fn: I.Statistic, *,
                   alpha: float = I.ALPHA) -> tuple[float, float]:
    """The paired bootstrap interval of fn(a, b): (1 − alpha), or (1 − alpha/EQUIVALENCE_WIDER) where equivalence
    reproduces the claim. A percentile bootstrap of a best-error difference is narrow at few settings: with the gap
    at the margin itself and 30% of trials capped, a 95% interval fell inside ±margin in 6–11% of simulated studies
    (6–24 settings), a 97.5% one in 5–7.5%, a 99% one in 3–5% (400 studies each; tests/test_claims.py)."""
    return I.bootstrap_interval(a, b, fn, paired=True, alpha=level(claim, alpha))


def level(claim: Claim, alpha: float = I.ALPHA) -> float:
    """The level of a claim's interval: alpha, or alpha/EQUIVALENCE_WIDER for an equivalence claim."""
    return alpha / EQUIVALENCE_WIDER if claim.expect == "equivalent" else alpha


def _tested(claim: Claim, a: np.ndarray, b: np.ndarray, fn: I.Statistic, *, what: str, ran: str,
            units: str, alpha: float = I.ALPHA, power: bool = True) -> Score:
    """Paired permutation test of fn(a, b) at `alpha` (> 0: as claimed), its (1 − alpha) bootstrap interval (equivalent
    inside ±margin), power and the size for 80%."""
    n = len(a)
    if n < 2:
        return Score(claim, "inconclusive", f"{what} {float(fn(a, b)):+.2f}" if n else "–", "–", None, None, None,
                     f"{n} {units}: no test is possible; run the study with more seeds (design: seeds)", ran)
    test = I.paired_test(a, b, fn)
    lo, hi = claim_interval(claim, a, b, fn, alpha=alpha)
    effect = test.statistics[0]
    needed = None
    if power:
        power = I.power(a, b, fn, paired=True, n=n, alpha=alpha)
        needed = n if power >= I.POWER_TARGET else I.needed_for_power(a, b, fn, paired=True, start=n + 1,
                                                                      alpha=alpha)
    else:
        power = None
    status = _status(claim, test.p, effect, (lo, hi), alpha=alpha)
    inside = f"the difference lies within ±{claim.margin:g} points"
    why = ({"reproduced": f"{inside}, as claimed", "contradicted": f"significant, beyond ±{claim.margin:g} points"}
           if claim.expect == "equivalent" else
           {"reproduced": "significant, in the paper's direction",
            "contradicted": "significant, against the paper's direction", "equivalent": f"not significant, and {inside}"}
           ).get(status, f"not significant at {n} {units}")
    se = (hi - lo) / (2 * float(norm.ppf(1 - alpha / 2)))  # the interval's width as a normal sd
    width = f", {100 * (1 - level(claim, alpha)):.4g}% interval" if claim.expect == "equivalent" else ""
    return Score(claim, status, f"{what} {effect:+.2f} [{lo:+.2f}, {hi:+.2f}] points{width}",
                 f"paired permutation test over {n} {units}, p = {test.p:.2g}", test.p, power, needed, why, ran,
                 effect=effect, se=se, margin=claim.margin, n=n, interval=(lo, hi), unit="error points")


def _best(claim: Claim, df: pd.DataFrame, first: str, second: str, *, ran: str, alpha: float = I.ALPHA,
          power: bool = True) -> Score:
    """Best error of `second` minus `first`'s (> 0: `first` reaches lower), over the settings both ran."""
    res = results(df)
    m = matched(res[res["model"] == second], res[res["model"] == first])
    a, b = m["error_a"].to_numpy(float), m["error_b"].to_numpy(float)
    best = f"best {second} {a.min():.2f}% vs {first} {b.min():.2f}%; difference" if len(a) else "best difference"
    return _tested(claim, a, b, best_difference, what=best, ran=ran, units="paired settings", alpha=alpha,
                   power=power)


def _gap_values(claim: Claim, res: pd.DataFrame) -> tuple[Any, Any]:
    """The (low, high) values of `across` the gap is taken between (shortest / longest resolved)."""
    values = sorted(res[claim.across].dropna().unique())
    named = {"shortest": values[0], "longest": values[-1]} if values else {}
    return named.get(claim.low, claim.low), named.get(claim.high, claim.high)


def _gap(claim: Claim, df: pd.DataFrame, first: str, second: str | None = None, *, ran: str,
         alpha: float = I.ALPHA, power: bool = True) -> Score:
    """Gap (best at high − best at low) of `second` minus `first`'s (> 0: the change costs `second` more), over
    matched units; with one model, that model's own gap (best at high minus best at low, paired by unit).

    A unit is one seed and one rank of the points within each side (a stratified design draws the j-th point of
    every stratum at the same quantile of its range): it holds each model's [low, high] results, swapped whole.
    """
    res = results(df)
    low, high = _gap_values(claim, res)
    res = res[res[claim.across].isin([low, high])].copy()
    res["rank"] = res.groupby(["model", claim.across, "seed"])["point"].rank(method="first")
    wide = res.pivot_table(index=["rank", "seed"], columns=["model", claim.across], values="error")
    models = [m for m in (second, first) if m is not None]
    cols = [(m, v) for m in models for v in (low, high)]
    wide = wide.reindex(columns=pd.MultiIndex.from_tuples(cols)).dropna()
    x = {m: wide[[(m, low), (m, high)]].to_numpy(float) for m in models}
    change = f"best error at {claim.across} {low} → {high}"
    if second is None:  # one model: its best at high against its best at low, the two swapped within a unit
        what = f"{change}: {first} {_gap_text(x[first])}; difference" if len(wide) else "gap"
        return _tested(claim, x[first][:, 1], x[first][:, 0], best_difference, what=what, ran=ran,
                       units="matched settings", alpha=alpha, power=power)
    what = (f"{change}: {second} {_gap_text(x[second])}, {first} {_gap_text(x[first])}; difference of the changes"
            if len(wide) else "gap difference")
    return _tested(claim, x[second], x[first], gap_difference, what=what, ran=ran, units="matched settings",
                   alpha=alpha, power=power)


def _gap_text(x: np.ndarray) -> str:
    """One model's gap: best at low → best at high."""
    return f"{x[:, 0].min():.1f} → {x[:, 1].min():.1f}"


def median_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Median of a over median of b, minus 1 (the relative difference), along the trials axis."""
    return np.median(a, -1) / np.median(b, -1) - 1


def _cost(claim: Claim, df: pd.DataFrame, first: str, second: str, *, ran: str, alpha: float = I.ALPHA,
          power: bool = True) -> Score:
    """`first`'s cost over `second`'s (Table 1): activations (counted: the outputs of every conv and matmul) and the
    median warm training step (measured in every trial, on the device most of them ran on), each a relative
    difference. Reproduced when each lies within its tolerance (the step time's (1 − alpha) bootstrap interval over
    trials inside it); contradicted when a count, or a whole interval, lies beyond it; else inconclusive."""
    res = results(df)
    tol = {k: v / 100 for k, v in claim.tolerance.items()}
    parts, beyond, unknown = [], [], []
    if "activations" in tol:
        acts = res.groupby("model")["activations"].first()
        diff = float(acts[first] / acts[second] - 1)
        parts.append(f"activations {first} {diff:+.1%} vs {second} ({acts[first] / 1e6:.3g}M vs "
                     f"{acts[second] / 1e6:.3g}M)")
        if abs(diff) > tol["activations"]:
            beyond.append(f"activations beyond ±{tol['activations']:.0%}")
    if "step_seconds" in tol:
        steps = res.dropna(subset=["step_seconds"])
        device = steps["device"].mode().iat[0] if len(steps) else None
        steps = steps[steps["device"] == device]
        a, b = (steps.loc[steps["model"] == m, "step_seconds"].to_numpy(float) for m in (first, second))
        if len(a) < 2 or len(b) < 2:
            unknown.append("step time: fewer than 2 measured trials per model")
        else:
            diff = float(median_ratio(a, b))
            lo, hi = I.bootstrap_interval(a, b, median_ratio, paired=False, alpha=alpha)
            parts.append(f"step time {diff:+.1%} [{lo:+.1%}, {hi:+.1%}] ({device}, median of {len(a)} and "
                         f"{len(b)} trials: {np.median(a) * 1e3:.3g} vs {np.median(b) * 1e3:.3g} ms)")
            t = tol["step_seconds"]
            if lo > t or hi < -t:
                beyond.append(f"step time beyond ±{t:.0%}")
            elif not (-t < lo and hi < t):
                unknown.append(f"step time's interval straddles ±{t:.0%}")
    status: ClaimStatus = "contradicted" if beyond else "inconclusive" if unknown else "reproduced"
    why = "; ".join(beyond or unknown) or "every measure within its tolerance, as claimed"
    return Score(claim, status, "; ".join(parts) or "–", f"activations counted; step time: {1 - alpha:.0%} bootstrap "
                 "interval of the ratio of medians over trials", None, None, None, why, ran)
