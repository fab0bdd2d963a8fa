"""Report figures (matplotlib + seaborn): one style, a colour-blind-safe palette, one colour per model everywhere.

Drawing only: what a figure shows is a typed value computed by `analysis/figure_data.py` (the EDFs and their
bands, boxes, medians, expected best errors, …); each `fig_*` function draws one such value with the model →
colour map and returns a Figure. `make_figures` computes every value the study's design supports and draws it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib import ticker  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402

from robustbench_vit.analysis import figure_data as FD  # noqa: E402
from robustbench_vit.analysis import metrics as M  # noqa: E402
from robustbench_vit.analysis.frame import ERROR_CAP, model_order  # noqa: E402

STYLE = {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 9,
         "xtick.labelsize": 9, "ytick.labelsize": 9, "axes.spines.top": False, "axes.spines.right": False,
         "svg.fonttype": "none", "pdf.fonttype": 42, "figure.dpi": 100}
CAPPED = dict(marker="x", s=28, linewidths=1.2)  # trials that did not train (at the cap) are drawn as crosses
WIDE, SQUARE = (9.0, 3.8), (6.4, 4.2)
OUTCOME_COLORS = {"more robust": "#1a7f37", "reproduced": "#1a7f37", "less robust": "#b42318",
                  "contradicted": "#b42318", "equivalent": "#1f4e8c"}  # the rest (undecided): dark grey
FOREST_NOTE = ("Each row: the decided difference with its 95% interval (dot and bar; green: more robust, red: less "
               "robust, blue: equivalent, grey: undecided), the equivalence margin ±δ (shaded band) and the noise "
               "floor (ticks: how far copies of one model differ; Δ-EDF area only, where known). Undecided rows "
               "cross the band's edge.")


@dataclass
class FigureItem:
    """One report figure: stable id (HTML anchor), title, caption (how to read it), Figure, the value it draws."""

    id: str
    title: str
    caption: str
    figure: Figure
    info: Any = None  # the typed value from analysis/figure_data.py (EDFInfo, …) that the figure shows


def palette(models) -> dict[str, tuple]:
    """A fixed model → colour map: seaborn's colour-blind palette in report order (baselines first)."""
    order = model_order(models)
    return dict(zip(order, sns.color_palette("colorblind", max(len(order), 3))))


def _new(ncols: int = 1, size=SQUARE, *, rows: int = 1, **kw) -> tuple[Figure, np.ndarray]:
    """A figure in the report style with `ncols` axes (`rows` of them: all axes, row by row)."""
    with sns.axes_style("whitegrid"), plt.rc_context(STYLE):
        fig = Figure(figsize=size, layout="constrained")  # not pyplot's: nothing to close, nothing retained
        axes = fig.subplots(rows, ncols, squeeze=False, **kw)
    return fig, axes.ravel()


def _plain(axis, ticks125: bool = False) -> None:
    """Plain numbers (2, 4, 8 / 0.5, 1, 2) instead of powers on a log axis; optionally ticks at 1, 2, 5 × 10ᵏ."""
    if ticks125:
        axis.set_major_locator(ticker.LogLocator(base=10, subs=(1, 2, 5)))
    axis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    axis.set_minor_formatter(ticker.NullFormatter())


def _legend(ax, **kw) -> None:
    """A legend without a frame."""
    ax.legend(frameon=False, **kw)


def fig_edf(info: FD.EDFInfo, colors: dict) -> Figure:
    """Error EDF per model (absolute, or Δ to each model's best) with 95% pointwise bootstrap bands."""
    fig, (ax,) = _new()
    if info.window is not None:
        ax.axvspan(0, info.window, color="0.92", zorder=0, label=f"area window (0–{info.window:g})")
    for ln in info.lines:
        c = colors[ln.model]
        ax.fill_between(ln.x, ln.band_low, ln.band_high, color=c, alpha=0.18, step="post", linewidth=0)
        ax.step(ln.x, ln.y, where="post", color=c, lw=2, label=f"{ln.model} (n={ln.n}, {ln.capped} at cap)")
    ax.set(xlim=info.x_range, ylim=(0, 1.02), ylabel="cumulative prob. F",
           xlabel="Δ error to the model's best (points)" if info.relative else "top-1 error (%)")
    _legend(ax, loc="lower right")
    return fig


