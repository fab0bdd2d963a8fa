"""Robustness metrics on error samples: EDFs and bands, Δ-EDF area, expected best, LR sensitivity, KS tests.

Conventions (used everywhere): errors are in percent; diverged and failed trials enter at the cap (100);
trials still running or pending are left out. F(e) = (1/n)·Σ 1[eᵢ < e] (the paper's EDF), Δ = e − min(e).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from robustbench_vit.analysis.frame import ERROR_CAP, HYPERPARAMS, is_baseline, model_order
from robustbench_vit.study.storage import FINISHED

DELTA_WINDOW = 10.0  # points of error: the Δ-EDF area is taken over Δ ∈ [0, DELTA_WINDOW]
WITHIN = (1, 2, 5)  # fraction of trials within these many points of the best
BUDGET = 5  # the expected best error after this many random trials goes into the metrics table
LR_BIN = 0.5  # decades: random designs (every lr unique) group trials into log-lr bins of this width


def finished(df: pd.DataFrame) -> pd.DataFrame:
    """The trials that count: complete, diverged and failed (the latter two already at the cap)."""
    return df[df["status"].isin(FINISHED)]


def edf(errors, grid) -> np.ndarray:
    """F(x) = fraction of errors strictly below x, at every x of the grid."""
    e = np.sort(np.asarray(errors, float))
    return np.searchsorted(e, np.asarray(grid, float), side="left") / max(len(e), 1)


def deltas(errors) -> np.ndarray:
    """Δerror: each error minus the best (smallest) of the sample."""
    e = np.asarray(errors, float)
    return e - e.min()


def delta_auc(errors, window: float = DELTA_WINDOW) -> float:
    """Normalised area under the Δ-EDF, (1/D)·∫₀ᴰ F(Δ) dΔ = mean(max(0, 1 − Δᵢ/D)); 1 = every trial at the best."""
    return float(np.mean(np.clip(1.0 - deltas(errors) / window, 0.0, 1.0)))


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


def lr_sensitivity(lr, errors, error_at_init: float, others: pd.DataFrame | None = None) -> float:
    """Wortsman et al. 2023: mean over the sampled lr values of min(error, error at init) − the best such value.

    Trials sharing an lr (seeds) are averaged first. Where other hyperparameters vary too (`others`, one column
    each), the error at an lr is the best over their settings: seed-averaged per setting, then the minimum per lr,
    or per LR_BIN-decade bin of log10(lr) where every lr is unique (random designs). NaN with < 3 lr values/bins.
    """
    e = pd.Series(np.minimum(np.asarray(errors, float), error_at_init))
    key = pd.Series(np.round(np.log10(np.asarray(lr, float)), 9))
    cols = [] if others is None else [others[c].reset_index(drop=True) for c in others if others[c].nunique() > 1]
    keep = key.notna()  # trials without an lr drop out
    if not cols:
        s = e[keep].groupby(key[keep]).mean()
    else:
        per = e[keep].groupby([key[keep], *(c[keep] for c in cols)], dropna=False).mean()
        log_lr = pd.Series(per.index.get_level_values(0))
        groups = np.floor(log_lr / LR_BIN) if log_lr.is_unique else log_lr
        s = pd.Series(per.to_numpy()).groupby(groups.to_numpy()).min()
    return float(s.mean() - s.min()) if len(s) >= 3 else math.nan


def good_range(values, errors, *, sample: float = 0.25, resamples: int = 2500, alpha: float = 5.0, seed: int = 0,
               min_k: int = 4) -> tuple[float, float, float]:
    """pycls's bootstrap range of a hyperparameter where the best trials lie: (low, median, high) percentiles.

    Draw `resamples` subsamples of `sample`·n trials with replacement, keep each one's best trial, and return
    the alpha/2, 50 and 100 − alpha/2 percentiles of the kept values. NaN when a subsample would have fewer than
    `min_k` trials (with 1–3 trials the kept value is close to a random draw, and the range means nothing).
    """
    v, e = np.asarray(values, float), np.asarray(errors, float)
    k = max(1, int(len(e) * sample))
    if k < min_k:
        return (math.nan, math.nan, math.nan)
    idx = np.random.default_rng(seed).integers(0, len(e), size=(resamples, k))
    best = idx[np.arange(resamples), np.argmin(e[idx], axis=1)]
    lo, med, hi = np.percentile(v[best], [alpha / 2, 50, 100 - alpha / 2])
    return (float(lo), float(med), float(hi))


def ks_critical(n: int, m: int, alpha: float = 0.05) -> float:
    """Asymptotic critical D of the two-sample KS test: c(α)·√((n+m)/(n·m)), c(α) = √(−ln(α/2)/2)."""
    return math.sqrt(-math.log(alpha / 2) / 2) * math.sqrt((n + m) / (n * m))


def ks_needed(d: float, alpha: float = 0.05) -> int:
    """Trials per model at which an observed KS distance d would reach the critical D (equal sizes)."""
    return math.ceil(2 * (math.sqrt(-math.log(alpha / 2) / 2) / d) ** 2) if d > 0 else 0


def bootstrap_band(errors, grid, *, relative: bool = False, resamples: int = 1000, alpha: float = 0.05,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise (1 − α) bootstrap band of the EDF on the grid; `relative` re-takes Δ to each resample's best."""
    e = np.asarray(errors, float)
    samples = e[np.random.default_rng(seed).integers(0, len(e), size=(resamples, len(e)))]
    if relative:
        samples = samples - samples.min(axis=1, keepdims=True)
    curves = np.stack([edf(s, grid) for s in samples])
    return np.quantile(curves, alpha / 2, axis=0), np.quantile(curves, 1 - alpha / 2, axis=0)


