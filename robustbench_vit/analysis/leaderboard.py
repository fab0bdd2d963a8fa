"""The leaderboard's rows: every stem of a study ranked against the same baselines, as typed rows.

Each stem's row carries its verdicts against both baselines (the analysis layer's three-way decision, its 95%
interval and p, the noise floor), Holm-adjusted p over the stems of the study, params / GMACs / depth, best error,
did-not-train rate, and the paper's claims that the study tests, scored with the stem in ViT_C's place. Ranks: by the
robustness difference against ViT_P; a stem's rank is 1 + the number of stems whose interval lies wholly above its
own, so stems whose order is not resolved share a rank, and its rank interval runs to n − the number wholly below.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from robustbench_vit.analysis.claims import Roles, load_claims, score
from robustbench_vit.analysis.comparison import Comparison, RobustnessOutcome, comparisons
from robustbench_vit.analysis.frame import is_reference, load_results
from robustbench_vit.analysis.metrics import model_metrics
from robustbench_vit.analysis.noise import NoiseFloor, noise_floors, split_copies
from robustbench_vit.analysis.verdict import verdict
from robustbench_vit.models.reference import regnety_name
from robustbench_vit.store import Results

BASES = {"p": "vit_p_{}", "c": "vit_c_{}"}  # the baselines every stem is ranked against, by column prefix
VERSUS = ("outcome", "difference", "low", "high", "p", "p_holm")  # the columns of each baseline, after its prefix
COLUMNS = ("study", "rank", "rank_low", "rank_high", "model", "reference", "stem", "size", "depth", "params", "gmacs", "activations",
           "step_seconds", "device", "best_error", "did_not_train_rate", *(f"{k}_{f}" for k in BASES for f in VERSUS),
           "noise", "claims")
NAN = math.nan


@dataclass(frozen=True)
class Versus:
    """A stem against one baseline: the verdict's outcome ("baseline" where there is no comparison: the stem is that
    baseline), the robustness difference with its 95% interval, p and Holm-adjusted p, and the verdict in full."""

    baseline: str
    outcome: RobustnessOutcome | Literal["baseline"]
    difference: float = NAN
    low: float = NAN
    high: float = NAN
    p: float = NAN
    p_holm: float = NAN
    text: str = ""  # the verdict's sentence ("" without a comparison)


@dataclass(frozen=True)
class LeaderboardRow:
    """One ranked model of a study: what it is, what it costs, how it trained, and both verdicts."""

    study: str
    model: str
    stem: Any  # the stem reference as stored
    size: str
    depth: int
    params: int
    gmacs: float
    best_error: float
    did_not_train_rate: float
    p: Versus  # against ViT_P of its size
    c: Versus  # against ViT_C of its size
    activations: float = NAN  # conv and matmul outputs per image (NaN where the model no longer builds)
    step_seconds: float = NAN  # measured training step, median over the trials' warm steps
    device: str = ""  # where the steps were measured
    noise: str = ""
    claims: str = ""  # "id: status; ..." of the paper's claims this study tests, the stem in ViT_C's place
    reference: bool = False  # a CNN reference's row (RegNetY): ranked beside the stems, not counted in Holm's
    rank: int = 0
    rank_low: int = 0
    rank_high: int = 0

    def flat(self) -> dict[str, Any]:
        """The row as CSV / JSON values, keyed by COLUMNS in their order."""
        values = {f"{k}_{f}": getattr(getattr(self, k), f) for k in BASES for f in VERSUS}
        return {k: values[k] if k in values else getattr(self, k) for k in COLUMNS}


def holm(ps: list[float]) -> list[float]:
    """Holm's step-down adjustment of p-values (NaN stays NaN and is not counted)."""
    order = sorted((p, i) for i, p in enumerate(ps) if p == p)
    out, running = [float("nan")] * len(ps), 0.0
    for k, (p, i) in enumerate(order):
        running = max(running, min(1.0, (len(order) - k) * p))
        out[i] = running
    return out


def ranked(rows: list[LeaderboardRow]) -> list[LeaderboardRow]:
    """The rows ranked by the interval of the robustness difference against ViT_P (see the module docstring)."""
    n, out = len(rows), []
    for r in rows:
        above = sum(o.p.low > r.p.high for o in rows if o is not r)
        below = sum(o.p.high < r.p.low for o in rows if o is not r)
        out.append(dataclasses.replace(r, rank=1 + above, rank_low=1 + above, rank_high=n - below))
    return sorted(out, key=lambda r: (r.rank, -(r.p.difference if r.p.difference == r.p.difference else -9)))


