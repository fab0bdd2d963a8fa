"""Descriptive robustness metrics per model and the numbers behind each comparison.

Conventions (used everywhere): errors are in percent. A trial's outcome is complete, collapsed (finished at
chance), diverged or failed (see frame.STATUSES). The results are the first three; collapsed and diverged trials
("did not train") enter at the cap (100); failed trials are no result and are left out of every metric, figure
and test, like trials still running or pending. F(e) = (1/n)·Σ 1[eᵢ < e] (the paper's EDF), Δ = e − min(e).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from robustbench_vit.analysis import inference as I
from robustbench_vit.analysis.frame import HYPERPARAMS, RESULTS, chance_error, is_baseline, model_order, role
from robustbench_vit.models.reference import parse_reference

DELTA_WINDOW = 10.0  # points of error: the Δ-EDF area is taken over Δ ∈ [0, DELTA_WINDOW]
WITHIN = (1, 2, 5)  # fraction of trials within these many points of the best
BUDGET = 5  # the expected best error after this many random trials goes into the metrics table
CROSSING = 0.1  # a Δ-EDF lying above the other by at most this share of trials still counts as below it
PEAK_POINTS = 5.0  # bests further apart than this many points: Δ-robustness is confounded by peak error
PEAK_SHARE = 0.5  # … or the worse best more than this share of the way from the better best to chance
ADAPTIVE = ("tpe",)  # designs whose points follow each model's own results: no EDF, no random-budget claims


def results(df: pd.DataFrame) -> pd.DataFrame:
    """The trials that are results: complete, collapsed and diverged (the latter two at the cap)."""
    return df[df["status"].isin(RESULTS)]


def is_adaptive(df: pd.DataFrame) -> bool:
    """Whether the study's design samples adaptively (TPE): points cluster around each model's own optimum."""
    return df.attrs.get("design") in ADAPTIVE


def edf(errors, grid) -> np.ndarray:
    """F(x) = fraction of errors strictly below x, at every x of the grid."""
    e = np.sort(np.asarray(errors, float))
    return np.searchsorted(e, np.asarray(grid, float), side="left") / max(len(e), 1)


def deltas(errors) -> np.ndarray:
    """Δerror: each error minus the best (smallest) of the sample."""
    return I.deltas(np.asarray(errors, float))


def delta_auc(errors, window: float = DELTA_WINDOW) -> float:
    """Normalised area under the Δ-EDF, (1/D)·∫₀ᴰ F(Δ) dΔ = mean(max(0, 1 − Δᵢ/D)); 1 = every trial at the best."""
    return float(I.area(np.asarray(errors, float), window))


def fraction_within(errors, points: float) -> float:
    """Fraction of trials whose error is at most `points` above the best."""
    return float(np.mean(deltas(errors) <= points))


def expected_best(errors, n) -> tuple[np.ndarray, np.ndarray]:
    """Expected minimum (and its std) of n draws with replacement from the sample (Dodge et al. 2019)."""
    e = np.sort(np.asarray(errors, float))
    big_n, n = len(e), np.atleast_1d(np.asarray(n, float))[:, None]
    i = np.arange(1, big_n + 1)
    p = ((big_n - i + 1) / big_n) ** n - ((big_n - i) / big_n) ** n  # P(min of n = e_i)
    mean = p @ e
    return mean, np.sqrt(np.maximum(p @ e**2 - mean**2, 0.0))


def lr_sensitivity(lr, errors, error_at_init: float, others: pd.DataFrame | None = None, *,
                   normalised: bool = False) -> float:
    """Wortsman et al. 2023 on 1-D lr sweeps: mean over the lr values of min(error, error at init) − their best.

    Trials sharing an lr are averaged over seeds first. Where other hyperparameters vary (`others`, one column
    each), each fixed setting of them is its own 1-D sweep (a slice) and the value is the mean over the slices
    with ≥ 3 lr values. NaN where no slice has 3 lr values, e.g. random designs, which draw every lr once.
    `normalised`: each slice's value divided by its attainable improvement (error at init − its best), i.e. the
    share of what the model can gain that it loses across the lr range — comparable between models whose bests
    differ, where the raw value calls a model that is bad everywhere "insensitive".
    """
    e = pd.Series(np.minimum(np.asarray(errors, float), error_at_init))
    log_lr = pd.Series(np.round(np.log10(np.asarray(lr, float)), 9))
    cols = [] if others is None else [others[c].reset_index(drop=True) for c in others if others[c].nunique() > 1]
    keep = log_lr.notna()
    per = e[keep].groupby([*(c[keep] for c in cols), log_lr[keep]], dropna=False).mean()  # seed-averaged
    slices = [per] if not cols else [g for _, g in per.groupby(level=list(range(len(cols))), dropna=False)]
    values = [float((g.mean() - g.min()) / (max(error_at_init - g.min(), 1e-9) if normalised else 1.0))
              for g in slices if len(g) >= 3]
    return float(np.mean(values)) if values else math.nan


def good_range(values, errors, *, sample: float = 0.25, resamples: int = 2500, alpha: float = 5.0, seed: int = 0,
               min_k: int = 4) -> tuple[float, float, float]:
    """pycls's bootstrap range of a hyperparameter where the best trials lie: (low, median, high) percentiles.

    Draw `resamples` subsamples of `sample`·n trials with replacement, keep each one's best trial, and return
    the alpha/2, 50 and 100 − alpha/2 percentiles of the kept values. NaN when a subsample would have fewer than
    `min_k` trials (with 1–3 trials the kept value is close to a random draw, and the range means nothing).
    This locates the best value; it is not a robustness score (a flat error surface gives a wide range too).
    """
    v, e = np.asarray(values, float), np.asarray(errors, float)
    k = max(1, int(len(e) * sample))
    if k < min_k:
        return (math.nan, math.nan, math.nan)
    idx = np.random.default_rng(seed).integers(0, len(e), size=(resamples, k))
    best = idx[np.arange(resamples), np.argmin(e[idx], axis=1)]
    lo, med, hi = np.percentile(v[best], [alpha / 2, 50, 100 - alpha / 2])
    return (float(lo), float(med), float(hi))


def bootstrap_band(errors, grid, *, relative: bool = False, resamples: int = 1000, alpha: float = 0.05,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise (1 − α) bootstrap band of the EDF on the grid; `relative` re-takes Δ to each resample's best."""
    e = np.asarray(errors, float)
    samples = e[np.random.default_rng(seed).integers(0, len(e), size=(resamples, len(e)))]
    if relative:
        samples = samples - samples.min(axis=1, keepdims=True)
    curves = np.stack([edf(s, grid) for s in samples])
    return np.quantile(curves, alpha / 2, axis=0), np.quantile(curves, 1 - alpha / 2, axis=0)


