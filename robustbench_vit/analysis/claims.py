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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
import yaml
from scipy.stats import norm
from pydantic import BaseModel, ConfigDict, ValidationError

from robustbench_vit.analysis import inference as I
from robustbench_vit.analysis.comparison import comparisons
from robustbench_vit.analysis.metrics import fraction_within, matched, model_metrics, results
from robustbench_vit.analysis.noise import expected_floor, noise_floors
from robustbench_vit.analysis.summary import fmt, rounded
from robustbench_vit.analysis.verdict import verdict
from robustbench_vit.errors import UserError, choices
from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.shipped import study_dirs

# A claim's status here: reproduced / contradicted (a significant test for or against the paper), equivalent (the
# claimed difference lies within the margin), inconclusive (no test can tell yet), incomplete (failed trials).
ClaimStatus = Literal["reproduced", "contradicted", "equivalent", "inconclusive", "incomplete"]
STATUSES: tuple[ClaimStatus, ...] = get_args(ClaimStatus)
CLAIM_DECIDED: tuple[ClaimStatus, ...] = ("reproduced", "contradicted", "equivalent")  # a sequential run stops here


class Claim(BaseModel):
    """One claim of the paper and how it is tested here (see the header of studies/claims/paper.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    statement: str
    where: str
    paper: str
    from_figure: bool = False
    study: str
    test: Literal["robustness", "best", "gap"]
    subset: dict[str, Any] = {}
    within: float | None = None  # robustness: also report the share of trials within this many points of best
    across: str | None = None  # gap: the setting whose two values form the gap
    high: Any = None  # gap: best error at `high` minus best error at `low` (shortest / longest: of the values)
    low: Any = None
    margin: float = 1.0  # best / gap: "equivalent" when the difference's interval lies within ±margin points


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
    def next_step(self) -> str:
        """What would decide an inconclusive claim, with the command; what finishes an incomplete one ("" else)."""
        if self.status == "incomplete":
            return "re-run the study to finish its failed trials"
        if self.status != "inconclusive":
            return ""
        need = f"about {self.needed} settings per model" if self.needed else "more settings"
        return f"{need} would decide: `reproduce --until-decided`"

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


def _status(p: float, effect: float, interval: tuple[float, float], *, margin: float,
            alpha: float = I.ALPHA) -> ClaimStatus:
    """Reproduced / contradicted only on a test significant at `alpha`, the sign of `effect` says which (> 0: as
    claimed); equivalent where the (1 − alpha) interval lies within ±margin; else inconclusive."""
    if p < alpha:
        return "reproduced" if effect > 0 else "contradicted"
    return "equivalent" if -margin < interval[0] and interval[1] < margin else "inconclusive"


@dataclass(frozen=True)
class ScoredClaim:
    """One row of a scorecard: a claim's score at one model size, and the link to its study's report."""

    score: Score
    size: str
    report: str  # the study report, relative to the scorecard (../STUDY/report.html)

    @property
    def headline(self) -> str:
        """The claim at a glance: 'id (size): status, effect [95% interval]', and what would decide it."""
        s = self.score
        text = f"{s.claim.id} ({self.size}): {s.status}"
        if s.effect is not None and s.interval:
            text += f", {s.unit} {rounded(s.effect, *s.interval)}"
        elif s.status != "incomplete":
            text += f"; {s.why}"
        return text + (f"; {s.next_step}" if s.next_step else "") + "."


@dataclass(frozen=True)
class Scorecard:
    """A scorecard: the preset, when, what each study ran, and one scored claim per (claim, model size)."""

    preset: str
    generated: str
    studies: dict[str, str]  # study name → what it ran (dataset, models, trials, epochs)
    rows: tuple[ScoredClaim, ...]


def baselines(models: list[ModelSpec], stem: ModelSpec | None = None) -> list[tuple[str, str, str]]:
    """(size, conv model, patchify model) for every size whose baselines are both among `models`; with a stem: its
    size, the stem in the conv stem's place."""
    if stem is not None:
        return [(stem.size, stem.name, f"vit_p_{stem.size}")]
    names = {m.name for m in models}
    sizes = dict.fromkeys(m.size for m in models if m.stem in ("patchify", "conv"))
    return [(s, f"vit_c_{s}", f"vit_p_{s}") for s in sizes if {f"vit_p_{s}", f"vit_c_{s}"} <= names]


