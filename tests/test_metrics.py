"""Every metric against a small example computed by hand (the hand computation is in the comments)."""

import math

import numpy as np
import pandas as pd
import pytest

from robustbench_vit.analysis import metrics as M
from robustbench_vit.analysis.comparison import comparisons
from robustbench_vit.analysis.frame import chance_error, collapsed


def test_edf_is_strictly_below():
    # F(x) = #{e < x}/4 for e = 1, 2, 2, 4: F(0)=0, F(1)=0 (strict), F(2)=1/4, F(3)=3/4, F(4)=3/4, F(5)=1
    assert M.edf([1, 2, 2, 4], [0, 1, 2, 3, 4, 5]).tolist() == [0, 0, 0.25, 0.75, 0.75, 1]


def test_delta_auc_and_within():
    # errors 3, 5, 100 (a diverged trial at the cap) → Δ = 0, 2, 97.
    # D = 10: F(Δ) = 1/3 on (0, 2], 2/3 on (2, 10] → ∫ = 2·1/3 + 8·2/3 = 6 → 6/10 = 0.6
    # closed form: mean(max(0, 1 − Δ/10)) = (1 + 0.8 + 0)/3 = 0.6
    assert M.deltas([3, 5, 100]).tolist() == [0, 2, 97]
    assert M.delta_auc([3, 5, 100], window=10) == pytest.approx(0.6)
    # D = 4: (1 + 0.5 + 0)/3 = 0.5
    assert M.delta_auc([3, 5, 100], window=4) == pytest.approx(0.5)
    # within 1 point of the best: only the best → 1/3; within 2: 3 and 5 → 2/3; within 100: all
    assert M.fraction_within([3, 5, 100], 1) == pytest.approx(1 / 3)
    assert M.fraction_within([3, 5, 100], 2) == pytest.approx(2 / 3)
    assert M.fraction_within([3, 5, 100], 100) == 1.0


def test_expected_best_dodge():
    # e = 1, 2, 3 (N = 3). n = 1: the mean, 2; std = √(mean(e²) − 4) = √(14/3 − 4) = √(2/3)
    # n = 2: P(min=1) = 1 − (2/3)² = 5/9, P(min=2) = (2/3)² − (1/3)² = 3/9, P(min=3) = (1/3)² = 1/9
    #   E = (5 + 6 + 3)/9 = 14/9; E[min²] = (5 + 12 + 9)/9 = 26/9; var = 26/9 − 196/81 = 38/81
    mean, std = M.expected_best([3, 1, 2], [1, 2])
    assert mean.tolist() == pytest.approx([2, 14 / 9])
    assert std.tolist() == pytest.approx([math.sqrt(2 / 3), math.sqrt(38) / 9])
    # n → ∞: the minimum, with no spread
    mean, std = M.expected_best([3, 1, 2], 500)
    assert mean[0] == pytest.approx(1) and std[0] == pytest.approx(0, abs=1e-6)


def test_lr_sensitivity_wortsman():
    # lr 1e-3 (errors 10, 20), 1e-2 (30), 1e-1 (100 → min(100, 90) = 90), error at init 90
    # per-lr means 15, 30, 90 → mean 45, best 15 → 30
    lr, err = [1e-3, 1e-3, 1e-2, 1e-1], [10, 20, 30, 100]
    assert M.lr_sensitivity(lr, err, 90.0) == pytest.approx(30)
    # fewer than 3 lr values: undefined
    assert math.isnan(M.lr_sensitivity([1e-3, 1e-2], [10, 20], 90.0))
    # chance for 10 classes is 90 %; unknown class count → the cap
    assert chance_error(10) == pytest.approx(90) and chance_error(None) == 100
    # collapsed: within 5 points of chance (85 % for 10 classes, 94 % for 100)
    assert collapsed(85.0, 10) and collapsed(89.7, 10) and not collapsed(84.9, 10) and collapsed(94.0, 100)


def test_good_range_bootstrap():
    # values v = 0..7 with error = v, subsamples of int(8·0.25) = 2 draws with replacement: the kept value is
    # the min of 2 uniform draws, P(min ≤ m) = 1 − ((7 − m)/8)²: 0.234 (m=0), 0.4375 (1), 0.609 (2), 0.9375 (5),
    # 0.984 (6) → 2.5th percentile 0, median 2, 97.5th 6 (each far from a boundary for 2,500 resamples)
    v = np.arange(8.0)
    assert M.good_range(v, v, min_k=2) == (0.0, 2.0, 6.0)
    # by default a subsample needs 4 trials (n >= 16): fewer make the range close to a random draw → NaN
    assert all(math.isnan(x) for x in M.good_range(v, v))
    # 16 values, subsamples of 4: P(min ≤ m) = 1 − ((15 − m)/16)⁴ → 0.228 (m=0), 0.777 (4), 0.963 (8), 0.980 (9)
    # → 2.5th percentile 0, 97.5th 9 (0.963 < 0.975 < 0.980; seeded resamples)
    w = np.arange(16.0)
    lo, _, hi = M.good_range(w, w)
    assert (lo, hi) == (0.0, 9.0)


