"""What each report figure shows, as small typed values computed from the trial table (figure data).

As Optuna's `visualization/_edf.py` (`_EDFInfo` / `_EDFLineInfo`): each figure's numbers (the EDFs and their
bands, boxes, median lines, expected best error per budget, …) are a frozen value made by one pure function,
which returns None where the study's design cannot support the figure (e.g. an lr curve needs 3 lr values).
`report/figures.py` only draws these values; the report and the tests read the same ones.

Every function takes the trial table and, optionally, the models in report order (default: all of them).
Conventions as in metrics.py: results only (failed trials are left out), trials that did not train at the cap.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from robustbench_vit.analysis import metrics as M
from robustbench_vit.analysis.claims import ScoredClaim
from robustbench_vit.analysis.comparison import MARGINS, Comparison
from robustbench_vit.analysis.frame import DID_NOT_TRAIN, ERROR_CAP, chance_error, model_order
from robustbench_vit.analysis.noise import NoiseFloor, floor_for
from robustbench_vit.analysis.verdict import UNIT

EDF_POINTS = 400  # the EDFs and their bands are evaluated on this many evenly spaced errors (or Δ)
WHIS = 1.5  # box whiskers reach the furthest trial within WHIS · IQR of the box (Tukey; matplotlib's default)


def groups(df: pd.DataFrame, models: Sequence[str] | None = None, min_n: int = 1) -> Iterator[tuple[str, pd.DataFrame]]:
    """(model, its results) for every model with at least `min_n` results, in the given (else report) order."""
    fin = M.results(df)
    for m in model_order(df["model"]) if models is None else models:
        g = fin[fin["model"] == m]
        if len(g) >= min_n:
            yield m, g


def capped(g: pd.DataFrame) -> np.ndarray:
    """Mask of trials that sit at the cap (did not train: diverged or at chance)."""
    return g["status"].isin(DID_NOT_TRAIN).to_numpy()


@dataclass(frozen=True)
class EDFLine:
    """One model's EDF F on the grid x, its 95% pointwise bootstrap band, its results (n) and how many at the cap."""

    model: str
    x: np.ndarray
    y: np.ndarray
    band_low: np.ndarray
    band_high: np.ndarray
    n: int
    capped: int


@dataclass(frozen=True)
class EDFInfo:
    """The EDFs of every model with ≥ 2 results on one grid over x_range; relative: of Δ to each model's best."""

    lines: tuple[EDFLine, ...]
    relative: bool
    x_range: tuple[float, float]
    window: float | None  # relative only: the Δ window the area (Δ-AUC) is taken over


def edf_info(df: pd.DataFrame, models: Sequence[str] | None = None, *, relative: bool = False) -> EDFInfo | None:
    """Error EDF per model (or of Δ to each model's best) with 1,000-resample bootstrap bands (seed 0)."""
    gs = list(groups(df, models, min_n=2))
    if not gs:
        return None
    if relative:  # up to the largest Δ of a trial that trained, and at least twice the area window
        ok = np.concatenate([M.deltas(g["error"])[~capped(g)] for _, g in gs])
        lo, hi = 0.0, max(float(np.max(ok)) * 1.05 if len(ok) else 0.0, 2 * M.DELTA_WINDOW)
    else:
        lo, hi = float(M.results(df)["error"].min()) * 0.95, ERROR_CAP + 1
    grid = np.linspace(lo, hi, EDF_POINTS)
    lines = []
    for m, g in gs:
        e = g["error"].to_numpy(float)
        low, high = M.bootstrap_band(e, grid, relative=relative)
        lines.append(EDFLine(m, grid, M.edf(M.deltas(e) if relative else e, grid), low, high, len(e),
                             int(capped(g).sum())))
    return EDFInfo(tuple(lines), relative, (lo, hi), M.DELTA_WINDOW if relative else None)


@dataclass(frozen=True)
class BoxStats:
    """A box plot's numbers: quartiles, median, and the whisker ends (the furthest trials within WHIS · IQR)."""

    q1: float
    med: float
    q3: float
    whislo: float
    whishi: float


def box_stats(errors) -> BoxStats:
    """Box plot statistics of a sample, as matplotlib's `cbook.boxplot_stats` (whis = WHIS) makes them."""
    x = np.asarray(errors, float)
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    iqr = q3 - q1
    below, above = x[x <= q3 + WHIS * iqr], x[x >= q1 - WHIS * iqr]
    whishi = q3 if len(below) == 0 or np.max(below) < q3 else np.max(below)
    whislo = q1 if len(above) == 0 or np.min(above) > q1 else np.min(above)
    return BoxStats(q1, med, q3, whislo, whishi)