def fig_distribution(info: tuple[FD.ModelErrors, ...], colors: dict) -> Figure:
    """Error distribution per model: a box over the trials, every trial a point (crosses at the cap)."""
    fig, (ax,) = _new(size=(6.4, 1.0 + 0.9 * len(info)))
    rng = np.random.default_rng(0)  # vertical jitter of the points, so that equal errors stay visible
    for i, g in enumerate(info):
        c, e, cap = colors[g.model], g.errors, g.capped
        b = g.box
        ax.bxp([dict(q1=b.q1, med=b.med, q3=b.q3, whislo=b.whislo, whishi=b.whishi)], positions=[i],
               orientation="horizontal", widths=0.55, showfliers=False, patch_artist=True,
               boxprops=dict(facecolor=(*c, 0.25), edgecolor=c, linestyle="solid"), medianprops=dict(color=c, lw=2),
               whiskerprops=dict(color=c), capprops=dict(color=c))
        y = i + rng.uniform(-0.18, 0.18, len(e))
        ax.scatter(e[~cap], y[~cap], s=16, color=c, alpha=0.8, edgecolors="none")
        ax.scatter(e[cap], y[cap], color=c, **CAPPED)
    ax.set_yticks(range(len(info)), [g.model for g in info])
    ax.set(xlabel="top-1 error (%)", ylim=(len(info) - 0.4, -0.6))  # first model on top
    return fig


def fig_hparam(info: FD.HparamInfo, colors: dict) -> Figure:
    """Error vs log10 of a hyperparameter per model: trials as points, the median as a line."""
    fig, (ax,) = _new()
    for s in info.series:  # one marker and line style per optimizer where several ran: solid, dashed, dotted
        c, x, e, cap = colors[s.model], s.x, s.errors, s.capped
        ax.scatter(x[~cap], e[~cap], s=18, color=c, alpha=0.6, edgecolors="none", marker="os^"[s.index % 3])
        ax.scatter(x[cap], e[cap], color=c, alpha=0.8, **CAPPED)
        ax.plot(s.median_x, s.median_error, color=c, lw=2, ls=("-", "--", ":")[s.index % 3],
                label=f"{s.model} · {s.optimizer}" if s.optimizer else s.model)
    if info.chance is not None:
        ax.axhline(info.chance, color="0.5", ls=":", lw=1, label=f"chance ({info.chance:g}%)")
    ax.set(xlabel=f"log10 {info.column}", ylabel="top-1 error (%)", ylim=(0, ERROR_CAP + 3))
    _legend(ax)
    return fig


def fig_lr_wd(info: FD.LrWdInfo, colors: dict) -> Figure:
    """lr × wd scatter per model coloured by error (log colour scale, shared; crosses at the cap)."""
    n = len(info.panels)
    fig, axes = _new(n, size=(3.3 * n + 1.2, 3.6), sharex=True, sharey=True)
    norm = LogNorm(vmin=info.error_min, vmax=ERROR_CAP)
    for ax, p in zip(axes, info.panels):
        c, x, y, cap = colors[p.model], p.log_lr, p.log_wd, p.capped
        sc = ax.scatter(x[~cap], y[~cap], c=p.errors[~cap], cmap="viridis", norm=norm, s=36,
                        edgecolors="0.3", linewidths=0.3)
        ax.scatter(x[cap], y[cap], color="0.2", **CAPPED)
        ax.scatter(*p.best, s=140, facecolors="none", edgecolors=c, linewidths=2)
        ax.set_title(p.model, color=c)
        ax.set(xlabel="log10 lr")
    axes[0].set_ylabel("log10 weight decay")
    cb = fig.colorbar(sc, ax=list(axes), label="top-1 error (%, log scale)")
    cb.set_ticks([t for t in (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100) if norm.vmin <= t <= norm.vmax])
    _plain(cb.ax.yaxis)
    return fig