def claim_key(claim: Claim, size: str) -> str:
    """The key of a claim's sequential decision (one per model size)."""
    return f"claim {claim.id} ({size})"


def claim_trials(claim: Claim, df: pd.DataFrame, conv: str, patch: str) -> int:
    """The trials a claim's decision rests on (its subset, its two models)."""
    for key, value in claim.subset.items():
        df = df[df[key] == value]
    return int(df["model"].isin([conv, patch]).sum())


def _ran(df: pd.DataFrame, models: tuple[str, str]) -> str:
    """What was run for a claim: results per model and the epochs trained."""
    res = results(df)
    per = ", ".join(f"{m} {int((res['model'] == m).sum())}" for m in models)
    epochs = sorted(res["epochs"].dropna().unique()) if "epochs" in res else []
    span = f"{int(epochs[0])}" if len(epochs) == 1 else f"{int(epochs[0])}–{int(epochs[-1])}" if epochs else "?"
    return f"results: {per}; {span} epochs"


def score(claim: Claim, df: pd.DataFrame, conv: str, patch: str, *, alpha: float = I.ALPHA,
          power: bool = True) -> Score:
    """Score `claim` on a study's trial table, `conv` (ViT_C or a user stem) against `patch` (ViT_P), its test at
    level `alpha` (a sequential look's spent level; default the fixed design's 5%). `power`: False skips the
    simulated power search of best / gap tests (a look needs only the decision)."""
    for key, value in claim.subset.items():
        df = df[df[key] == value]
    df = df[df["model"].isin([conv, patch])]
    ran = _ran(df, (conv, patch))
    failed = int((df["status"] == "failed").sum())
    if failed:
        return Score(claim, "incomplete", "–", "–", None, None, None, f"{failed} trial(s) failed without a result; "
                     "run the study again to finish them", ran)
    if not {conv, patch} <= set(results(df)["model"]):
        return Score(claim, "inconclusive", "–", "–", None, None, None, "no results yet for both models", ran)
    return {"robustness": _robustness, "best": _best, "gap": _gap}[claim.test](claim, df, conv, patch, ran=ran,
                                                                              alpha=alpha, power=power)


