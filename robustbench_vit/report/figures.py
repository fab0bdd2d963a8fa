"""Report figures (matplotlib + seaborn): one style, a colour-blind-safe palette, one colour per model everywhere.

Each `fig_*` function takes the trial table and the model→colour map and returns a Figure, or None when the
study's design cannot support it (e.g. an lr curve needs at least 3 lr values). `make_figures` runs them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib import ticker  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from robustbench_vit.analysis import metrics as M  # noqa: E402
from robustbench_vit.analysis.frame import DID_NOT_TRAIN, ERROR_CAP, chance_error, model_order  # noqa: E402

STYLE = {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 9,
         "xtick.labelsize": 9, "ytick.labelsize": 9, "axes.spines.top": False, "axes.spines.right": False,
         "svg.fonttype": "none", "pdf.fonttype": 42, "figure.dpi": 100}
CAPPED = dict(marker="x", s=28, linewidths=1.2)  # trials that did not train (at the cap) are drawn as crosses
WIDE, SQUARE = (9.0, 3.8), (6.4, 4.2)


@dataclass
class FigureItem:
    """One report figure: a stable id (HTML anchor), a title, a caption saying how to read it, the Figure."""

    id: str
    title: str
    caption: str
    figure: Figure


def palette(models) -> dict[str, tuple]:
    """A fixed model → colour map: seaborn's colour-blind palette in report order (baselines first)."""
    order = model_order(models)
    return dict(zip(order, sns.color_palette("colorblind", max(len(order), 3))))


def _new(ncols: int = 1, size=SQUARE, **kw) -> tuple[Figure, np.ndarray]:
    """A figure in the report style with `ncols` axes."""
    with sns.axes_style("whitegrid"), plt.rc_context(STYLE):
        fig = Figure(figsize=size, layout="constrained")  # not pyplot's: nothing to close, nothing retained
        axes = fig.subplots(1, ncols, squeeze=False, **kw)
    return fig, axes[0]


def _groups(df: pd.DataFrame, colors: dict, min_n: int = 1):
    """(model, its results, colour) for every model with at least `min_n` results (failed trials have none)."""
    fin = M.results(df)
    for m in colors:
        g = fin[fin["model"] == m]
        if len(g) >= min_n:
            yield m, g, colors[m]


def _capped(g: pd.DataFrame) -> pd.Series:
    """Mask of trials that sit at the cap (did not train: diverged or at chance)."""
    return g["status"].isin(DID_NOT_TRAIN)


def _plain(axis, ticks125: bool = False) -> None:
    """Plain numbers (2, 4, 8 / 0.5, 1, 2) instead of powers on a log axis; optionally ticks at 1, 2, 5 × 10ᵏ."""
    if ticks125:
        axis.set_major_locator(ticker.LogLocator(base=10, subs=(1, 2, 5)))
    axis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    axis.set_minor_formatter(ticker.NullFormatter())


def _legend(ax, **kw) -> None:
    """A legend without a frame."""
    ax.legend(frameon=False, **kw)


def fig_edf(df: pd.DataFrame, colors: dict, relative: bool = False) -> Figure | None:
    """Error EDF per model (absolute, or Δ to each model's best) with 95% pointwise bootstrap bands."""
    groups = list(_groups(df, colors, min_n=2))
    if not groups:
        return None
    fig, (ax,) = _new()
    if relative:
        ok = np.concatenate([M.deltas(g["error"])[~_capped(g).to_numpy()] for _, g, _ in groups])
        hi = max(float(np.max(ok)) * 1.05 if len(ok) else 0.0, 2 * M.DELTA_WINDOW)
        lo = 0.0
        ax.axvspan(0, M.DELTA_WINDOW, color="0.92", zorder=0, label=f"area window (0–{M.DELTA_WINDOW:g})")
    else:
        lo, hi = float(M.results(df)["error"].min()) * 0.95, ERROR_CAP + 1
    grid = np.linspace(lo, hi, 400)
    for m, g, c in groups:
        e = g["error"].to_numpy(float)
        x = M.deltas(e) if relative else e
        band = M.bootstrap_band(e, grid, relative=relative)
        ax.fill_between(grid, *band, color=c, alpha=0.18, step="post", linewidth=0)
        ax.step(grid, M.edf(x, grid), where="post", color=c, lw=2,
                label=f"{m} (n={len(e)}, {int(_capped(g).sum())} at cap)")
    ax.set(xlim=(lo, hi), ylim=(0, 1.02), ylabel="cumulative prob. F",
           xlabel="Δ error to the model's best (points)" if relative else "top-1 error (%)")
    _legend(ax, loc="lower right")
    return fig


