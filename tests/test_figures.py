"""Figures: drawn only where the design supports them, diverged trials shown at the cap, one colour per model."""

import numpy as np
import pytest
import seaborn as sns
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from robustbench_vit.analysis import figures as F
from robustbench_vit.analysis.frame import load_results
from robustbench_vit.store import Results
from tests.study_fixtures import write_study


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """Three small paired studies: random lr×wd, an optimizer comparison, a schedule-length sweep."""
    url = f"sqlite:///{tmp_path_factory.mktemp('fig') / 'study.db'}"
    write_study(url, "lrwd", points=16, failed=1)
    write_study(url, "opt", points=4, optimizers=("adamw", "sgd"))
    write_study(url, "ep", points=1, seeds=2, epochs=(2, 4, 8), design="lr")
    return {s: load_results(s, Results.of(storage=url)) for s in ("lrwd", "opt", "ep")}


def test_palette_is_fixed_and_colour_blind_safe():
    cb = sns.color_palette("colorblind")
    p1 = F.palette(["mine", "vit_c_tiny", "vit_p_tiny"])
    p2 = F.palette(["vit_p_tiny", "mine", "vit_c_tiny", "vit_c_tiny"])
    assert p1 == p2 and list(p1) == ["vit_p_tiny", "vit_c_tiny", "mine"]
    assert [p1[m] for m in p1] == cb[:3]


def test_figures_follow_the_design(frames):
    ids = {s: [f.id for f in F.make_figures(df)] for s, df in frames.items()}
    common = {"edf-delta", "edf", "distribution", "expected-best", "curves"}
    assert set(ids["lrwd"]) == common | {"lr", "wd", "lr-wd"}
    assert set(ids["opt"]) >= common | {"optimizer"} and "epochs" not in ids["opt"]
    assert set(ids["ep"]) == common | {"epochs"}  # one lr value: no lr curve
    assert F.fig_hparam(frames["ep"], F.palette(frames["ep"]["model"])) is None
    for df in frames.values():
        assert all(isinstance(f.figure, Figure) and f.caption for f in F.make_figures(df))


def test_capped_trials_are_drawn_not_dropped(frames):
    df = frames["lrwd"]
    colors = F.palette(df["model"])
    fig = F.fig_hparam(df, colors, "lr")
    ax = fig.axes[0]
    # every result with an lr is a point (failed trials are none); those that did not train sit at 100
    pts = np.concatenate([c.get_offsets() for c in ax.collections])
    fin = df[df["status"].isin(["complete", "collapsed", "diverged"])].dropna(subset=["lr"])
    assert len(pts) == len(fin)
    assert (pts[:, 1] == 100).sum() == (fin["error"] == 100).sum() > 0
    # the EDF of vit_p plateaus at 1 − (share at the cap) below 100% error
    edf = F.fig_edf(df, colors)
    line = next(ln for ln in edf.axes[0].get_lines() if ln.get_label().startswith("vit_p_micro"))
    x, y = line.get_xdata(), line.get_ydata()
    p = df[(df["model"] == "vit_p_micro") & df["status"].isin(["complete", "collapsed", "diverged"])]
    assert y[np.searchsorted(x, 99.0)] == pytest.approx(1 - (p["error"] == 100).mean())


def _rgbs(fig: Figure) -> set[tuple]:
    """Every colour drawn in a figure (lines, markers, patches, bars, titles), as rounded RGB."""
    out = []
    for ax in fig.axes:
        out += [ln.get_color() for ln in ax.get_lines()] + [ax.title.get_color()]
        for c in ax.collections:
            out += list(c.get_facecolor()) + list(c.get_edgecolor())
        for p in ax.patches:
            out += [p.get_facecolor(), p.get_edgecolor()]
    return {tuple(np.round(to_rgb(c), 3)) for c in out if not isinstance(c, str) or c != "none"}


def test_one_colour_per_model_in_every_figure(frames):
    df = frames["lrwd"]
    colors = F.palette(df["model"])
    labelled = 0
    for item in F.make_figures(df):
        drawn = _rgbs(item.figure)
        # every model appears in its own colour in every figure
        for m, c in colors.items():
            assert tuple(np.round(c, 3)) in drawn, (item.id, m)
        # and a line labelled with a model, on any axes, has that model's colour
        for ax in item.figure.axes:
            for ln in ax.get_lines():
                model = next((m for m in colors if ln.get_label().startswith(m)), None)
                if model:
                    labelled += 1
                    assert to_rgb(ln.get_color()) == pytest.approx(colors[model]), (item.id, model)
    assert labelled >= 2 * len(colors)  # something was checked: at least the EDF lines of every model


def test_one_trial_still_draws(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    write_study(url, "one", models=("vit_c_micro",), points=1)
    items = F.make_figures(load_results("one", Results.of(storage=url)))
    assert [f.id for f in items] == ["distribution", "curves"]  # EDFs and budgets need two trials


def test_median_line_per_value_only_for_grid_sweeps():
    import pandas as pd

    sweep = pd.DataFrame({"lr": [1e-3, 1e-2, 1e-1], "weight_decay": [0.05] * 3})  # lr grid at fixed wd
    random2d = pd.DataFrame({"lr": [1e-3, 1e-2, 1e-1], "weight_decay": [0.01, 0.2, 0.05]})
    seeds = pd.DataFrame({"lr": [1e-3, 1e-3, 1e-2, 1e-2], "weight_decay": [0.01, 0.2, 0.05, 0.1]})  # repeats
    assert F._is_grid(sweep, "lr") and not F._is_grid(random2d, "lr") and F._is_grid(seeds, "lr")
    # per value: one median per distinct x; binned: 3 bins of the 18 sorted values → medians of thirds
    x, e = np.repeat([1.0, 2.0], 2), np.array([1.0, 3.0, 5.0, 9.0])
    assert [list(v) for v in F._median_line(x, e, True)] == [[1, 2], [2, 7]]
    mx, me = F._median_line(np.arange(18.0), np.arange(18.0), False)
    assert list(me) == [2.5, 8.5, 14.5]