FLIPPED = {"more robust": "less robust", "less robust": "more robust"}  # an outcome seen from the other side


def _versus(c: Comparison | None, base: str, mm: pd.DataFrame, floors: dict[str, NoiseFloor], *,
            flip: bool = False) -> tuple[Versus, str]:
    """A model against `base` (its comparison `c`, None where the model is that baseline), and the verdict's noise;
    `flip`: `c` compares `base` with the model (a CNN reference is the baseline of the ViTs' comparisons)."""
    v = verdict(c, mm, floors) if c else None
    if v is None:
        return Versus(base, "baseline"), ""
    d, sign = c.decision, -1 if flip else 1
    numbers = dict(zip(("difference", "low", "high"), (sign * d.difference.value,
                                                       *sorted((sign * d.difference.low, sign * d.difference.high))))
                   ) if d else {}
    outcome = FLIPPED.get(v.outcome, v.outcome) if flip else v.outcome
    return Versus(base, outcome, p=v.p if v.p is not None else NAN, text=v.text, **numbers), v.noise


def _row(study: str, model: str, x: pd.DataFrame, *, size: str,
         against: dict[str, tuple[Versus, str]]) -> LeaderboardRow:
    """A model's row from its metrics (`x`: model_metrics by model) and its verdicts against each baseline."""
    return LeaderboardRow(study=study, model=model, stem=x.at[model, "stem"], size=size,
                          depth=int(x.at[model, "depth"]), params=int(x.at[model, "params_count"]),
                          gmacs=float(x.at[model, "gmacs"]), best_error=float(x.at[model, "best"]),
                          did_not_train_rate=float(x.at[model, "did_not_train_rate"]), p=against["p"][0],
                          c=against["c"][0], activations=_number(x, model, "activations"),
                          step_seconds=_number(x, model, "step_seconds"), device=str(_get(x, model, "device") or ""),
                          noise=against["p"][1] or against["c"][1])


def _get(x: pd.DataFrame, model: str, column: str) -> Any:
    """A model's metric, None where the column is missing or the value NaN."""
    v = x.at[model, column] if column in x else None
    return None if v is None or (isinstance(v, float) and v != v) else v


def _number(x: pd.DataFrame, model: str, column: str) -> float:
    """A model's metric as a float, NaN where it is missing."""
    v = _get(x, model, column)
    return NAN if v is None else float(v)


def _adjusted(rows: list[LeaderboardRow]) -> list[LeaderboardRow]:
    """Holm-adjusted p against each baseline, over the stems of the study compared with it."""
    for key in BASES:
        stems = [i for i, r in enumerate(rows) if getattr(r, key).outcome != "baseline" and not r.reference]
        for i, p in zip(stems, holm([getattr(rows[i], key).p for i in stems])):
            rows[i] = dataclasses.replace(rows[i], **{key: dataclasses.replace(getattr(rows[i], key), p_holm=p)})
    return rows


def _roles(model: str, size: str, models) -> Roles:
    """The claims' roles with `model` in ViT_C's place: ViT_P of its size, and its RegNetY where the study ran it."""
    ref = regnety_name(size)
    return Roles(size, model, BASES["p"].format(size), ref if ref in set(models) else None)


def study_rows(study: str, results: Results) -> list[LeaderboardRow]:
    """One row per non-patchify model of `study` (its stems, ViT_C and its CNN reference), ranked, with its verdicts
    and texts."""
    df = load_results(study, results)
    floors, (df, _) = noise_floors(df), split_copies(df)
    mm = model_metrics(df)
    x, cmp = mm.set_index("model"), {(c.model, c.baseline): c for c in comparisons(df)}
    sizes = df.groupby("model")["size"].first()
    claims = [c for c in load_claims() if c.study == study.split("-")[0]]  # a preset's study scores them too
    rows = []
    for model in x.index:
        size = sizes[model]
        if model == BASES["p"].format(size):
            continue
        ref = is_reference(model)
        against = {k: _versus(cmp.get((b.format(size), model) if ref else (model, b.format(size))), b.format(size), mm,
                              floors, flip=ref) for k, b in BASES.items()}
        row = dataclasses.replace(_row(study, model, x, size=size, against=against), reference=ref)
        if not ref:  # the paper's claims of this study, the stem in ViT_C's place (reproduce's scorecard, per stem)
            text = "; ".join(f"{c.id}: {score(c, df, _roles(model, size, sizes.index)).status}" for c in claims)
            row = dataclasses.replace(row, claims=text)
        rows.append(row)
    return ranked(_adjusted(rows))