def fig_distribution(df: pd.DataFrame, colors: dict) -> Figure | None:
    """Error distribution per model: a box over the trials, every trial a point (crosses at the cap)."""
    groups = list(_groups(df, colors))
    if not groups:
        return None
    fig, (ax,) = _new(size=(6.4, 1.0 + 0.9 * len(groups)))
    rng = np.random.default_rng(0)
    for i, (m, g, c) in enumerate(groups):
        e = g["error"].to_numpy(float)
        ax.boxplot(e, positions=[i], orientation="horizontal", widths=0.55, showfliers=False, patch_artist=True,
                   boxprops=dict(facecolor=(*c, 0.25), edgecolor=c), medianprops=dict(color=c, lw=2),
                   whiskerprops=dict(color=c), capprops=dict(color=c))
        y = i + rng.uniform(-0.18, 0.18, len(e))
        cap = _capped(g).to_numpy()
        ax.scatter(e[~cap], y[~cap], s=16, color=c, alpha=0.8, edgecolors="none")
        ax.scatter(e[cap], y[cap], color=c, **CAPPED)
    ax.set_yticks(range(len(groups)), [m for m, _, _ in groups])
    ax.set(xlabel="top-1 error (%)", ylim=(len(groups) - 0.4, -0.6))  # first model on top
    return fig


