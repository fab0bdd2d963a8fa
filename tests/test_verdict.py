"""Verdicts where they are hardest: models that did not learn, all diverged, all failed, one trial, a constant
shift, adaptive designs; and the Verdict value that every format renders."""

import numpy as np
import pandas as pd
import pytest

from robustbench_vit.analysis import metrics as M
from robustbench_vit.analysis.comparison import comparisons
from robustbench_vit.analysis.summary import comparisons_table, metrics_table
from robustbench_vit.analysis.verdict import OUTCOMES, verdicts
from robustbench_vit.report.figures import make_figures

N = 16  # paired settings


def _model(name: str, errors, status="complete", **kw) -> pd.DataFrame:
    """A model's trials on the N shared settings (seed = setting), 10 classes (chance 90%)."""
    errors = np.broadcast_to(np.asarray(errors, float), (N,))
    status = np.broadcast_to(np.asarray(status), (N,))
    return pd.DataFrame(dict(model=name, size="x", seed=range(N), lr=np.logspace(-4, -1, N), status=status,
                             error=errors, final_error=errors, num_classes=10, number=range(N),
                             history=[[] for _ in range(N)], **kw))


def _verdicts(*models: pd.DataFrame, design: str | None = None) -> dict:
    """Verdicts by title of a study made of these models' trials."""
    df = pd.concat(models, ignore_index=True)
    df.attrs["design"] = design
    return {v.title: v for v in verdicts(M.model_metrics(df), comparisons(df))}


RNG = np.random.default_rng(0)
BASE_P = 20 + np.linspace(0, 30, N)[RNG.permutation(N)]  # errors 20–50 in steps of 2: learns, spread out
BASE_C = 8 + np.linspace(0, 6, N)[RNG.permutation(N)]  # errors 8–14 in steps of 0.4: near its best


def test_a_model_at_chance_is_never_more_robust():
    # every Δ of a model stuck at chance is ≈ 0: its Δ-EDF is a wall at 0, the "most robust" shape there is
    chance = _model("blind_x", 100.0, status="collapsed", ).assign(final_error=89.7 + 0.3 * RNG.random(N))
    got = _verdicts(_model("vit_p_x", BASE_P), _model("vit_c_x", BASE_C), chance)
    for base in ("vit_p_x", "vit_c_x"):
        v = got[f"blind_x vs {base}"]
        assert v.outcome == "not comparable" and v.more_robust is None and "more robust" not in v.headline
        assert v.headline.startswith("blind_x did not learn in this range: none of its 16 trials beat chance "
                                     "(16 finished at chance, best error 89.7%)")
    assert got["vit_c_x vs vit_p_x"].outcome == "more robust"
    mm = M.model_metrics(pd.concat([_model("vit_p_x", BASE_P), chance])).set_index("model")
    assert not mm.at["blind_x", "learned"] and np.isnan(mm.at["blind_x", "delta_auc"])
    assert "rank" not in mm or np.isnan(mm.at["blind_x", "rank"])  # no rank among one learner
    table = metrics_table(mm.reset_index())
    assert ["learned in this range", "yes", "no: did not learn in this range"] in table.rows


def test_all_diverged_and_all_failed_and_one_trial():
    diverged = _model("boom_x", 100.0, status="diverged")
    v = _verdicts(_model("vit_p_x", BASE_P), diverged)["boom_x vs vit_p_x"]
    assert v.outcome == "not comparable" and "16 diverged" in v.headline and "did not learn" in v.headline
    # all failed: no results at all (failed trials are not results), and the comparison says it is incomplete
    failed = _model("dead_x", np.nan, status="failed")
    v = _verdicts(_model("vit_p_x", BASE_P), failed)["dead_x vs vit_p_x"]
    assert v.outcome == "unavailable" and "dead_x has no results" in v.headline
    assert any("dead_x: 16 trials failed" in c and "re-runs them" in c for c in v.caveats)
    # both sides did not learn
    v = _verdicts(_model("vit_p_x", 100.0, status="diverged"), diverged)["boom_x vs vit_p_x"]
    assert v.outcome == "not comparable" and "neither has a robustness" in v.headline
    # one trial each: no test, said plainly
    one = pd.concat([_model("vit_p_x", BASE_P).iloc[:1], _model("vit_c_x", BASE_C).iloc[:1]])
    v = _verdicts(one)["vit_c_x vs vit_p_x"]
    assert v.outcome == "unavailable" and "at least 2 results per model" in v.headline
    assert set(OUTCOMES) >= {v.outcome}


def test_failed_trials_are_left_out_not_counted_at_the_cap():
    # the same study with 4 of vit_p's trials failed: they drop out of the pairs, nothing sits at 100
    p = _model("vit_p_x", BASE_P)
    p.loc[:3, ["status", "error"]] = ["failed", np.nan]
    df = pd.concat([p, _model("vit_c_x", BASE_C)])
    (c,) = comparisons(df)
    assert (c.n_baseline, c.n_tested, c.failed_baseline) == (12, 12, 4)
    mm = M.model_metrics(df).set_index("model")
    assert mm.at["vit_p_x", "trials"] == 12 and mm.at["vit_p_x", "did_not_train_rate"] == 0


