"""The paper's claims as data and their scoring: statuses, numbers, degenerate inputs, and the size of the two new
statistics (best error, gap) under a simulated null with capped trials."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from robustbench_vit.analysis import inference as I
from robustbench_vit.analysis.claims import STATUSES, best_difference, gap_difference, load_claims, score
from robustbench_vit.analysis.frame import load_results
from robustbench_vit.errors import UserError
from robustbench_vit.store import Results
from tests.study_fixtures import write_study

P, C = "vit_p_micro", "vit_c_micro"


def test_the_shipped_claims_name_their_study_test_and_place_in_the_paper():
    claims = load_claims()
    assert [c.id for c in claims] == ["adamw_lr_wd", "sgd_lr_wd", "optimizer_gap", "schedule_length", "peak_error"]
    for c in claims:
        assert c.statement and c.where and c.paper and c.study and c.test in ("robustness", "best", "gap")
        assert (c.test == "gap") == (c.across is not None)
    assert load_claims(["peak_error"])[0].study == "lr_wd_stability"
    with pytest.raises(UserError, match=r"--claims 'nope': unknown claim; allowed: adamw_lr_wd, optimizer_gap"):
        load_claims(["nope"])


def frame(tmp_path, name: str, **kw) -> pd.DataFrame:
    """A synthetic study written to real Optuna storage and read back as the trial table."""
    url = f"sqlite:///{tmp_path / f'{name}.db'}"
    write_study(url, name, **kw)
    return load_results(name, Results.of(storage=url))


def test_scores_on_a_study_where_the_conv_stem_is_better(tmp_path):
    """The synthetic conv stem has a flatter, lower bowl: robustness and peak reproduce; both models pay the same
    for SGD, so the optimizer gap is not reproduced: equivalent (its interval within ±1 point), and with a margin
    too narrow to show that, inconclusive with power and the size for 80%."""
    claims = {c.id: c for c in load_claims()}
    df = frame(tmp_path, "lrwd", points=24)
    robust = score(claims["adamw_lr_wd"], df, C, P)
    assert robust.status == "reproduced" and robust.p < 0.05 and "Δ-EDF area vit_c_micro − vit_p_micro +" in robust.ours
    peak = score(claims["peak_error"], df, C, P)
    assert peak.status == "reproduced" and peak.ours.startswith("best vit_p_micro ")
    assert "paired permutation test over 24 paired settings" in peak.test
    opt = frame(tmp_path, "opt", points=8, optimizers=("adamw", "sgd"))
    gap = score(claims["optimizer_gap"], opt, C, P)
    assert gap.status == "equivalent" and gap.p >= 0.05 and "8 matched settings" in gap.test
    assert "within ±1 points" in gap.why and gap.effect is not None and gap.se > 0 and gap.n == 8
    narrow = score(claims["optimizer_gap"].model_copy(update={"margin": 0.01}), opt, C, P)
    assert narrow.status == "inconclusive" and "(80% at" in narrow.power_text
    assert "best error at optimizer adamw → sgd" in gap.ours
    assert {robust.status, peak.status, gap.status} <= set(STATUSES)


def test_swapped_models_contradict_and_one_seed_cannot_test_a_schedule(tmp_path):
    claims = {c.id: c for c in load_claims()}
    df = frame(tmp_path, "lrwd", points=24)
    assert score(claims["peak_error"], df, P, C).status == "contradicted"  # ViT_P in the conv stem's place
    assert score(claims["adamw_lr_wd"], df, P, C).status == "contradicted"
    one = score(claims["schedule_length"], frame(tmp_path, "ep", points=1, epochs=(4, 32)), C, P)
    assert one.status == "inconclusive" and "no test is possible" in one.why and one.p is None


def test_degenerate_studies_read_sensibly(tmp_path):
    """All diverged, a model without results, failed trials outstanding: no verdict, a reason each time."""
    claims = {c.id: c for c in load_claims()}
    df = frame(tmp_path, "lrwd", points=6)
    dead = df.assign(status=np.where(df["model"] == P, "diverged", df["status"]),
                     error=np.where(df["model"] == P, 100.0, df["error"]))
    s = score(claims["adamw_lr_wd"], dead, C, P)
    assert s.status == "inconclusive" and "did not learn" in s.why
    assert score(claims["peak_error"], df[df["model"] == C], C, P).why == "no results yet for both models"
    failed = df.copy()
    failed.loc[failed.index[0], "status"] = "failed"
    assert score(claims["peak_error"], failed, C, P).status == "incomplete"


@pytest.mark.parametrize("fn", [best_difference, gap_difference], ids=["best", "gap"])
def test_the_new_statistics_hold_their_size_under_a_null_with_capped_trials(fn):
    """Both models draw from one distribution, 30% of trials capped at 100 (did not train): the paired
    permutation test on the best-error and gap statistics rejects at about α (200 simulated studies)."""
    rng, n, sims, rejected = np.random.default_rng(7), 12, 200, 0
    shape = (n, 2) if fn is gap_difference else (n,)
    for k in range(sims):
        a, b = (np.where(rng.random(shape) < 0.3, 100.0, rng.normal(20, 5, shape)) for _ in range(2))
        rejected += I.paired_test(a, b, fn, seed=k).p < I.ALPHA
    assert rejected / sims <= 0.09, rejected / sims  # α = 5%, + 2 standard errors of 200 draws