def ks_compare(a, b, *, window: float = DELTA_WINDOW) -> dict:
    """KS tests of two samples on Δerror and on absolute error, and which Δ-EDF lies above over [0, window]."""
    da, db = deltas(a), deltas(b)
    rel, ab = stats.ks_2samp(da, db), stats.ks_2samp(a, b)
    pts = np.concatenate([da, db])
    grid = np.unique(np.concatenate([pts, np.nextafter(pts, np.inf), [0.0, window]]))
    grid = grid[(grid >= 0) & (grid <= window)]
    diff = edf(da, grid) - edf(db, grid)
    above = "a" if diff.min() >= 0 and diff.max() > 0 else "b" if diff.max() <= 0 and diff.min() < 0 else (
        "equal" if not diff.any() else "crossing")
    return {"ks_d": float(rel.statistic), "ks_p": float(rel.pvalue), "ks_d_abs": float(ab.statistic),
            "ks_p_abs": float(ab.pvalue), "critical_d": ks_critical(len(a), len(b)), "above": above,
            "needed": ks_needed(float(rel.statistic))}


def error_at_init(num_classes) -> float:
    """Error of an untrained classifier: chance, 100·(1 − 1/classes); the cap where classes are unknown."""
    return 100.0 * (1 - 1 / num_classes) if num_classes and num_classes == num_classes else ERROR_CAP


def _log_range(g: pd.DataFrame, col: str) -> tuple[float, float, float]:
    """Bootstrap good range of log10(col) for a model's trials (NaN without 3 positive values)."""
    g = g.dropna(subset=[col]) if col in g else g
    if col not in g or g[col].nunique() < 3 or (g[col] <= 0).any():
        return (math.nan, math.nan, math.nan)
    return good_range(np.log10(g[col].astype(float)), g["error"])


def _sensitivity(g: pd.DataFrame) -> dict:
    """LR sensitivity and good lr / wd ranges of one model's (one optimizer's) finished trials."""
    lr_lo, _, lr_hi = _log_range(g, "lr")
    wd_lo, _, wd_hi = _log_range(g, "weight_decay")
    chance = error_at_init(g["num_classes"].max() if "num_classes" in g else None)
    others = g[[c for c in setting_columns(g) if c not in ("lr", "seed", "optimizer")]]
    return {"lr_sensitivity": lr_sensitivity(g["lr"], g["error"], chance, others) if "lr" in g else math.nan,
            "good_lr_decades": lr_hi - lr_lo, "good_lr_low": lr_lo, "good_lr_high": lr_hi,
            "good_wd_decades": wd_hi - wd_lo}