def _robustness(claim: Claim, df: pd.DataFrame, conv: str, patch: str, *, ran: str, alpha: float = I.ALPHA,
                power: bool = True) -> Score:
    """The study's own robustness verdict (the three-way decision on the Δ-EDF area), conv stem against ViT_P.

    Reproduced: the conv stem decided more robust; contradicted: decided less robust; equivalent: decided equal
    within the margin (the claim of a difference does not hold); otherwise inconclusive, with why.
    """
    c = next(c for c in comparisons(df, alpha=alpha) if {c.model, c.baseline} == {conv, patch})
    v = verdict(c, model_metrics(df))
    sign = 1 if c.model == conv else -1  # differences are model − baseline
    res = results(df)
    within = (f"{fmt(fraction_within(res.loc[res['model'] == conv, 'error'], claim.within), '%')} vs "
              f"{fmt(fraction_within(res.loc[res['model'] == patch, 'error'], claim.within), '%')} within "
              f"{claim.within:g} points of their best; " if claim.within else "")
    d = c.decision
    if d is None or not c.learned:
        return Score(claim, "inconclusive", within.rstrip("; ") or "–", "–", None, None, None, v.headline, ran)
    iv = d.difference
    lo, hi = sorted((sign * iv.low, sign * iv.high))
    what = "normalised robustness" if c.confounded else "Δ-EDF area"
    floor = noise_floors(df).get(patch) or expected_floor(c)
    noise = f"; noise floor ±{floor.floors['area']:.3f} ({floor.source})" if floor and not c.confounded else ""
    ours = (f"{within}{what} {conv} − {patch} {sign * iv.value:+.3f} [{lo:+.3f}, {hi:+.3f}] (margin ±{d.margin:g}"
            f"{noise})")
    status = ("reproduced" if v.more_robust == conv else "contradicted" if v.more_robust == patch
              else "equivalent" if v.outcome == "equivalent" else "inconclusive")
    why = {"more robust": f"{v.more_robust} is more robust beyond the margin",
           "less robust": f"{v.more_robust} is more robust beyond the margin",
           "equivalent": f"equally robust within ±{d.margin:g}: the claimed difference does not appear",
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


def _tested(claim: Claim, a: np.ndarray, b: np.ndarray, fn: I.Statistic, *, what: str, ran: str,
            units: str, alpha: float = I.ALPHA, power: bool = True) -> Score:
    """Paired permutation test of fn(patch, conv) > 0 at `alpha`, its (1 − alpha) bootstrap interval (equivalent
    inside ±margin), power and the size for 80%."""
    n = len(a)
    if n < 2:
        return Score(claim, "inconclusive", f"{what} {float(fn(a, b)):+.2f}" if n else "–", "–", None, None, None,
                     f"{n} {units}: no test is possible; run the study with more seeds (design: seeds)", ran)
    test = I.paired_test(a, b, fn)
    lo, hi = I.bootstrap_interval(a, b, fn, paired=True, alpha=alpha)
    effect = test.statistics[0]
    needed = None
    if power:
        power = I.power(a, b, fn, paired=True, n=n, alpha=alpha)
        needed = n if power >= I.POWER_TARGET else I.needed_for_power(a, b, fn, paired=True, start=n + 1,
                                                                      alpha=alpha)
    else:
        power = None
    status = _status(test.p, effect, (lo, hi), margin=claim.margin, alpha=alpha)
    why = {"reproduced": "significant, in the paper's direction",
           "contradicted": "significant, against the paper's direction",
           "equivalent": f"not significant, and the difference lies within ±{claim.margin:g} points",
           "inconclusive": f"not significant at {n} {units}"}[status]
    se = (hi - lo) / (2 * float(norm.ppf(1 - alpha / 2)))  # the interval's width as a normal sd
    return Score(claim, status, f"{what} {effect:+.2f} [{lo:+.2f}, {hi:+.2f}] points",
                 f"paired permutation test over {n} {units}, p = {test.p:.2g}", test.p, power, needed, why, ran,
                 effect=effect, se=se, margin=claim.margin, n=n, interval=(lo, hi), unit="error points")


def _best(claim: Claim, df: pd.DataFrame, conv: str, patch: str, *, ran: str, alpha: float = I.ALPHA,
          power: bool = True) -> Score:
    """Best error of ViT_P minus the conv stem's, over the settings both ran."""
    res = results(df)
    m = matched(res[res["model"] == patch], res[res["model"] == conv])
    a, b = m["error_a"].to_numpy(float), m["error_b"].to_numpy(float)
    best = f"best {patch} {a.min():.2f}% vs {conv} {b.min():.2f}%; difference" if len(a) else "best difference"
    return _tested(claim, a, b, best_difference, what=best, ran=ran, units="paired settings", alpha=alpha,
                   power=power)


def _gap_values(claim: Claim, res: pd.DataFrame) -> tuple[Any, Any]:
    """The (low, high) values of `across` the gap is taken between (shortest / longest resolved)."""
    values = sorted(res[claim.across].dropna().unique())
    named = {"shortest": values[0], "longest": values[-1]} if values else {}
    return named.get(claim.low, claim.low), named.get(claim.high, claim.high)


def _gap(claim: Claim, df: pd.DataFrame, conv: str, patch: str, *, ran: str, alpha: float = I.ALPHA,
         power: bool = True) -> Score:
    """Gap (best at high − best at low) of ViT_P minus the conv stem's, over matched units.

    A unit is one seed and one rank of the points within each side (a stratified design draws the j-th point of
    every stratum at the same quantile of its range): it holds each model's [low, high] results, swapped whole.
    """
    res = results(df)
    low, high = _gap_values(claim, res)
    res = res[res[claim.across].isin([low, high])].copy()
    res["rank"] = res.groupby(["model", claim.across, "seed"])["point"].rank(method="first")
    wide = res.pivot_table(index=["rank", "seed"], columns=["model", claim.across], values="error")
    cols = [(m, v) for m in (patch, conv) for v in (low, high)]
    wide = wide.reindex(columns=pd.MultiIndex.from_tuples(cols)).dropna()
    a = wide[[(patch, low), (patch, high)]].to_numpy(float)
    b = wide[[(conv, low), (conv, high)]].to_numpy(float)
    what = (f"best error at {claim.across} {low} → {high}: {patch} {_gap_text(a)}, {conv} {_gap_text(b)}; "
            f"difference of the changes" if len(a) else "gap difference")
    return _tested(claim, a, b, gap_difference, what=what, ran=ran, units="matched settings", alpha=alpha,
                   power=power)


def _gap_text(x: np.ndarray) -> str:
    """One model's gap: best at low → best at high."""
    return f"{x[:, 0].min():.1f} → {x[:, 1].min():.1f}"