def fig_epochs(info: FD.EpochsInfo, colors: dict) -> Figure:
    """Training length: error vs epochs, and Δ of the median error to the longest schedule, per model."""
    fig, (a1, a2) = _new(2, size=WIDE)
    for s in info.series:
        c, cap = colors[s.model], s.capped
        a1.scatter(s.epochs[~cap], s.errors[~cap], s=18, color=c, alpha=0.6, edgecolors="none")
        a1.scatter(s.epochs[cap], s.errors[cap], color=c, **CAPPED)
        a1.plot(s.median_epochs, s.median_error, color=c, lw=2, marker="o", label=s.model)
        a2.plot(s.median_epochs, s.median_delta, color=c, lw=2, marker="o", label=s.model)
    for ax in (a1, a2):
        ax.set_xscale("log", base=2)
        ax.set_xticks(info.lengths, [f"{v:g}" for v in info.lengths])
        ax.set_xlabel("epochs")
    a1.set_ylabel("top-1 error (%)")
    a2.set_ylabel("Δ median error to the longest (points)")
    a2.axhline(0, color="0.5", lw=1)
    _legend(a1)
    return fig


def fig_optimizer(info: FD.OptimizerInfo, colors: dict) -> Figure:
    """Best error per optimizer per model (bars), and the SGD − AdamW gap of the best errors."""
    models, opts = info.models, info.optimizers
    fig, (a1, a2) = _new(2, size=WIDE)
    width = 0.8 / len(opts)
    for j, opt in enumerate(opts):
        xs = np.arange(len(models)) + (j - (len(opts) - 1) / 2) * width
        vals = info.best[:, j]
        a1.bar(xs, vals, width * 0.95, color=[colors[m] for m in models], alpha=1.0 - 0.45 * j,
               edgecolor="0.2", hatch="//" if j else None, label=opt)
        for x, v in zip(xs, vals):
            a1.annotate(f"{v:.1f}", (x, v), ha="center", va="bottom", fontsize=8)
    a1.set_xticks(range(len(models)), models)
    a1.set_ylabel("best top-1 error (%)")
    _legend(a1, title="optimizer")
    if info.gap is not None:
        a2.bar(range(len(models)), info.gap, color=[colors[m] for m in models], edgecolor="0.2")
        for i, v in enumerate(info.gap):
            a2.annotate(f"{v:+.1f}", (i, v), ha="center", va="bottom" if v >= 0 else "top", fontsize=9)
        a2.axhline(0, color="0.4", lw=1)
        a2.set_xticks(range(len(models)), models)
        a2.set_ylabel("best SGD − best AdamW (points)")
    else:
        a2.set_axis_off()
    return fig


def fig_expected_best(info: tuple[FD.ExpectedBestLine, ...], colors: dict) -> Figure:
    """Expected best error after n random trials (Dodge et al. 2019) per model, ± one std."""
    fig, (ax,) = _new()
    for ln in info:
        c = colors[ln.model]
        ax.plot(ln.n, ln.mean, color=c, lw=2, label=ln.model)
        ax.fill_between(ln.n, ln.mean - ln.std, ln.mean + ln.std, color=c, alpha=0.18, linewidth=0)
    ax.set_xscale("log", base=2)
    _plain(ax.xaxis)
    ax.set(xlabel="budget n (random trials from this study)", ylabel="expected best top-1 error (%)")
    _legend(ax)
    return fig


def fig_search(info: tuple[FD.SearchLine, ...], colors: dict) -> Figure:
    """Adaptive designs: each model's best error so far against the trials its search has run."""
    fig, (ax,) = _new()
    for ln in info:
        c, k = colors[ln.model], np.arange(1, len(ln.errors) + 1)
        ax.plot(k, ln.errors, "o", color=c, alpha=0.35, ms=4)
        ax.step(k, ln.running_best, where="post", color=c, lw=2, label=f"{ln.model} (best {ln.best:.2f}%)")
    ax.set(xlabel="trials run by the search", ylabel="top-1 error (%)", ylim=(0, ERROR_CAP + 3))
    _legend(ax)
    return fig