def test_dominance():
    # Δa = 0, 1, 2, 3 and Δb = 0, 5, 6, 7: F_a ≥ F_b everywhere on [0, 10], strictly on (0, 7] → a lies above
    assert M.dominance([10, 11, 12, 13.0], [20, 25, 26, 27.0]) == "a"
    assert M.dominance([20, 25, 26, 27.0], [10, 11, 12, 13.0]) == "b"
    # Δa = 0, 4 vs Δb = 0, 1, 9, 9: F_a − F_b = 1/2 − 1/4 on (0, 1], 0 on (1, 4], 1 − 1/2 on (4, 9] → a above
    assert M.dominance([0, 4.0], [0, 1, 9, 9.0]) == "a"
    # Δa = 0, 6 vs Δb = 0, 3, 3, 20: (3, 6] F_a = 1/2 < 3/4, (6, 10] F_a = 1 > 3/4 → crossing
    assert M.dominance([0, 6.0], [0, 3, 3, 20.0]) == "crossing"
    assert M.dominance([1, 2.0], [5, 6.0]) == "equal"  # the same Δ = 0, 1


def test_search_progress():
    # running best 9, 5, 5, 2.5, 2.5 → within 1 point of the best (2) from the 4th trial on
    assert M.search_progress([9, 5, 7, 2.5, 2]) == 4 and M.search_progress([1.0]) == 1


def test_bootstrap_band_contains_edf():
    e = np.array([1, 2, 3, 4, 5, 6, 7, 8.0])
    grid = np.linspace(0, 9, 19)
    lo, hi = M.bootstrap_band(e, grid)
    f = M.edf(e, grid)
    assert (lo <= f).all() and (f <= hi).all() and (hi - lo).max() > 0.2
    # one repeated value: every resample is the same sample → a band of zero width
    lo, hi = M.bootstrap_band(np.full(5, 3.0), grid, relative=True)
    assert (lo == hi).all() and (lo == M.edf(np.zeros(5), grid)).all()


def _frame():
    """Two models on the same 4 points (point 3 diverged for vit_p), one failed vit_p trial, one running."""
    rows = []
    for p, (ep, ec, opt) in enumerate([(3, 2, "adamw"), (5, 3, "adamw"), (8, 4, "sgd"), (100, 9, "sgd")]):
        rows.append(dict(model="vit_p_x", stem="patchify", point=p, seed=0, lr=10.0 ** -(p + 1), optimizer=opt,
                         status="diverged" if ep == 100 else "complete", error=ep, num_classes=10))
        rows.append(dict(model="vit_c_x", stem="conv", point=p, seed=0, lr=10.0 ** -(p + 1), optimizer=opt,
                         status="complete", error=ec, num_classes=10))
    rows.append(dict(model="vit_p_x", stem="patchify", point=4, seed=0, lr=math.nan, optimizer=None,
                     status="failed", error=100.0, num_classes=math.nan))
    rows.append(dict(model="vit_p_x", stem="patchify", point=5, seed=0, lr=1e-3, optimizer="adamw",
                     status="running", error=math.nan, num_classes=10))
    return pd.DataFrame(rows)