@dataclass(frozen=True)
class ModelErrors:
    """One model's results: errors, which sit at the cap, and their box."""

    model: str
    errors: np.ndarray
    capped: np.ndarray
    box: BoxStats


def distribution_info(df: pd.DataFrame, models: Sequence[str] | None = None) -> tuple[ModelErrors, ...] | None:
    """Each model's errors and their box (quartiles, median, whiskers)."""
    out = []
    for m, g in groups(df, models):
        e = g["error"].to_numpy(float)
        out.append(ModelErrors(m, e, capped(g), box_stats(e)))
    return tuple(out) or None


def median_line(x: np.ndarray, e: np.ndarray, per_value: bool) -> tuple[np.ndarray, np.ndarray]:
    """Median error per distinct x (grid designs), else per quantile bin of x (3–8 bins of about 6 trials)."""
    if per_value:
        med = pd.Series(e).groupby(x).median()
        return med.index.to_numpy(float), med.to_numpy(float)
    bins = pd.qcut(x, max(3, min(8, len(x) // 6)), duplicates="drop")
    med = pd.DataFrame({"x": x, "e": e}).groupby(bins, observed=True).median()
    return med["x"].to_numpy(float), med["e"].to_numpy(float)


def is_grid(g: pd.DataFrame, col: str) -> bool:
    """Whether col takes few values that repeat, or is the only one of lr / wd that varies (a 1-D sweep)."""
    other = {"lr": "weight_decay", "weight_decay": "lr"}.get(col)
    n_values = g[col].nunique()
    return n_values <= 12 and (n_values < len(g) or other not in g or g[other].nunique() <= 1)


@dataclass(frozen=True)
class HparamSeries:
    """One model's (one optimizer's) trials at log10 of the hyperparameter, and the median error line."""

    model: str
    optimizer: str | None  # None where the study ran one optimizer
    index: int  # which of the model's optimizers (its marker and line style)
    x: np.ndarray
    errors: np.ndarray
    capped: np.ndarray
    median_x: np.ndarray
    median_error: np.ndarray


@dataclass(frozen=True)
class HparamInfo:
    """Error against log10 of one hyperparameter, per model (and optimizer where several ran)."""

    column: str
    series: tuple[HparamSeries, ...]
    chance: float | None  # the chance error, where it is below the cap


def hparam_info(df: pd.DataFrame, models: Sequence[str] | None = None, column: str = "lr") -> HparamInfo | None:
    """Trials and median lines of error vs log10 `column`; None without 3 positive values of it."""
    fin = M.results(df).dropna(subset=[column]) if column in df else df.iloc[:0]
    if fin.empty or fin[column].nunique() < 3 or (fin[column] <= 0).any():
        return None
    opts = sorted(fin["optimizer"].dropna().unique()) if "optimizer" in fin else []
    series = []
    for m, g_m in groups(fin, models):
        # one line per optimizer where there are several (their lr ranges differ)
        for k, (opt, g) in enumerate(g_m.groupby("optimizer") if len(opts) > 1 else [(None, g_m)]):
            x, e = np.log10(g[column].to_numpy(float)), g["error"].to_numpy(float)
            mx, me = median_line(x, e, is_grid(g, column))
            series.append(HparamSeries(m, opt, k, x, e, capped(g), mx, me))
    chance = chance_error(fin["num_classes"].max()) if "num_classes" in fin else None
    return HparamInfo(column, tuple(series), chance if chance and chance < ERROR_CAP else None)


@dataclass(frozen=True)
class LrWdPanel:
    """One model's trials at (log10 lr, log10 wd) with their errors, and where its best trial lies."""

    model: str
    log_lr: np.ndarray
    log_wd: np.ndarray
    errors: np.ndarray
    capped: np.ndarray
    best: tuple[float, float]


@dataclass(frozen=True)
class LrWdInfo:
    """lr × wd per model, and the lower end of the shared colour scale (the smallest error, at least 0.1)."""

    panels: tuple[LrWdPanel, ...]
    error_min: float


def lr_wd_info(df: pd.DataFrame, models: Sequence[str] | None = None) -> LrWdInfo | None:
    """Each model's trials in the lr × wd plane; None without 3 values of each."""
    fin = M.results(df).dropna(subset=[c for c in ("lr", "weight_decay") if c in df])
    if not {"lr", "weight_decay"} <= set(fin) or min(fin["lr"].nunique(), fin["weight_decay"].nunique()) < 3:
        return None
    panels = []
    for m, g in groups(fin, models):
        best = g["error"].idxmin()
        panels.append(LrWdPanel(m, np.log10(g["lr"].to_numpy(float)), np.log10(g["weight_decay"].to_numpy(float)),
                                g["error"].to_numpy(float), capped(g),
                                (np.log10(g.at[best, "lr"]), np.log10(g.at[best, "weight_decay"]))))
    return LrWdInfo(tuple(panels), max(fin["error"].min(), 0.1))


@dataclass(frozen=True)
class EpochsSeries:
    """One model's trials by schedule length, its median error per length and that median's Δ to the longest's."""

    model: str
    epochs: np.ndarray
    errors: np.ndarray
    capped: np.ndarray
    median_epochs: np.ndarray
    median_error: np.ndarray
    median_delta: np.ndarray


@dataclass(frozen=True)
class EpochsInfo:
    """Error vs training length per model, and the lengths that ran."""

    series: tuple[EpochsSeries, ...]
    lengths: tuple[float, ...]


def epochs_info(df: pd.DataFrame, models: Sequence[str] | None = None) -> EpochsInfo | None:
    """Error and median error per schedule length; None with fewer than 2 lengths."""
    fin = M.results(df).dropna(subset=["epochs"]) if "epochs" in df else df.iloc[:0]
    if fin.empty or fin["epochs"].nunique() < 2:
        return None
    series = []
    for m, g in groups(fin, models):
        med = g.groupby("epochs")["error"].median()
        series.append(EpochsSeries(m, g["epochs"].to_numpy(float), g["error"].to_numpy(float), capped(g),
                                   med.index.to_numpy(), med.to_numpy(), med.to_numpy() - med.iloc[-1]))
    return EpochsInfo(tuple(series), tuple(sorted(fin["epochs"].unique())))


@dataclass(frozen=True)
class OptimizerInfo:
    """Best error per model (rows) and optimizer (columns), and best SGD − best AdamW per model where both ran."""

    models: tuple[str, ...]
    optimizers: tuple[str, ...]
    best: np.ndarray
    gap: np.ndarray | None


def optimizer_info(df: pd.DataFrame, models: Sequence[str] | None = None) -> OptimizerInfo | None:
    """Best error per model and optimizer; None with fewer than 2 optimizers."""
    fin = M.results(df).dropna(subset=["optimizer"]) if "optimizer" in df else df.iloc[:0]
    if fin.empty or fin["optimizer"].nunique() < 2:
        return None
    best = fin.groupby(["model", "optimizer"])["error"].min().unstack()
    ms = [m for m in (model_order(df["model"]) if models is None else models) if m in best.index]
    opts = sorted(best.columns)
    gap = (best.loc[ms, "sgd"] - best.loc[ms, "adamw"]).to_numpy(float) if {"sgd", "adamw"} <= set(opts) else None
    return OptimizerInfo(tuple(ms), tuple(opts), best.loc[ms, opts].to_numpy(float), gap)


@dataclass(frozen=True)
class ExpectedBestLine:
    """One model's expected best error after n random trials (n = 1 … its results), and its std."""

    model: str
    n: np.ndarray
    mean: np.ndarray
    std: np.ndarray


def expected_best_info(df: pd.DataFrame, models: Sequence[str] | None = None) -> tuple[ExpectedBestLine, ...] | None:
    """Expected minimum error of n draws with replacement (Dodge et al. 2019) for n up to each model's results."""
    lines = []
    for m, g in groups(df, models, min_n=2):
        n = np.arange(1, len(g) + 1)
        lines.append(ExpectedBestLine(m, n, *M.expected_best(g["error"], n)))
    return tuple(lines) or None


@dataclass(frozen=True)
class SearchLine:
    """One model's errors in the order its search ran them, and the best so far after each."""

    model: str
    errors: np.ndarray
    running_best: np.ndarray
    best: float


def search_info(df: pd.DataFrame, models: Sequence[str] | None = None) -> tuple[SearchLine, ...] | None:
    """Each model's errors in run order and its running best; None for non-adaptive designs."""
    if not M.is_adaptive(df):
        return None
    lines = []
    for m, g in groups(df, models):
        e = (g.sort_values("number") if "number" in g else g)["error"].to_numpy(float)
        lines.append(SearchLine(m, e, np.minimum.accumulate(e), e.min()))
    return tuple(lines) or None


@dataclass(frozen=True)
class TrainingCurve:
    """Validation error and train loss per epoch of a model's best or worst trial (loss NaN where not > 0)."""

    model: str
    which: str  # "best" or "worst"
    lr: float | None  # None where the table has no lr
    error: float
    epoch: np.ndarray
    val_error: np.ndarray
    train_loss: np.ndarray


def training_info(df: pd.DataFrame, models: Sequence[str] | None = None) -> tuple[TrainingCurve, ...] | None:
    """Per-epoch curves of each model's best and worst trial among those with a history."""
    gs = [(m, g[g["history"].map(len) > 0]) for m, g in groups(df, models)]
    curves = []
    for m, g in [(m, g) for m, g in gs if len(g)]:
        for which in ("best", "worst"):
            t = g.loc[g["error"].idxmin() if which == "best" else g["error"].idxmax()]
            h = pd.DataFrame(t["history"])
            loss = h["train_loss"].where(np.isfinite(h["train_loss"]) & (h["train_loss"] > 0))
            curves.append(TrainingCurve(m, which, t["lr"] if "lr" in t else None, t["error"], h["epoch"].to_numpy(),
                                        h["val_error"].to_numpy(), loss.to_numpy()))
    return tuple(curves) or None


@dataclass(frozen=True)
class ForestRow:
    """One row of the summary figure: a comparison (or a claim), the unit of its decided statistic, the difference
    with its 95% interval (NaN: no decision, `outcome` says why), the margin ±δ and the noise floor (None: unknown
    in this unit)."""

    label: str
    unit: str
    value: float
    low: float
    high: float
    margin: float
    floor: float | None
    outcome: str

    @property
    def decided(self) -> bool:
        """Whether the row has an effect to draw."""
        return self.value == self.value


@dataclass(frozen=True)
class ForestInfo:
    """The summary figure (a forest plot): one row per comparison or claim, and what a positive difference means."""

    rows: tuple[ForestRow, ...]
    sense: str  # the x axis: "model − baseline (> 0: the model is more robust)", or a claim's direction

    @property
    def units(self) -> list[str]:
        """The units of the rows, in order of first appearance (one panel each)."""
        return list(dict.fromkeys(r.unit for r in self.rows))


def _forest_row(c: Comparison, floors: dict[str, NoiseFloor] | None) -> ForestRow:
    """A comparison's row: its decided statistic, interval, margin, and the Δ-EDF area's noise floor."""
    label, d = f"{c.model} vs {c.baseline}", c.decision
    if d is None or not c.learned:
        why = "did not learn" if not c.learned else "adaptive" if c.design == "adaptive" else "unavailable"
        return ForestRow(label, UNIT["area"], math.nan, math.nan, math.nan, MARGINS["area"], None, why)
    floor = floor_for(c, floors) if d.statistic == "area" else None
    iv = d.difference
    return ForestRow(label, UNIT[d.statistic], iv.value, iv.low, iv.high, d.margin,
                     floor.floors.get("area") if floor else None, c.outcome)


def forest_info(cmp: Sequence[Comparison], floors: dict[str, NoiseFloor] | None = None) -> ForestInfo | None:
    """Every comparison's decided difference (model − baseline) with its 95% interval, margin and noise floor, in
    the comparisons' order (each model against each baseline of its size); None without a comparison."""
    rows = tuple(_forest_row(c, floors) for c in cmp)
    return ForestInfo(rows, "model − baseline (> 0: the model is more robust)") if rows else None


def claims_forest(scored: Sequence[ScoredClaim]) -> ForestInfo | None:
    """One row per scored claim: its tested difference (> 0: as the paper claims) with its 95% interval, margin and
    noise floor; None without a claim."""
    rows = []
    for row in scored:
        s = row.score
        low, high = s.interval or (math.nan, math.nan)
        value = s.effect if s.effect is not None and s.interval else math.nan
        rows.append(ForestRow(f"{s.claim.id} ({row.size})", s.unit or "error points", value, low, high,
                              s.margin if s.margin is not None else math.nan, s.floor, s.status))
    return ForestInfo(tuple(rows), "difference (> 0: as the paper claims)") if rows else None