def fig_curves(info: tuple[FD.TrainingCurve, ...], colors: dict) -> Figure:
    """Validation error and train loss per epoch of each model's best (solid) and worst (dashed) trial."""
    fig, (a1, a2) = _new(2, size=(WIDE[0], WIDE[1] + 0.25 * len({t.model for t in info})))
    for t in info:
        c, ls = colors[t.model], "-" if t.which == "best" else "--"
        label = (f"{t.model} {t.which} (lr {t.lr:.2g}, {t.error:.1f}%)" if t.lr is not None
                 else f"{t.model} {t.which}")
        mk = "o" if len(t.epoch) <= 2 else None  # a diverged trial may have one epoch: show it as a dot
        a1.plot(t.epoch, t.val_error, color=c, ls=ls, lw=1.8, marker=mk, label=label)
        a2.plot(t.epoch, t.train_loss, color=c, ls=ls, lw=1.8, marker=mk)
    a1.set(xlabel="epoch", ylabel="validation top-1 error (%)", ylim=(0, ERROR_CAP + 2))
    a2.set(xlabel="epoch", ylabel="train loss (log scale)", yscale="log")
    _plain(a2.yaxis, ticks125=True)
    fig.legend(*a1.get_legend_handles_labels(), loc="outside lower center", ncols=2, frameon=False, fontsize=8)
    return fig