def dominance(a, b, *, window: float = DELTA_WINDOW) -> str:
    """Whose Δ-EDF lies above over [0, window]: "a", "b", "equal" or "crossing".

    One lies above when the other never exceeds it by more than CROSSING of the trials (or one trial's step,
    1/n of the smaller sample, where that is more): a few trials landing on the other side, as noise does near
    Δ = 0, are not a crossing.
    """
    da, db = deltas(a), deltas(b)
    pts = np.concatenate([da, db])
    grid = np.unique(np.concatenate([pts, np.nextafter(pts, np.inf), [0.0, window]]))
    diff = edf(da, grid[grid <= window]) - edf(db, grid[grid <= window])
    step = max(CROSSING, 1.0 / min(len(da), len(db))) + 1e-9
    if not diff.any():
        return "equal"
    if diff.min() >= -step and diff.max() > step or diff.min() >= 0:
        return "a"
    if diff.max() <= step and diff.min() < -step or diff.max() <= 0:
        return "b"
    return "crossing"


def peak_confounded(best_a: float, best_b: float, chance: float) -> bool:
    """Whether two bests are too far apart for Δ from one's own best to compare robustness (DESIGN.md §1.2):
    more than PEAK_POINTS apart, or the worse more than PEAK_SHARE of the way from the better to chance."""
    better, worse = sorted((best_a, best_b))
    return worse - better > PEAK_POINTS or worse - better > PEAK_SHARE * max(chance - better, 0.0)