def test_model_metrics_by_hand():
    m = M.model_metrics(_frame()).set_index("model")
    assert list(m.index) == ["vit_p_x", "vit_c_x"]  # patchify baseline first
    p, c = m.loc["vit_p_x"], m.loc["vit_c_x"]
    # vit_p: results 3, 5, 8, 100 (diverged) → 4; the failed trial is no result, the running one not finished
    assert (p["trials"], p["diverged"], p["failed"], p["running"]) == (4, 1, 1, 1)
    assert p["best"] == 3 and p["median"] == 6.5 and p["mean"] == pytest.approx(116 / 4)
    assert p["divergence_rate"] == pytest.approx(1 / 4) and p["did_not_train_rate"] == pytest.approx(1 / 4)
    # Wilson 95% interval of 1/4 (z = 1.96): centre (0.25 + 0.480)/1.960 = 0.3725, half 0.3301 → [0.0456, 0.6994]
    assert (p["did_not_train_low"], p["did_not_train_high"]) == pytest.approx((0.0456, 0.6994), abs=1e-3)
    # Δ = 0, 2, 5, 97 → (1 + 0.8 + 0.5 + 0)/4 = 0.575
    assert p["delta_auc"] == pytest.approx(0.575)
    # vit_c: Δ = 0, 1, 2, 7 → (1 + 0.9 + 0.8 + 0.3)/4 = 0.75 > 0.575: rank 1
    assert c["delta_auc"] == pytest.approx(0.75) and (c["rank"], p["rank"]) == (1, 2)
    assert (p["within_1"], p["within_2"], p["within_5"]) == pytest.approx((0.25, 0.5, 0.75))
    assert p["learned"] and c["learned"]
    # optimizer gap = best sgd − best adamw: vit_p 8 − 3 = 5, vit_c 4 − 2 = 2
    assert p["optimizer_gap"] == 5 and c["optimizer_gap"] == 2
    # two optimizers with 2 lr values each: no LR sensitivity (needs 3 lr values per optimizer)
    assert np.isnan(c["lr_sensitivity_adamw"]) and "lr_sensitivity" not in m
    one = M.model_metrics(_frame().assign(optimizer="adamw")).set_index("model")
    # vit_c LR sensitivity: lrs 1e-1..1e-4 with errors 2, 3, 4, 9 (all below chance 90): mean 4.5 − 2 = 2.5
    assert one.at["vit_c_x", "lr_sensitivity"] == pytest.approx(2.5)
    # vit_p: 2, 3 (no lr for the failed trial): errors 3, 5, 8, min(100, 90) → mean 26.5 − 3 = 23.5
    assert one.at["vit_p_x", "lr_sensitivity"] == pytest.approx(23.5)
    # expected best of 5 draws with replacement, even from 4 trials: P(min = 2) = 1 − (3/4)^5, ...
    e, probs = np.array([2, 3, 4, 9.0]), np.array([1 - (3 / 4) ** 5, (3 / 4) ** 5 - (2 / 4) ** 5,
                                                   (2 / 4) ** 5 - (1 / 4) ** 5, (1 / 4) ** 5])
    assert c["expected_best"] == pytest.approx(e @ probs)


def test_pairs_only_within_a_size():
    # the paper preset's models: baselines pair within a size, conv vs patchify only; a user stem of size m
    # meets both m baselines; a user stem of unknown size meets none
    models = ["vit_p_1gf", "vit_c_1gf", "vit_p_4gf", "vit_c_4gf", "mine", "other"]
    assert M.pairs(models, {"mine": "4gf"}) == [("vit_c_1gf", "vit_p_1gf"), ("vit_c_4gf", "vit_p_4gf"),
                                                ("mine", "vit_p_4gf"), ("mine", "vit_c_4gf")]
    # comparisons take the sizes from the frame's size column
    df = pd.concat([_frame().assign(size="x"), _frame().assign(model="vit_c_y", size="y"),
                    _frame().assign(model="mine", size="y")])
    got = [(c.model, c.baseline) for c in comparisons(df)]
    assert got == [("vit_c_x", "vit_p_x"), ("mine", "vit_c_y")]


def test_pairs_and_comparisons():
    (c,) = comparisons(_frame())
    # the failed vit_p trial is no result: 4 vs 4
    assert (c.model, c.baseline, c.n_model, c.n_baseline) == ("vit_c_x", "vit_p_x", 4, 4)
    # paired on (point, seed): vit_c wins at points 0..3 (2<3, 3<5, 4<8, 9<100); point 4 only exists for vit_p
    assert (c.matched, c.wins, c.losses, c.ties) == (4, 4, 0, 0)
    # sign test, 4 of 4: two-sided p = 2·(1/2)^4 = 0.125
    assert c.sign_p == pytest.approx(0.125)
    # Δ within the 10-point window: vit_c 0, 1, 2, 7 vs vit_p 0, 2, 5, 10 (97 clipped): F_c − F_p = 0 on (0, 1],
    # 2/4−1/4 on (1, 2], 3/4−2/4 on (2, 5], 0 on (5, 7], 1−3/4 on (7, 10] → D = 0.25, vit_c never below
    assert c.ks_d == pytest.approx(0.25) and c.above == "vit_c_x"
    # 4 paired settings: the exact test enumerates 2^4 swaps; areas 0.75 vs 0.575 → +0.175
    d = c.robustness
    assert c.design == "paired" and d.test.method().startswith("paired permutation test (exact, all 16")
    assert d.difference.value == pytest.approx(0.175) and 0 < d.p <= d.test.p_conservative <= 1
    assert d.difference.low <= d.difference.value <= d.difference.high and 0 <= d.power <= 1
    assert (d.model_value, d.baseline_value) == pytest.approx((0.75, 0.575))
    # 4 settings cannot decide: the interval reaches past both margins
    assert d.outcome == "inconclusive" and c.outcome == "inconclusive" and d.needed is None or d.needed > 4
    # the bests are 2 vs 3: close, so Δ decides (not the normalised statistic)
    assert not c.confounded and c.decision is d


