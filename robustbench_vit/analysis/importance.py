"""Hyperparameter importances per model (Optuna's fANOVA): how much of the error's variance each searched one explains.

Computed from the trial table (capped trials at the cap, failed ones left out) into a typed value; rendering is
`importance_table`. Only random / quasirandom designs: a grid has too few distinct values per hyperparameter for a
forest to split on, and TPE samples where each model does well, which biases any variance decomposition.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import optuna
import pandas as pd
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
from optuna.importance import FanovaImportanceEvaluator

from robustbench_vit.analysis import metrics as M
from robustbench_vit.analysis.frame import DID_NOT_TRAIN, model_order
from robustbench_vit.analysis.summary import Table
from robustbench_vit.store import quiet_optuna

DESIGNS = ("random", "quasirandom")
MIN_TRIALS = 16  # per model (and stratum): below it lr's share varied by sd ≈ 0.15–0.19 over redraws (see Methods)
TREES, DEPTH, SEED = 32, 6, 0  # fANOVA forest; the time per model is in tests/test_importance.py
NOTE = ("Importances describe this study's ranges and models: they are not causal, say nothing outside the ranges "
        "searched, and are not a robustness verdict (a model can depend strongly on lr and still be robust).")


@dataclass(frozen=True)
class Importance:
    """One model's (or stratum's) importances: fraction of the error's variance per hyperparameter, or why none."""

    model: str
    stratum: str  # "" or e.g. "optimizer=sgd"
    trials: int  # results used (complete + at chance + diverged)
    capped: int  # of them at the cap (did not train)
    shares: tuple[tuple[str, float], ...] = ()  # (hyperparameter, fraction of variance of its main effect)
    reason: str = ""  # why there are no shares ("" when there are)

    @property
    def interaction(self) -> float:
        """Variance not explained by any single hyperparameter: their interactions (1 − Σ main effects)."""
        return max(0.0, 1.0 - sum(v for _, v in self.shares)) if self.shares else math.nan


@dataclass(frozen=True)
class Importances:
    """Every model's importances, the hyperparameters assessed, or why the study has none."""

    rows: tuple[Importance, ...]
    params: tuple[str, ...]
    reason: str = ""  # why the study's design has no importances ("" when it has)


def _distribution(dim: dict[str, Any] | None, stratum: str | None, values: pd.Series) -> BaseDistribution:
    """The searched range of a hyperparameter (log10 for log ranges, as sampled), else the observed range."""
    dim = dim or {}
    if dim.get("choices") is not None:
        return CategoricalDistribution(list(dim["choices"]))
    low, high = dim.get("ranges", {}).get(stratum, (dim.get("low"), dim.get("high")))
    if low is None:
        low, high = float(values.min()), float(values.max())
    if dim.get("log"):
        low, high = math.log10(low), math.log10(high)
    return FloatDistribution(float(low), float(high))


def _value(dim: dict[str, Any] | None, v: Any) -> Any:
    """A trial's value in the distribution's coordinates (log10 for log ranges)."""
    return math.log10(v) if (dim or {}).get("log") else v


def _fanova(g: pd.DataFrame, params: list[str], space: dict, stratum: str | None) -> dict[str, float]:
    """fANOVA main-effect variance fractions of the error over the given trials (an in-memory Optuna study)."""
    dists = {p: _distribution(space.get(p), stratum, g[p]) for p in params}
    with quiet_optuna():
        study = optuna.create_study(direction="minimize")
    study.add_trials([optuna.trial.create_trial(params={p: _value(space.get(p), r[p]) for p in params},
                                                distributions=dists, value=float(r["error"]))
                      for _, r in g.iterrows()])
    evaluator = FanovaImportanceEvaluator(n_trees=TREES, max_depth=DEPTH, seed=SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dict(evaluator.evaluate(study, params=params))


def _one(model: str, stratum: str, g: pd.DataFrame, params: list[str], *, space: dict,
         key: str | None) -> Importance:
    """Importances of one model (or stratum), or the reason there are none."""
    n, capped = len(g), int(g["status"].isin(DID_NOT_TRAIN).sum())
    base = dict(model=model, stratum=stratum, trials=n, capped=capped)
    varied = [p for p in params if g[p].nunique() > 1]
    if n < MIN_TRIALS:
        return Importance(**base, reason=f"{n} trial{'s' * (n != 1)}: below the {MIN_TRIALS} needed")
    if not (g["status"] == "complete").any():
        return Importance(**base, reason="did not learn in this range: every trial at the cap or at chance")
    if g["error"].nunique() == 1:
        return Importance(**base, reason="every trial has the same error: no variance to explain")
    if len(varied) < 2:
        return Importance(**base, reason=f"only {', '.join(varied) or 'no hyperparameter'} varies: "
                                         "it trivially explains all the variance")
    found = _fanova(g, varied, space, key and stratum.split("=", 1)[1])
    return Importance(**base, shares=tuple((p, float(found.get(p, 0.0))) for p in params))


def importances(df: pd.DataFrame, spec: dict[str, Any] | None) -> Importances:
    """Per model (and stratum) fANOVA importances of the searched hyperparameters, for random designs only."""
    spec = spec or {}
    design = spec.get("design") if isinstance(spec.get("design"), dict) else {}
    kind = df.attrs.get("design") or design.get("kind") or "grid"
    if kind not in DESIGNS:
        why = "adaptive (TPE) sampling concentrates trials where each model does well, which biases them" \
            if M.is_adaptive(df) or kind == "tpe" else "a grid has too few distinct values per hyperparameter"
        return Importances((), (), reason=f"not computed for {kind} designs: {why}")
    space, key = spec.get("space") or {}, design.get("stratify")
    fin = M.results(df)
    params = [p for p in df.attrs.get("searched", ()) if p != key and p in fin and fin[p].nunique() > 1]
    rows = []
    for m in model_order(fin["model"]):
        g = fin[fin["model"] == m]
        strata = [(f"{key}={s}", g[g[key] == s]) for s in sorted(g[key].dropna().unique())] if key in g else [("", g)]
        rows += [_one(m, name, part, params, space=space, key=key) for name, part in strata]
    return Importances(tuple(rows), tuple(params))


def importance_table(imp: Importances) -> Table:
    """The importances as text cells: per model (and stratum), % of the error's variance per hyperparameter."""
    if not imp.rows:
        return Table([], [])
    headers = ["model", "trials (at cap)", *(f"{p} (%)" for p in imp.params), "interactions (%)"]
    rows = []
    for r in imp.rows:
        name = f"{r.model} ({r.stratum})" if r.stratum else r.model
        cells = [f"{100 * v:.0f}" for _, v in r.shares] + [f"{100 * r.interaction:.0f}"] if r.shares else \
            [f"– ({r.reason})", *[""] * len(imp.params)]
        rows.append([name, f"{r.trials} ({r.capped})", *cells])
    return Table(headers, rows)
