"""Hyperparameter importances: fANOVA on the trial table (real Optuna evaluator), degenerate inputs, the report."""

import time

import numpy as np
import optuna
import pandas as pd
import pytest
from pypdf import PdfReader

from robustbench_vit.analysis.importance import MIN_TRIALS, importance_table, importances
from robustbench_vit.report.build import build_report
from robustbench_vit.store import Results
from tests.study_fixtures import write_study

SPACE = {"lr": {"low": 1e-4, "high": 1e-1, "log": True}, "weight_decay": {"low": 1e-3, "high": 3.0, "log": True}}
SPEC = {"design": {"kind": "random"}, "space": SPACE}


def frame(n: int, *, models=("vit_p_micro", "vit_c_micro"), lr_weight: float = 6.0, cap_above: float = -1.6,
          kind: str = "random", seed: int = 0) -> pd.DataFrame:
    """A random-design trial table: error a bowl in log lr (weight `lr_weight`) and log wd, diverged above an lr."""
    rng, rows = np.random.default_rng(seed), []
    for m in models:
        x, y = rng.uniform(-4, -1, n), rng.uniform(-3, np.log10(3), n)
        e = 5 + lr_weight * (x + 2.5) ** 2 + 2 * (y + 1) ** 2 + rng.normal(0, 0.5, n)
        capped = x > cap_above
        rows += [{"model": m, "lr": 10 ** a, "weight_decay": 10 ** b, "status": "diverged" if c else "complete",
                  "error": 100.0 if c else v} for a, b, v, c in zip(x, y, e, capped)]
    df = pd.DataFrame(rows)
    df.attrs.update(searched=["lr", "weight_decay"], design=kind)
    return df


def test_lr_dominates_where_the_error_depends_mostly_on_lr():
    imp = importances(frame(64, cap_above=0.0), SPEC)
    assert imp.params == ("lr", "weight_decay") and not imp.reason
    for r in imp.rows:
        shares = dict(r.shares)
        assert shares["lr"] > 0.6 > shares["weight_decay"] > 0.02 and 0 <= r.interaction < 0.3
        assert r.trials == 64 and r.capped == 0


def test_capped_trials_count_and_failed_ones_do_not():
    df = frame(32)
    df.loc[:3, ["status", "error"]] = ["failed", np.nan]  # no result: left out
    imp = importances(df, SPEC)
    p, c = imp.rows
    assert p.model == "vit_p_micro" and p.trials == 28 and p.capped == int((df["status"][:32] == "diverged").sum())
    assert p.capped > 0 and dict(p.shares)["lr"] > 0.5  # the cap at high lr is lr's doing


def test_deterministic():
    a, b = importances(frame(48), SPEC), importances(frame(48), SPEC)
    assert a == b


@pytest.mark.parametrize("kind", ["grid", "tpe", None])
def test_not_for_grid_or_tpe(kind):
    imp = importances(frame(32, kind=kind), {"design": {"kind": kind}} if kind else {})
    assert not imp.rows and "not computed for" in imp.reason
    assert ("TPE" in imp.reason) == (kind == "tpe")
    assert importance_table(imp).rows == []


def test_degenerate_inputs_read_sensibly():
    one = frame(1)
    assert importances(one, SPEC).rows[0].reason == f"1 trial: below the {MIN_TRIALS} needed"
    small = importances(frame(MIN_TRIALS - 1), SPEC).rows[0]
    assert not small.shares and f"{MIN_TRIALS - 1} trials" in small.reason
    capped = frame(20, cap_above=-5.0)  # every trial diverged
    assert "did not learn" in importances(capped, SPEC).rows[0].reason
    const = frame(20).assign(error=7.0, status="complete")
    assert "same error" in importances(const, SPEC).rows[0].reason
    lr_only = frame(20).assign(weight_decay=0.05)
    assert "only lr varies" in importances(lr_only, SPEC).rows[0].reason
    table = importance_table(importances(const, SPEC))
    assert table.rows[0][:3] == ["vit_p_micro", "20 (0)", "– (every trial has the same error: no variance to explain)"]
    assert all(len(r) == len(table.headers) for r in table.rows)


def test_strata_have_their_own_ranges_and_minimum():
    df = pd.concat([frame(20, models=("vit_p_micro",)).assign(optimizer="adamw"),
                    frame(8, models=("vit_p_micro",), seed=1).assign(optimizer="sgd")], ignore_index=True)
    df.attrs.update(searched=["lr", "optimizer", "weight_decay"], design="random")
    spec = {"design": {"kind": "random", "stratify": "optimizer"},
            "space": {**SPACE, "optimizer": {"choices": ["adamw", "sgd"]}}}
    imp = importances(df, spec)
    assert imp.params == ("lr", "weight_decay")
    adamw, sgd = imp.rows
    assert adamw.stratum == "optimizer=adamw" and adamw.shares and "8 trials" in sgd.reason
    assert importance_table(imp).rows[0][0] == "vit_p_micro (optimizer=adamw)"


@pytest.mark.parametrize("n", [64, 512])
def test_fast_enough(n):
    df = frame(n, models=("vit_p_micro",))
    t = time.perf_counter()
    assert importances(df, SPEC).rows[0].shares
    assert time.perf_counter() - t < 2.0


def test_report_shows_each_models_importances(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    write_study(url, "imp", points=20)
    storage = optuna.storages.RDBStorage(url)
    spec = {"name": "imp", "design": {"kind": "random", "points": 20},
            "space": {"lr": {"low": 10 ** -4.5, "high": 10 ** -1.5, "log": True},
                      "weight_decay": {"low": 1e-3, "high": 1.0, "log": True}}}
    for m in ("vit_p_micro", "vit_c_micro"):  # the fixture stores no design kind: make it a random design
        optuna.load_study(study_name=f"imp/{m}", storage=storage).set_user_attr("spec", spec)
    paths = build_report("imp", Results.of(storage=url), out_dir=tmp_path / "out", formats=("html", "pdf"))
    html = paths["html"].read_text()
    assert 'id="importance-table"' in html and 'href="#importance"' in html and "not causal" in html
    for m in ("vit_p_micro", "vit_c_micro"):
        assert f"<tr><td>{m}</td><td>20 (" in html
    pdf = "".join(p.extract_text() for p in PdfReader(paths["pdf"]).pages)
    assert "Hyperparameter importances" in pdf and "interactions (%)" in pdf and "not causal" in pdf