def _median_line(x: np.ndarray, e: np.ndarray, per_value: bool) -> tuple[np.ndarray, np.ndarray]:
    """Median error per distinct x (grid designs), else per quantile bin of x (3–8 bins of about 6 trials)."""
    if per_value:
        med = pd.Series(e).groupby(x).median()
        return med.index.to_numpy(float), med.to_numpy(float)
    bins = pd.qcut(x, max(3, min(8, len(x) // 6)), duplicates="drop")
    med = pd.DataFrame({"x": x, "e": e}).groupby(bins, observed=True).median()
    return med["x"].to_numpy(float), med["e"].to_numpy(float)


def _is_grid(g: pd.DataFrame, col: str) -> bool:
    """Whether col takes few values that repeat, or is the only one of lr / wd that varies (a 1-D sweep)."""
    other = {"lr": "weight_decay", "weight_decay": "lr"}.get(col)
    n_values = g[col].nunique()
    return n_values <= 12 and (n_values < len(g) or other not in g or g[other].nunique() <= 1)


def fig_hparam(df: pd.DataFrame, colors: dict, col: str = "lr") -> Figure | None:
    """Error vs log10 of a hyperparameter per model: trials as points, the median as a line."""
    fin = M.results(df).dropna(subset=[col]) if col in df else df.iloc[:0]
    if fin.empty or fin[col].nunique() < 3 or (fin[col] <= 0).any():
        return None
    fig, (ax,) = _new()
    opts = sorted(fin["optimizer"].dropna().unique()) if "optimizer" in fin else []
    for m, g_m, c in _groups(fin, colors):
        # one line per optimizer where there are several (their lr ranges differ): solid, dashed, dotted
        for k, (opt, g) in enumerate(g_m.groupby("optimizer") if len(opts) > 1 else [(None, g_m)]):
            x, e, cap = np.log10(g[col].to_numpy(float)), g["error"].to_numpy(float), _capped(g).to_numpy()
            ax.scatter(x[~cap], e[~cap], s=18, color=c, alpha=0.6, edgecolors="none", marker="os^"[k % 3])
            ax.scatter(x[cap], e[cap], color=c, alpha=0.8, **CAPPED)
            mx, me = _median_line(x, e, _is_grid(g, col))
            ax.plot(mx, me, color=c, lw=2, ls=("-", "--", ":")[k % 3], label=f"{m} · {opt}" if opt else m)
    chance = chance_error(fin["num_classes"].max()) if "num_classes" in fin else None
    if chance and chance < ERROR_CAP:
        ax.axhline(chance, color="0.5", ls=":", lw=1, label=f"chance ({chance:g}%)")
    ax.set(xlabel=f"log10 {col}", ylabel="top-1 error (%)", ylim=(0, ERROR_CAP + 3))
    _legend(ax)
    return fig


def fig_lr_wd(df: pd.DataFrame, colors: dict) -> Figure | None:
    """lr × wd scatter per model coloured by error (log colour scale, shared; crosses at the cap)."""
    fin = M.results(df).dropna(subset=[c for c in ("lr", "weight_decay") if c in df])
    if not {"lr", "weight_decay"} <= set(fin) or min(fin["lr"].nunique(), fin["weight_decay"].nunique()) < 3:
        return None
    groups = list(_groups(fin, colors))
    fig, axes = _new(len(groups), size=(3.3 * len(groups) + 1.2, 3.6), sharex=True, sharey=True)
    norm = LogNorm(vmin=max(fin["error"].min(), 0.1), vmax=ERROR_CAP)
    for ax, (m, g, c) in zip(axes, groups):
        x, y = np.log10(g["lr"].to_numpy(float)), np.log10(g["weight_decay"].to_numpy(float))
        cap = _capped(g).to_numpy()
        sc = ax.scatter(x[~cap], y[~cap], c=g["error"].to_numpy(float)[~cap], cmap="viridis", norm=norm, s=36,
                        edgecolors="0.3", linewidths=0.3)
        ax.scatter(x[cap], y[cap], color="0.2", **CAPPED)
        best = g["error"].idxmin()
        ax.scatter(np.log10(g.at[best, "lr"]), np.log10(g.at[best, "weight_decay"]), s=140, facecolors="none",
                   edgecolors=c, linewidths=2)
        ax.set_title(m, color=c)
        ax.set(xlabel="log10 lr")
    axes[0].set_ylabel("log10 weight decay")
    cb = fig.colorbar(sc, ax=list(axes), label="top-1 error (%, log scale)")
    cb.set_ticks([t for t in (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100) if norm.vmin <= t <= norm.vmax])
    _plain(cb.ax.yaxis)
    return fig


def fig_epochs(df: pd.DataFrame, colors: dict) -> Figure | None:
    """Training length: error vs epochs, and Δ of the median error to the longest schedule, per model."""
    fin = M.results(df).dropna(subset=["epochs"]) if "epochs" in df else df.iloc[:0]
    if fin.empty or fin["epochs"].nunique() < 2:
        return None
    fig, (a1, a2) = _new(2, size=WIDE)
    for m, g, c in _groups(fin, colors):
        ep, e, cap = g["epochs"].to_numpy(float), g["error"].to_numpy(float), _capped(g).to_numpy()
        a1.scatter(ep[~cap], e[~cap], s=18, color=c, alpha=0.6, edgecolors="none")
        a1.scatter(ep[cap], e[cap], color=c, **CAPPED)
        med = g.groupby("epochs")["error"].median()
        a1.plot(med.index, med.to_numpy(), color=c, lw=2, marker="o", label=m)
        a2.plot(med.index, med.to_numpy() - med.iloc[-1], color=c, lw=2, marker="o", label=m)
    for ax in (a1, a2):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(fin["epochs"].unique()), [f"{v:g}" for v in sorted(fin["epochs"].unique())])
        ax.set_xlabel("epochs")
    a1.set_ylabel("top-1 error (%)")
    a2.set_ylabel("Δ median error to the longest (points)")
    a2.axhline(0, color="0.5", lw=1)
    _legend(a1)
    return fig


def fig_optimizer(df: pd.DataFrame, colors: dict) -> Figure | None:
    """Best error per optimizer per model (bars), and the SGD − AdamW gap of the best errors."""
    fin = M.results(df).dropna(subset=["optimizer"]) if "optimizer" in df else df.iloc[:0]
    if fin.empty or fin["optimizer"].nunique() < 2:
        return None
    best = fin.groupby(["model", "optimizer"])["error"].min().unstack()
    models = [m for m in colors if m in best.index]
    opts = sorted(best.columns)
    fig, (a1, a2) = _new(2, size=WIDE)
    width = 0.8 / len(opts)
    for j, opt in enumerate(opts):
        xs = np.arange(len(models)) + (j - (len(opts) - 1) / 2) * width
        vals = best.loc[models, opt].to_numpy(float)
        a1.bar(xs, vals, width * 0.95, color=[colors[m] for m in models], alpha=1.0 - 0.45 * j,
               edgecolor="0.2", hatch="//" if j else None, label=opt)
        for x, v in zip(xs, vals):
            a1.annotate(f"{v:.1f}", (x, v), ha="center", va="bottom", fontsize=8)
    a1.set_xticks(range(len(models)), models)
    a1.set_ylabel("best top-1 error (%)")
    _legend(a1, title="optimizer")
    if {"sgd", "adamw"} <= set(opts):
        gap = (best.loc[models, "sgd"] - best.loc[models, "adamw"]).to_numpy(float)
        a2.bar(range(len(models)), gap, color=[colors[m] for m in models], edgecolor="0.2")
        for i, v in enumerate(gap):
            a2.annotate(f"{v:+.1f}", (i, v), ha="center", va="bottom" if v >= 0 else "top", fontsize=9)
        a2.axhline(0, color="0.4", lw=1)
        a2.set_xticks(range(len(models)), models)
        a2.set_ylabel("best SGD − best AdamW (points)")
    else:
        a2.set_axis_off()
    return fig


def fig_expected_best(df: pd.DataFrame, colors: dict) -> Figure | None:
    """Expected best error after n random trials (Dodge et al. 2019) per model, ± one std."""
    groups = list(_groups(df, colors, min_n=2))
    if not groups:
        return None
    fig, (ax,) = _new()
    for m, g, c in groups:
        n = np.arange(1, len(g) + 1)
        mean, std = M.expected_best(g["error"], n)
        ax.plot(n, mean, color=c, lw=2, label=m)
        ax.fill_between(n, mean - std, mean + std, color=c, alpha=0.18, linewidth=0)
    ax.set_xscale("log", base=2)
    _plain(ax.xaxis)
    ax.set(xlabel="budget n (random trials from this study)", ylabel="expected best top-1 error (%)")
    _legend(ax)
    return fig


def fig_search(df: pd.DataFrame, colors: dict) -> Figure | None:
    """Adaptive designs: each model's best error so far against the trials its search has run."""
    groups = list(_groups(df, colors))
    if not groups or not M.is_adaptive(df):
        return None
    fig, (ax,) = _new()
    for m, g, c in groups:
        e = (g.sort_values("number") if "number" in g else g)["error"].to_numpy(float)
        ax.plot(np.arange(1, len(e) + 1), e, "o", color=c, alpha=0.35, ms=4)
        ax.step(np.arange(1, len(e) + 1), np.minimum.accumulate(e), where="post", color=c, lw=2,
                label=f"{m} (best {e.min():.2f}%)")
    ax.set(xlabel="trials run by the search", ylabel="top-1 error (%)", ylim=(0, ERROR_CAP + 3))
    _legend(ax)
    return fig


def fig_curves(df: pd.DataFrame, colors: dict) -> Figure | None:
    """Validation error and train loss per epoch of each model's best (solid) and worst (dashed) trial."""
    groups = [(m, g[g["history"].map(len) > 0], c) for m, g, c in _groups(df, colors)]
    groups = [(m, g, c) for m, g, c in groups if len(g)]
    if not groups:
        return None
    fig, (a1, a2) = _new(2, size=(WIDE[0], WIDE[1] + 0.25 * len(groups)))
    for m, g, c in groups:
        for which, ls in (("best", "-"), ("worst", "--")):
            t = g.loc[g["error"].idxmin() if which == "best" else g["error"].idxmax()]
            h = pd.DataFrame(t["history"])
            label = f"{m} {which} (lr {t['lr']:.2g}, {t['error']:.1f}%)" if "lr" in t else f"{m} {which}"
            mk = "o" if len(h) <= 2 else None  # a diverged trial may have one epoch: show it as a dot
            a1.plot(h["epoch"], h["val_error"], color=c, ls=ls, lw=1.8, marker=mk, label=label)
            loss = h["train_loss"].where(np.isfinite(h["train_loss"]) & (h["train_loss"] > 0))
            a2.plot(h["epoch"], loss, color=c, ls=ls, lw=1.8, marker=mk)
    a1.set(xlabel="epoch", ylabel="validation top-1 error (%)", ylim=(0, ERROR_CAP + 2))
    a2.set(xlabel="epoch", ylabel="train loss (log scale)", yscale="log")
    _plain(a2.yaxis, ticks125=True)
    fig.legend(*a1.get_legend_handles_labels(), loc="outside lower center", ncols=2, frameon=False, fontsize=8)
    return fig


SPECS: list[tuple[str, str, str, Callable]] = [
    ("edf-delta", "Δerror EDF", "F(Δ) = fraction of trials whose error is less than Δ points above the model's "
     "best (the paper's Fig. 5 style): a steeper curve that reaches high values sooner is more robust. Shaded: "
     "95% pointwise bootstrap bands (1,000 resamples, the best re-taken in each). Trials that did not train "
     "(diverged or at chance) sit at 100% error, so a curve's plateau shows their share; failed trials are left "
     "out.", lambda d, c: fig_edf(d, c, relative=True)),
    ("edf", "Error EDF", "F(e) = fraction of trials with error below e, with 95% pointwise bootstrap bands. "
     "Trials that did not train count at 100%.", fig_edf),
    ("distribution", "Error distribution", "A box (quartiles, median) over each model's trials; every trial is "
     "a point, crosses are trials that did not train (diverged or at chance), at the 100% cap.", fig_distribution),
    ("lr", "Error vs learning rate", "Each trial a point (all seeds and other settings), crosses at the cap; the "
     "line is the median per lr (per lr bin for random designs), one line style per optimizer where several ran. "
     "Dotted grey: chance error.", fig_hparam),
    ("wd", "Error vs weight decay", "As the lr figure, for weight decay.",
     lambda d, c: fig_hparam(d, c, "weight_decay")),
    ("lr-wd", "lr × weight decay", "Every trial at its (lr, wd), coloured by error on a shared log scale; "
     "crosses are trials that did not train, the ring marks each model's best.", fig_lr_wd),
    ("epochs", "Training length", "Error vs schedule length (points: trials; line: median), and the median's "
     "distance to that of the longest schedule.", fig_epochs),
    ("optimizer", "Optimizer", "Best error per optimizer, and the gap best SGD − best AdamW per model "
     "(small gap = less dependent on the optimizer).", fig_optimizer),
    ("expected-best", "Expected best error vs budget", "Expected minimum error of n trials drawn at random (with "
     "replacement) from this study's trials (Dodge et al. 2019), ± one standard deviation.", fig_expected_best),
    ("search", "Search progress", "Adaptive (TPE) design: every trial in the order it ran (points) and the best "
     "error found so far (line). A search that reaches its best in fewer trials is cheaper to tune.", fig_search),
    ("curves", "Training curves", "Validation error and train loss per epoch of each model's best (solid) and "
     "worst (dashed) trial.", fig_curves),
]


def make_figures(df: pd.DataFrame) -> list[FigureItem]:
    """Every figure the study's design supports, in report order, with one model → colour map."""
    colors = palette(df["model"])
    items, random_sample_only = [], ("edf-delta", "edf", "expected-best")  # not for adaptive designs
    for fid, title, caption, fn in SPECS:
        if M.is_adaptive(df) and fid in random_sample_only:
            continue
        with sns.axes_style("whitegrid"), plt.rc_context(STYLE):
            fig = fn(df, colors)
        if fig is not None:
            items.append(FigureItem(fid, title, caption, fig))
    return items