def search_progress(errors, points: float = 1.0) -> int:
    """Trials (in the order they ran) until the running best came within `points` of the final best."""
    e = np.asarray(errors, float)
    return int(np.argmax(np.minimum.accumulate(e) <= e.min() + points)) + 1


def _log_range(g: pd.DataFrame, col: str) -> tuple[float, float, float]:
    """Bootstrap good range of log10(col) for a model's trials (NaN without 3 positive values)."""
    g = g.dropna(subset=[col]) if col in g else g
    if col not in g or g[col].nunique() < 3 or (g[col] <= 0).any():
        return (math.nan, math.nan, math.nan)
    return good_range(np.log10(g[col].astype(float)), g["error"])


def _sensitivity(g: pd.DataFrame) -> dict:
    """LR sensitivity and where the best lr / wd lie, for one model's (one optimizer's) results."""
    lr_lo, _, lr_hi = _log_range(g, "lr")
    wd_lo, _, wd_hi = _log_range(g, "weight_decay")
    chance = chance_error(g["num_classes"].max() if "num_classes" in g else None)
    others = g[[c for c in setting_columns(g) if c not in ("lr", "seed", "optimizer")]]
    sens = {f"lr_sensitivity{k}": lr_sensitivity(g["lr"], g["error"], chance, others, normalised=bool(k))
            if "lr" in g else math.nan for k in ("", "_normalised")}
    return {**sens,
            "good_lr_low": lr_lo, "good_lr_high": lr_hi, "good_wd_low": wd_lo, "good_wd_high": wd_hi}


def step_time(g: pd.DataFrame) -> dict:
    """A model's measured training step: the median over its trials of each trial's median warm step (seconds, at the
    study's batch size), and the device most of them trained on."""
    steps = g["step_seconds"].dropna() if "step_seconds" in g else pd.Series(dtype=float)
    devices = g["device"].dropna() if "device" in g else pd.Series(dtype=object)
    return {"step_seconds": float(steps.median()) if len(steps) else math.nan,
            "device": str(devices.mode().iloc[0]) if len(devices) else None}


def model_metrics(df: pd.DataFrame, *, window: float = DELTA_WINDOW) -> pd.DataFrame:
    """One row of metrics per model (models in report order); robustness only for models that learned.

    A model learned when at least one of its results is complete (better than chance); one that did not has
    every Δ ≈ 0 and would look perfectly robust, so its Δ-based metrics are NaN and it gets no rank. Adaptive
    designs get no Δ-EDF or random-budget metrics (their points are not a random sample of the space).
    """
    rows, adaptive = [], is_adaptive(df)
    for model in model_order(df["model"]):
        g_all = df[df["model"] == model]
        g = results(g_all)
        counts = g_all["status"].value_counts()
        e = g["error"].to_numpy(float)
        first = {c: g_all[c].dropna().iloc[0] if c in g_all and g_all[c].notna().any() else None
                 for c in ("stem", "depth", "params_count", "gmacs", "activations", "num_classes")}
        row = {"model": model, **first, **step_time(g_all), "trials": len(e),
               **{s: int(counts.get(s, 0)) for s in ("complete", "collapsed", "diverged", "failed", "running",
                                                     "pending")}}
        row["learned"] = row["complete"] > 0
        if len(e):
            dnt = row["collapsed"] + row["diverged"]
            lo, hi = I.wilson(dnt, len(e))
            finals = g["final_error"] if "final_error" in g else g["error"]
            row |= {"best": e.min(), "best_final": float(finals.min()), "median": float(np.median(e)),
                    "mean": e.mean(), "divergence_rate": row["diverged"] / len(e), "did_not_train_rate": dnt / len(e),
                    "did_not_train_low": lo, "did_not_train_high": hi}
            if adaptive:
                order = g.sort_values("number") if "number" in g else g
                row["trials_to_best"] = search_progress(order["error"])
            elif row["learned"]:
                exp_best, exp_std = expected_best(e, BUDGET)  # draws with replacement: no cap
                row |= {"delta_auc": delta_auc(e, window), **{f"within_{k}": fraction_within(e, k) for k in WITHIN},
                        "retained": float(I.retained(e, chance_error(row["num_classes"]))),
                        "expected_best": float(exp_best[0]), "expected_best_std": float(exp_std[0])}
            opts = sorted(g["optimizer"].dropna().unique()) if "optimizer" in g else []
            # lr scales differ between optimizers: with several, the sensitivities are per optimizer
            for suffix, sub in ({"": g} if len(opts) <= 1 else {f"_{o}": g[g["optimizer"] == o] for o in opts}).items():
                sens = _sensitivity(sub)
                if not row["learned"] or adaptive:  # at chance everywhere reads as "insensitive"; TPE is no sweep
                    sens["lr_sensitivity"] = sens["lr_sensitivity_normalised"] = math.nan
                row |= {f"{k}{suffix}": v for k, v in sens.items()}
            by_opt = g.assign(final=finals).groupby("optimizer")["final"] if "optimizer" in g else None
            best_by_opt = by_opt.min() if by_opt is not None else pd.Series(dtype=float)  # as "best": the final error
            for opt, v in best_by_opt.items():
                row[f"best_{opt}"] = float(v)
            row["optimizer_gap"] = (float(best_by_opt["sgd"] - best_by_opt["adamw"])  # none for a model that did
                                    if {"sgd", "adamw"} <= set(best_by_opt.index) and row["learned"] else math.nan)
        rows.append(row)
    out = pd.DataFrame(rows)
    if "delta_auc" not in out:
        return out
    sizes = df.dropna(subset=["size"]).groupby("model")["size"].first().to_dict() if "size" in df else {}
    size = out["model"].map(lambda m: model_size(m, sizes) or m)
    top = out["best"].where(out["delta_auc"].notna()).groupby(size).transform("min")
    out["peak_far"] = [bool(d == d and peak_confounded(b, t, chance_error(c)))  # Δ-robustness not comparable
                       for d, b, t, c in zip(out["delta_auc"], out["best"], top, out["num_classes"])]
    rankable = out["delta_auc"].where(~out["peak_far"])
    if rankable.notna().sum() > 1:  # 1 = the most robust of those that learned with a best near the top one
        out["rank"] = rankable.rank(ascending=False, method="min")
    return out