def test_lr_sensitivity_per_optimizer():
    # adamw at lr 1e-3, 1e-2, 1e-1 → 2, 3, 4: mean 3 − best 2 = 1
    # sgd at lr 1e-2, 1e-1, 1 → 5, 9, 100 → min(100, 90) = 90: mean 104/3 − 5 = 29.667
    df = pd.DataFrame(dict(model="vit_c_x", stem="conv", point=range(6), seed=0, status="complete", num_classes=10,
                           optimizer=["adamw"] * 3 + ["sgd"] * 3, lr=[1e-3, 1e-2, 1e-1, 1e-2, 1e-1, 1.0],
                           error=[2, 3, 4, 5, 9, 100.0]))
    r = M.model_metrics(df).iloc[0]
    assert r["lr_sensitivity_adamw"] == pytest.approx(1.0)
    assert r["lr_sensitivity_sgd"] == pytest.approx(104 / 3 - 5)
    assert r["optimizer_gap"] == 3


def test_sign_test_pairs_identical_settings_not_point_indices():
    # TPE: the same point index holds different hyperparameters per model → nothing is paired
    a = pd.DataFrame(dict(model="vit_p_x", point=[0, 1, 2], seed=0, lr=[1e-3, 1e-2, 1e-1], weight_decay=0.05,
                          optimizer="adamw", status="complete", error=[10.0, 20, 30]))
    b = a.assign(model="vit_c_x", lr=[2e-3, 3e-2, 4e-1], error=[5.0, 6, 7])
    (c,) = comparisons(pd.concat([a, b]))
    assert (c.matched, c.wins, c.losses) == (0, 0, 0) and math.isnan(c.sign_p)
    # identical settings under different point indices do pair: lr 1e-2 (6 < 20) and 1e-1 (7 < 30); a searched
    # column named in df.attrs must match too: at lr 1e-3 the warmup differs, so that one is not paired
    b = a.assign(model="vit_c_x", point=[7, 8, 9], warmup=[1, 0, 0], error=[5.0, 6, 7])
    df = pd.concat([a.assign(warmup=0), b])
    df.attrs["searched"] = ["lr", "warmup"]
    (c,) = comparisons(df)
    assert (c.matched, c.wins, c.losses, c.ties) == (2, 2, 0, 0)
    assert c.sign_p == pytest.approx(0.5)  # 2 of 2: 2·(1/2)²


def test_lr_sensitivity_on_a_2d_random_design_bins_lr_and_takes_the_best_wd():
    # every lr unique, weight decay varies too: log10 lr −3.9, −3.8 → bin −8; −2.9, −2.6 → bin −6; −1.9 → bin −4
    lr = 10.0 ** np.array([-3.9, -3.8, -2.9, -2.6, -1.9])
    wd = pd.DataFrame({"weight_decay": [1e-4, 1e-1, 1e-4, 1e-1, 1e-2]})
    err = [50.0, 10, 20, 40, 100]
    # random 2-D design: every (lr, wd) slice holds one lr → no 1-D sweep → n/a (NaN)
    assert math.isnan(M.lr_sensitivity(lr, err, 90.0, wd))
    # without the other column it is one sweep over 5 lr values: mean(50, 10, 20, 40, 90) − 10 = 32
    assert M.lr_sensitivity(lr, err, 90.0) == pytest.approx(32)
    # a grid lr × wd: one sweep per wd, then averaged. wd 0: 30, 5, min(100, 90) → 125/3 − 5 = 36.67;
    # wd 0.1: 10, 50, 60 → 40 − 10 = 30 → (36.67 + 30)/2 = 33.33
    lr2, wd2 = [1e-3, 1e-3, 1e-2, 1e-2, 1e-1, 1e-1], pd.DataFrame({"weight_decay": [0.0, 0.1] * 3})
    assert M.lr_sensitivity(lr2, [30, 10, 5, 50, 100, 60], 90.0, wd2) == pytest.approx((125 / 3 - 5 + 30) / 2)
    # model_metrics passes the varying weight decay on (random design: NaN; a model that did not learn: NaN)
    df = pd.DataFrame(dict(model="vit_c_x", point=range(5), seed=0, status="complete", num_classes=10,
                           optimizer="adamw", lr=lr, weight_decay=wd["weight_decay"], error=err))
    assert math.isnan(M.model_metrics(df).iloc[0]["lr_sensitivity"])
    grid = pd.DataFrame(dict(model="vit_c_x", point=range(6), seed=0, status="complete", num_classes=10, optimizer="adamw",
                             lr=lr2, weight_decay=wd2["weight_decay"], error=[30, 10, 5, 50, 80, 60]))
    assert M.model_metrics(grid).iloc[0]["lr_sensitivity"] == pytest.approx((115 / 3 - 5 + 30) / 2)