def test_a_constant_shift_is_not_a_robustness_difference():
    # vit_c is worse by 4 points at every setting: the same Δ shape → no robustness difference, worse in error
    v = _verdicts(_model("vit_p_x", BASE_C), _model("vit_c_x", BASE_C + 4))["vit_c_x vs vit_p_x"]
    assert v.outcome in ("equivalent", "inconclusive") and v.p > 0.5 and v.more_robust is None
    assert not v.confounded
    assert "in absolute error vit_p_x is better at 16 of 16 identical settings" in v.headline
    # worse by 7: the bests (8 vs 15) are more than 5 points apart, so Δ-robustness is confounded by peak error
    # and the verdict says so, deciding on the normalised statistic instead
    v = _verdicts(_model("vit_p_x", BASE_C), _model("vit_c_x", BASE_C + 7))["vit_c_x vs vit_p_x"]
    assert v.confounded and v.headline.startswith("Δ-robustness is confounded by peak error (best vit_c_x 15.0% "
                                                  "vs vit_p_x 8.0%, chance 90%)")
    assert v.more_robust is None


def test_a_model_bad_everywhere_is_not_called_more_robust():
    # ViT_P at 6 epochs on digits: best 52%, half its trials within 2 points of that, the rest near chance (bad
    # everywhere); vit_c learns (best 7%) with a wider spread. Δ from one's own best would call vit_p "more
    # robust" (Δ-EDF area 0.45 vs 0.17); the guard does not.
    bad = np.concatenate([52 + np.linspace(0, 2, N // 2), 80 + np.linspace(0, 9, N // 2)])[RNG.permutation(N)]
    good = 7 + np.linspace(0, 30, N)[RNG.permutation(N)]
    df = pd.concat([_model("vit_p_x", bad), _model("vit_c_x", good)], ignore_index=True)
    v = verdicts(M.model_metrics(df), comparisons(df))[0]
    assert v.confounded and v.more_robust != "vit_p_x" and "confounded by peak error" in v.headline
    mm = M.model_metrics(df).set_index("model")
    assert mm.at["vit_p_x", "peak_far"] and not mm.at["vit_c_x", "peak_far"]
    assert "rank" not in mm or mm["rank"].isna().all()  # one rankable model: no rank
    rows = {r[0]: r[1:] for r in metrics_table(mm.reset_index()).rows}
    assert rows["Δ-EDF area over 0–10 points (↑ robust)"][0].endswith("†")  # vit_p's Δ value is marked
    # normalised robustness points the right way: vit_c keeps more of its attainable improvement
    kept = rows["normalised robustness: share of the attainable improvement kept (↑ robust)"]
    assert float(kept[1]) > float(kept[0])


def test_adaptive_designs_make_no_edf_or_budget_claims():
    df = pd.concat([_model("vit_p_x", BASE_P), _model("vit_c_x", BASE_C)], ignore_index=True)
    df.attrs["design"] = "tpe"
    (v,) = verdicts(M.model_metrics(df), comparisons(df))
    assert v.outcome == "adaptive" and "no robustness verdict" in v.headline and v.p is None
    ids = {f.id for f in make_figures(df)}
    assert not ids & {"edf", "edf-delta", "expected-best"} and "search" in ids
    labels = [r[0] for r in metrics_table(M.model_metrics(df)).rows]
    assert not any(k in " ".join(labels) for k in ("Δ-EDF", "expected best", "rank"))
    assert "search: trials until within 1 point of its best" in labels
    assert comparisons_table(comparisons(df)).rows[0][2] == "adaptive design: no robustness test"


def test_verdict_states_both_axes_with_intervals_and_power():
    v = _verdicts(_model("vit_p_x", BASE_P), _model("vit_c_x", BASE_C))["vit_c_x vs vit_p_x"]
    assert v.outcome == "more robust" and v.more_robust == "vit_c_x" and v.p < 0.05
    assert "in absolute error vit_c_x is better at 16 of 16 identical settings" in v.headline
    assert any(e.startswith("Δ-EDF area over 0–10 points, vit_c_x − vit_p_x: +") and "[" in e for e in v.evidence)
    assert any("exact, all 65,536 permutations" in e for e in v.evidence) is False  # 16 > 14: Monte Carlo
    # a staged test: 1,000 permutations settle p ≪ 0.05 (up to 10,000 where p is near the level)
    assert any("Monte Carlo, 1,000 of up to 10,000 permutations" in e for e in v.evidence)
    assert v.text.startswith(v.headline)
    # the reverse comparison is the same test from the other side
    rev = _verdicts(_model("vit_p_x", BASE_C), _model("vit_c_x", BASE_P))["vit_c_x vs vit_p_x"]
    assert rev.outcome == "less robust" and rev.more_robust == "vit_p_x" and rev.p == pytest.approx(v.p, abs=0.01)