def model_size(model: str, sizes: dict[str, str | None] | None = None) -> str | None:
    """A model's size: from `sizes` (model → size), else a baseline's name suffix (`vit_c_<size>`)."""
    size = (sizes or {}).get(model)
    if size is None and is_baseline(model):
        size = model.split("_", 2)[2]
    if size is None and (ref := parse_reference(model)) is not None:
        size = ref[0] or None
    return size


def pairs(models, sizes: dict[str, str | None] | None = None) -> list[tuple[str, str]]:
    """(model, baseline) pairs of one size: vit_c_s vs vit_p_s, each ViT vs the size's CNN references, and each other
    model (a user stem) vs all of them."""
    order = model_order(models)
    wanted = {(1, 0), (0, 2), (1, 2), (3, 0), (3, 1), (3, 2)}  # (role of model, role of baseline), frame.role
    return [(m, b) for b in order for m in order if (role(m), role(b)) in wanted
            and model_size(m, sizes) is not None and model_size(m, sizes) == model_size(b, sizes)]


def setting_columns(df: pd.DataFrame) -> list[str]:
    """Columns that define a trial's setting: seed, the config's hyperparameters, the searched params (df.attrs)."""
    cols = ["seed", *HYPERPARAMS, *df.attrs.get("searched", ())]
    return [c for c in dict.fromkeys(cols) if c in df and df[c].notna().any()]


def matched(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Results of a and b at identical settings (seed and every hyperparameter): columns error_a, error_b.

    Point indices are not enough: TPE samples each model's points separately, so a point index means different
    hyperparameters per model. Trials repeating one setting within a model are averaged first.
    """
    keys = [c for c in setting_columns(a) if c in setting_columns(b)]
    if not keys:  # nothing to pair on (e.g. one side has no results)
        return pd.DataFrame(columns=["error_a", "error_b"])
    a, b = (x.dropna(subset=keys + ["error"]).groupby(keys)["error"].mean().reset_index() for x in (a, b))
    return a.merge(b, on=keys, suffixes=("_a", "_b"))
