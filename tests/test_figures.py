"""Figures: drawn only where the design supports them, diverged trials shown at the cap, one colour per model."""

import numpy as np
import pandas as pd
import pytest
import seaborn as sns
from matplotlib import cbook
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from robustbench_vit.analysis import figure_data as FD
from robustbench_vit.analysis import metrics as M
from robustbench_vit.analysis.frame import load_results
from robustbench_vit.report import figures as F
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
    assert FD.hparam_info(frames["ep"], list(F.palette(frames["ep"]["model"]))) is None
    for df in frames.values():
        assert all(isinstance(f.figure, Figure) and f.caption for f in F.make_figures(df))


def test_capped_trials_are_drawn_not_dropped(frames):
    df = frames["lrwd"]
    colors = F.palette(df["model"])
    fig = F.fig_hparam(FD.hparam_info(df, list(colors), "lr"), colors)
    ax = fig.axes[0]
    # every result with an lr is a point (failed trials are none); those that did not train sit at 100
    pts = np.concatenate([c.get_offsets() for c in ax.collections])
    fin = df[df["status"].isin(["complete", "collapsed", "diverged"])].dropna(subset=["lr"])
    assert len(pts) == len(fin)
    assert (pts[:, 1] == 100).sum() == (fin["error"] == 100).sum() > 0
    # the EDF of vit_p plateaus at 1 − (share at the cap) below 100% error
    edf = F.fig_edf(FD.edf_info(df, list(colors)), colors)
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
    sweep = pd.DataFrame({"lr": [1e-3, 1e-2, 1e-1], "weight_decay": [0.05] * 3})  # lr grid at fixed wd
    random2d = pd.DataFrame({"lr": [1e-3, 1e-2, 1e-1], "weight_decay": [0.01, 0.2, 0.05]})
    seeds = pd.DataFrame({"lr": [1e-3, 1e-3, 1e-2, 1e-2], "weight_decay": [0.01, 0.2, 0.05, 0.1]})  # repeats
    assert FD.is_grid(sweep, "lr") and not FD.is_grid(random2d, "lr") and FD.is_grid(seeds, "lr")
    # per value: one median per distinct x; binned: 3 bins of the 18 sorted values → medians of thirds
    x, e = np.repeat([1.0, 2.0], 2), np.array([1.0, 3.0, 5.0, 9.0])
    assert [list(v) for v in FD.median_line(x, e, True)] == [[1, 2], [2, 7]]
    mx, me = FD.median_line(np.arange(18.0), np.arange(18.0), False)
    assert list(me) == [2.5, 8.5, 14.5]


# --- the figures' numbers (analysis/figure_data.py), tested without drawing ---

def _table(rows) -> pd.DataFrame:
    """A minimal trial table from (model, status, error) rows (failed trials have no error)."""
    return pd.DataFrame(rows, columns=["model", "status", "error"])


def test_edf_steps_at_each_error_and_counts_capped_trials_at_the_cap():
    df = _table([("vit_c_micro", "complete", 10.0), ("vit_c_micro", "complete", 20.0),
                 ("vit_c_micro", "complete", 35.0), ("vit_c_micro", "collapsed", 100.0),
                 ("vit_c_micro", "diverged", 100.0), ("vit_c_micro", "failed", np.nan)])
    info = FD.edf_info(df)
    (line,) = info.lines
    assert not info.relative and info.window is None and info.x_range == (9.5, 101.0)
    assert line.model == "vit_c_micro" and (line.n, line.capped) == (5, 2)  # failed left out; at chance counts
    x, y = line.x, line.y
    assert len(x) == FD.EDF_POINTS and x[0] == 9.5 and x[-1] == 101.0
    # F(e) = share of errors strictly below e: steps just after 10, 20, 35 and the cap (two trials there)
    expected = np.select([x <= 10, x <= 20, x <= 35, x <= 100], [0.0, 0.2, 0.4, 0.6], 1.0)
    assert np.array_equal(y, expected)
    assert np.all(line.band_low <= y) and np.all(y <= line.band_high)
    assert np.all((0 <= line.band_low) & (line.band_high <= 1))
    # Δ to the best: the range ends past the largest Δ of a trial that trained (or at twice the area window)
    rel = FD.edf_info(df, relative=True)
    (rl,) = rel.lines
    assert rel.relative and rel.window == M.DELTA_WINDOW and rel.x_range == (0.0, pytest.approx(25 * 1.05))
    assert rl.y[0] == 0 and rl.y[1] == 0.2 and rl.y[-1] == 0.6  # the trials at the cap (Δ = 90) are off-range
    assert np.all(rl.band_low <= rl.y) and np.all(rl.y <= rl.band_high)


def test_edf_is_the_metrics_edf_and_band_with_seed_zero(frames):
    df = frames["lrwd"]
    for relative in (False, True):
        info = FD.edf_info(df, relative=relative)
        assert [ln.model for ln in info.lines] == ["vit_p_micro", "vit_c_micro"]
        for ln in info.lines:
            e = df[(df["model"] == ln.model) & df["status"].isin(M.RESULTS)]["error"].to_numpy(float)
            assert np.array_equal(ln.y, M.edf(M.deltas(e) if relative else e, ln.x))
            low, high = M.bootstrap_band(e, ln.x, relative=relative, seed=0)
            assert np.array_equal(ln.band_low, low) and np.array_equal(ln.band_high, high)
            assert np.all(ln.band_low <= ln.y) and np.all(ln.y <= ln.band_high)
    assert FD.edf_info(df, ["vit_c_micro"]).lines[0].model == "vit_c_micro"  # only the models asked for