def model_metrics(df: pd.DataFrame, *, window: float = DELTA_WINDOW) -> pd.DataFrame:
    """One row of robustness metrics per model (models in report order)."""
    rows = []
    for model in model_order(df["model"]):
        g_all = df[df["model"] == model]
        g = finished(g_all)
        counts = g_all["status"].value_counts()
        e = g["error"].to_numpy(float)
        first = {c: g_all[c].dropna().iloc[0] if c in g_all and g_all[c].notna().any() else None
                 for c in ("stem", "depth", "params_count", "gmacs")}
        row = {"model": model, **first, "trials": len(e),
               **{s: int(counts.get(s, 0)) for s in ("complete", "diverged", "failed", "running", "pending")}}
        if len(e):
            exp_best, exp_std = expected_best(e, BUDGET)  # draws with replacement: no cap
            row |= {"best": e.min(), "median": float(np.median(e)), "mean": e.mean(),
                    "divergence_rate": row["diverged"] / len(e), "delta_auc": delta_auc(e, window),
                    **{f"within_{k}": fraction_within(e, k) for k in WITHIN},
                    "expected_best": float(exp_best[0]), "expected_best_std": float(exp_std[0])}
            opts = sorted(g["optimizer"].dropna().unique()) if "optimizer" in g else []
            # lr scales differ between optimizers: with several, the sensitivities are per optimizer
            for suffix, sub in ({"": g} if len(opts) <= 1 else {f"_{o}": g[g["optimizer"] == o] for o in opts}).items():
                row |= {f"{k}{suffix}": v for k, v in _sensitivity(sub).items()}
            best_by_opt = g.groupby("optimizer")["error"].min() if "optimizer" in g else pd.Series(dtype=float)
            for opt, v in best_by_opt.items():
                row[f"best_{opt}"] = float(v)
            row["optimizer_gap"] = (float(best_by_opt["sgd"] - best_by_opt["adamw"])
                                    if {"sgd", "adamw"} <= set(best_by_opt.index) else math.nan)
        rows.append(row)
    out = pd.DataFrame(rows)
    if "delta_auc" in out and len(out) > 1:  # 1 = the most robust by Δ-EDF area
        out["rank"] = out["delta_auc"].rank(ascending=False, method="min")
    return out


def model_size(model: str, sizes: dict[str, str | None] | None = None) -> str | None:
    """A model's size: from `sizes` (model → size), else a baseline's name suffix (`vit_c_<size>`)."""
    size = (sizes or {}).get(model)
    if size is None and is_baseline(model):
        size = model.split("_", 2)[2]
    return size


def pairs(models, sizes: dict[str, str | None] | None = None) -> list[tuple[str, str]]:
    """(model, baseline) pairs of one size: vit_c_s vs vit_p_s, and each other model vs both baselines of its size."""
    order = model_order(models)
    return [(m, b) for i, b in enumerate(order) if is_baseline(b) for m in order[i + 1:]
            if model_size(m, sizes) is not None and model_size(m, sizes) == model_size(b, sizes)
            and (not is_baseline(m) or (m.startswith("vit_c_") and b.startswith("vit_p_")))]


def setting_columns(df: pd.DataFrame) -> list[str]:
    """Columns that define a trial's setting: seed, the config's hyperparameters, the searched params (df.attrs)."""
    cols = ["seed", *HYPERPARAMS, *df.attrs.get("searched", ())]
    return [c for c in dict.fromkeys(cols) if c in df and df[c].notna().any()]


def _paired(a: pd.DataFrame, b: pd.DataFrame) -> dict:
    """Wins / losses / ties of a over b on identical settings (seed and hyperparameters), two-sided sign-test p.

    Point indices are not enough: TPE samples each model's points separately, so a point index means different
    hyperparameters per model. Trials repeating one setting within a model are averaged first.
    """
    keys = [c for c in setting_columns(a) if c in setting_columns(b)]
    a, b = (x.dropna(subset=keys + ["error"]).groupby(keys)["error"].mean().reset_index() for x in (a, b))
    m = a.merge(b, on=keys, suffixes=("_a", "_b"))
    wins, losses = int((m["error_a"] < m["error_b"]).sum()), int((m["error_a"] > m["error_b"]).sum())
    p = stats.binomtest(wins, wins + losses).pvalue if wins + losses else math.nan
    return {"matched": len(m), "wins": wins, "losses": losses, "ties": len(m) - wins - losses, "sign_p": float(p)}


def comparisons(df: pd.DataFrame, *, window: float = DELTA_WINDOW) -> pd.DataFrame:
    """For every model against each baseline of its size: sample sizes, Δ-EDF areas, KS tests on Δ and abs. error."""
    rows = []
    fin = finished(df)
    sizes = df.dropna(subset=["size"]).groupby("model")["size"].first().to_dict() if "size" in df else {}
    for m, b in pairs(df["model"], sizes):
        a_df, b_df = fin[fin["model"] == m], fin[fin["model"] == b]
        ea, eb = a_df["error"].to_numpy(float), b_df["error"].to_numpy(float)
        row = {"model": m, "baseline": b, "n_model": len(ea), "n_baseline": len(eb)}
        if len(ea) >= 2 and len(eb) >= 2:
            row |= {"best_model": ea.min(), "best_baseline": eb.min(), "auc_model": delta_auc(ea, window),
                    "auc_baseline": delta_auc(eb, window), **ks_compare(ea, eb, window=window), **_paired(a_df, b_df)}
            row["above"] = {"a": m, "b": b}.get(row["above"], row["above"])  # whose Δ-EDF lies above
        rows.append(row)
    return pd.DataFrame(rows)