def _forest_panel(ax, rows: list[FD.ForestRow]) -> None:
    """One unit's rows of the forest plot: margin bands, noise-floor ticks, effects with their intervals."""
    for i, r in enumerate(rows):
        if r.margin == r.margin:
            ax.add_patch(Rectangle((-r.margin, i - 0.4), 2 * r.margin, 0.8, color="0.86", lw=0, zorder=0))
        if r.floor is not None:
            ax.plot([-r.floor, r.floor], [i, i], "|", color="0.35", ms=12, mew=1.6, zorder=1)
        if r.decided:
            c = OUTCOME_COLORS.get(r.outcome, "0.3")
            ax.errorbar(r.value, i, xerr=[[r.value - r.low], [r.high - r.value]], fmt="o", color=c, ms=6, lw=2,
                        capsize=4, zorder=2)
        else:
            ax.annotate(f"no effect: {r.outcome}", (0, i), ha="center", va="center", fontsize=8, color="0.3")
    ax.axvline(0, color="0.25", lw=0.8, zorder=1)
    ax.set_yticks(range(len(rows)), [r.label for r in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.grid(axis="y", visible=False)


def fig_forest(info: FD.ForestInfo, colors: dict | None = None) -> Figure:
    """The summary figure: every comparison's (or claim's) effect with its 95% interval, the margin as a band and
    the noise floor as ticks; one panel per unit, the first row on top."""
    units = info.units
    per = [[r for r in info.rows if r.unit == u] for u in units]
    fig, axes = _new(1, size=(9.0, 0.75 + 0.62 * len(units) + 0.34 * len(info.rows)), rows=len(units),
                     gridspec_kw={"height_ratios": [len(p) for p in per]})
    for ax, unit, rows in zip(axes, units, per):
        _forest_panel(ax, rows)
        ax.set_xlabel(f"{unit}: {info.sense}")
    floor = [Line2D([], [], color="0.35", marker="|", ls="", ms=12, mew=1.6, label="noise floor")
             ] if any(r.floor is not None for r in info.rows) else []
    handles = [Patch(color="0.86", label="equivalence margin ±δ"), *floor,
               *(Line2D([], [], color=OUTCOME_COLORS.get(o, "0.3"), marker="o", label=o)
                 for o in dict.fromkeys(r.outcome for r in info.rows if r.decided))]
    fig.legend(handles=handles, loc="outside upper center", ncols=min(len(handles), 5), frameon=False, fontsize=8)
    return fig


def forest_figure(info: FD.ForestInfo | None, title: str = "At a glance") -> FigureItem | None:
    """The summary figure as a report item (None without rows)."""
    if info is None:
        return None
    with sns.axes_style("whitegrid"), plt.rc_context(STYLE):
        fig = fig_forest(info)
    return FigureItem("forest", title, FOREST_NOTE, fig, info)


Spec = tuple[str, str, str, Callable[[pd.DataFrame, list[str]], Any], Callable[[Any, dict], Figure]]
SPECS: list[Spec] = [  # (id, title, caption, compute the typed value (or None: not for this design), draw it)
    ("edf-delta", "Δerror EDF", "F(Δ) = fraction of trials whose error is less than Δ points above the model's "
     "best (the paper's Fig. 5 style): a steeper curve that reaches high values sooner is more robust. Shaded: "
     "95% pointwise bootstrap bands (1,000 resamples, the best re-taken in each). Trials that did not train "
     "(diverged or at chance) sit at 100% error, so a curve's plateau shows their share; failed trials are left "
     "out.", lambda d, m: FD.edf_info(d, m, relative=True), fig_edf),
    ("edf", "Error EDF", "F(e) = fraction of trials with error below e, with 95% pointwise bootstrap bands. "
     "Trials that did not train count at 100%.", FD.edf_info, fig_edf),
    ("distribution", "Error distribution", "A box (quartiles, median) over each model's trials; every trial is "
     "a point, crosses are trials that did not train (diverged or at chance), at the 100% cap.",
     FD.distribution_info, fig_distribution),
    ("lr", "Error vs learning rate", "Each trial a point (all seeds and other settings), crosses at the cap; the "
     "line is the median per lr (per lr bin for random designs), one line style per optimizer where several ran. "
     "Dotted grey: chance error.", FD.hparam_info, fig_hparam),
    ("wd", "Error vs weight decay", "As the lr figure, for weight decay.",
     lambda d, m: FD.hparam_info(d, m, "weight_decay"), fig_hparam),
    ("lr-wd", "lr × weight decay", "Every trial at its (lr, wd), coloured by error on a shared log scale; "
     "crosses are trials that did not train, the ring marks each model's best.", FD.lr_wd_info, fig_lr_wd),
    ("epochs", "Training length", "Error vs schedule length (points: trials; line: median), and the median's "
     "distance to that of the longest schedule.", FD.epochs_info, fig_epochs),
    ("optimizer", "Optimizer", "Best error per optimizer, and the gap best SGD − best AdamW per model "
     "(small gap = less dependent on the optimizer).", FD.optimizer_info, fig_optimizer),
    ("expected-best", "Expected best error vs budget", "Expected minimum error of n trials drawn at random (with "
     "replacement) from this study's trials (Dodge et al. 2019), ± one standard deviation.",
     FD.expected_best_info, fig_expected_best),
    ("search", "Search progress", "Adaptive (TPE) design: every trial in the order it ran (points) and the best "
     "error found so far (line). A search that reaches its best in fewer trials is cheaper to tune.",
     FD.search_info, fig_search),
    ("curves", "Training curves", "Validation error and train loss per epoch of each model's best (solid) and "
     "worst (dashed) trial.", FD.training_info, fig_curves),
]


def make_figures(df: pd.DataFrame) -> list[FigureItem]:
    """Every figure the study's design supports, in report order, with one model → colour map."""
    colors = palette(df["model"])
    items, random_sample_only = [], ("edf-delta", "edf", "expected-best")  # not for adaptive designs
    for fid, title, caption, compute, draw in SPECS:
        if M.is_adaptive(df) and fid in random_sample_only:
            continue
        info = compute(df, list(colors))
        if info is None:
            continue
        with sns.axes_style("whitegrid"), plt.rc_context(STYLE):
            fig = draw(info, colors)
        items.append(FigureItem(fid, title, caption, fig, info))
    return items