def test_degenerate_inputs_one_trial_and_all_diverged():
    one = _table([("vit_c_micro", "complete", 12.0), ("vit_c_micro", "failed", np.nan)])
    assert FD.edf_info(one) is None and FD.expected_best_info(one) is None  # they need two results
    (g,) = FD.distribution_info(one)
    assert list(g.errors) == [12.0] and g.box == FD.BoxStats(12.0, 12.0, 12.0, 12.0, 12.0)
    assert FD.distribution_info(_table([("vit_c_micro", "failed", np.nan)])) is None  # no result: no figure
    dead = _table([("vit_c_micro", "diverged", 100.0)] * 3)
    (line,) = FD.edf_info(dead).lines
    assert (line.n, line.capped) == (3, 3) and np.array_equal(line.y, (line.x > 100).astype(float))
    assert np.array_equal(line.band_low, line.y) and np.array_equal(line.band_high, line.y)  # no spread
    rel = FD.edf_info(dead, relative=True)
    assert rel.x_range == (0.0, 2 * M.DELTA_WINDOW)  # no trial trained: the default Δ range
    assert rel.lines[0].y[0] == 0 and np.all(rel.lines[0].y[1:] == 1)  # every Δ is 0
    (eb,) = FD.expected_best_info(dead)
    assert list(eb.n) == [1, 2, 3] and np.allclose(eb.mean, 100) and np.allclose(eb.std, 0)


def test_box_stats_are_matplotlibs(frames):
    rng = np.random.default_rng(1)
    samples = [rng.normal(10, 3, 25), np.r_[rng.normal(8, 1, 12), 100, 100], np.array([5.0, 100.0]),
               *(g.errors for g in FD.distribution_info(frames["lrwd"]))]
    for e in samples:
        (ref,) = cbook.boxplot_stats(e, whis=FD.WHIS)
        box = FD.box_stats(e)
        keys = ("q1", "med", "q3", "whislo", "whishi")
        assert [getattr(box, k) for k in keys] == [ref[k] for k in keys]


def test_hparam_and_lr_wd_values(frames):
    df = frames["lrwd"]
    info = FD.hparam_info(df, column="lr")
    fin = df[df["status"].isin(M.RESULTS)]
    assert info.column == "lr" and sum(len(s.x) for s in info.series) == len(fin)
    for s in info.series:
        assert s.optimizer is None and s.index == 0  # one optimizer: one line per model
        assert np.all(s.errors[s.capped] == 100) and np.all(np.diff(s.median_x) > 0)
    assert FD.hparam_info(df, column="nope") is None
    two = FD.hparam_info(frames["opt"], column="lr")  # two optimizers: one line (and style) per optimizer each
    assert sorted((s.model, s.optimizer, s.index) for s in two.series) == sorted(
        (m, o, k) for m in ("vit_p_micro", "vit_c_micro") for k, o in enumerate(("adamw", "sgd")))
    panels = FD.lr_wd_info(df).panels
    for p in panels:
        k = np.argmin(p.errors)
        assert p.best == (p.log_lr[k], p.log_wd[k])
    assert FD.lr_wd_info(frames["ep"]) is None  # one wd value


def test_optimizer_epochs_expected_best_values(frames):
    o = FD.optimizer_info(frames["opt"])
    assert o.optimizers == ("adamw", "sgd") and o.best.shape == (len(o.models), 2)
    assert np.array_equal(o.gap, o.best[:, 1] - o.best[:, 0])
    ep = FD.epochs_info(frames["ep"])
    assert ep.lengths == (2, 4, 8)
    for s in ep.series:
        assert list(s.median_epochs) == [2, 4, 8] and s.median_delta[-1] == 0
    # the expected best after BUDGET trials is the metrics table's number
    mm = M.model_metrics(frames["lrwd"]).set_index("model")
    for ln in FD.expected_best_info(frames["lrwd"]):
        assert np.all(np.diff(ln.mean) <= 1e-12) and ln.n[-1] == mm.at[ln.model, "trials"]
        assert ln.mean[M.BUDGET - 1] == pytest.approx(mm.at[ln.model, "expected_best"])
        assert ln.std[M.BUDGET - 1] == pytest.approx(mm.at[ln.model, "expected_best_std"])


def test_search_and_training_curves(frames):
    df = frames["lrwd"]
    assert FD.search_info(df) is None  # not an adaptive design
    adaptive = df.copy()
    adaptive.attrs["design"] = "tpe"
    for ln in FD.search_info(adaptive):
        assert np.all(np.diff(ln.running_best) <= 0) and ln.running_best[-1] == ln.best == ln.errors.min()
    info = FD.training_info(df)
    assert tuple(dict.fromkeys(t.model for t in info)) == ("vit_p_micro", "vit_c_micro") and len(info) == 4
    for t in info:
        g = df[(df["model"] == t.model) & df["status"].isin(M.RESULTS)]
        assert t.error == (g["error"].min() if t.which == "best" else g["error"].max())
        assert len(t.epoch) == len(t.val_error) == len(t.train_loss) >= 1 and t.lr is not None


def test_each_figure_draws_the_value_it_carries(frames):
    items = {f.id: f for f in F.make_figures(frames["lrwd"])}
    for fid in ("edf", "edf-delta"):
        info = items[fid].info
        assert isinstance(info, FD.EDFInfo) and info.relative == (fid == "edf-delta")
        drawn = {ln.get_label().split(" (")[0]: ln for ln in items[fid].figure.axes[0].get_lines()}
        for line in info.lines:
            assert np.array_equal(drawn[line.model].get_ydata(), line.y)
            assert np.array_equal(drawn[line.model].get_xdata(), line.x)
    assert all(isinstance(ln, FD.ExpectedBestLine) for ln in items["expected-best"].info)
    assert all(isinstance(g, FD.ModelErrors) for g in items["distribution"].info)
