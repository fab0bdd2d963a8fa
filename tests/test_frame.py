"""The trial table read back from real Optuna storage written per the storage contract; CSV / Parquet export."""

import json

import numpy as np
import pandas as pd
import pytest

from robustbench_vit.analysis.frame import curves, export_results, load_results, load_study_data
from robustbench_vit.errors import UserError
from robustbench_vit.store import Results, mask_url
from tests.study_fixtures import write_study


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    """A SQLite storage with study `demo` (2 models × 12 paired points, 1 failed, 1 running, 1 pending each)."""
    u = f"sqlite:///{tmp_path_factory.mktemp('frame') / 'study.db'}"
    write_study(u, "demo", points=12, failed=1, running=1, pending=1, retried=2)
    write_study(u, "other", models=("vit_c_micro",), points=3)
    return u


def test_one_row_per_trial_with_contract_columns(url):
    df = load_results("demo", Results.of(storage=url))
    assert len(df) == 2 * (12 + 3)  # the two retried slots count once, with the attempt that stands
    assert sorted(df["attempts"])[-4:] == [2, 2, 2, 2] and (df.loc[df["attempts"] == 2, "status"] != "failed").all()
    assert set(df["status"]) == {"complete", "diverged", "failed", "running", "pending"}
    for col in ("study", "model", "stem", "size", "depth", "lr", "weight_decay", "optimizer", "seed", "point",
                "final_error", "min_error", "error", "epochs_run", "seconds", "host", "commit", "number",
                "datetime_start", "datetime_complete", "history"):
        assert col in df, col
    # diverged trials count at the cap; failed ones are no result and unfinished ones have none yet
    assert (df.loc[df["status"] == "diverged", "error"] == 100).all()
    assert df.loc[df["status"].isin(["failed", "running", "pending"]), "error"].isna().all()
    # paired design: both models ran the same (point, seed) → (lr, wd)
    done = df[df["status"].isin(["complete", "diverged"])]
    by = done.pivot_table(index=["point", "seed"], columns="model", values="lr")
    assert np.allclose(by["vit_p_micro"], by["vit_c_micro"])
    assert dict(zip(df["model"], df["stem"])) == {"vit_p_micro": "patchify", "vit_c_micro": "conv"}


def test_curves_long_form(url):
    df = load_results("demo", Results.of(storage=url))
    c = curves(df)
    assert len(c) == sum(len(h) for h in df["history"])
    t = df[df["status"] == "complete"].iloc[0]
    mine = c[(c["model"] == t["model"]) & (c["number"] == t["number"])]
    assert mine["epoch"].tolist() == list(range(1, len(t["history"]) + 1))
    assert mine["val_error"].iloc[-1] == pytest.approx(t["final_error"])
    assert (mine["lr"] == t["lr"]).all()  # the trial's lr stays; the epoch's lr is lr_epoch


def test_study_data_and_unknown_study(url):
    data = load_study_data("demo", Results.of(storage=url))
    assert set(data.models) == {"vit_p_micro", "vit_c_micro"} and data.spec["design"] == "lr_wd"
    with pytest.raises(UserError, match=r"unknown study 'nope'.*demo, other"):
        load_results("nope", Results.of(storage=url))


def test_several_storages_are_merged(url, tmp_path):
    second = f"sqlite:///{tmp_path / 'b.db'}"
    write_study(second, "demo", models=("mine<b>&",), points=12)
    df = load_results("demo", Results.of(storage=[url, second]))
    assert set(df["model"]) == {"vit_p_micro", "vit_c_micro", "mine<b>&"}


def test_mask_url():
    assert mask_url("postgresql://bob:s3cret@db:5432/x") == "postgresql://bob:***@db:5432/x"


@pytest.mark.parametrize("ext", ["parquet", "csv"])
def test_export_round_trip(url, tmp_path, ext):
    df = load_results("demo", Results.of(storage=url))
    out = export_results("demo", tmp_path / f"t.{ext}", Results.of(storage=url))
    back = pd.read_parquet(out) if ext == "parquet" else pd.read_csv(out)
    assert list(back.columns) == list(df.columns) and len(back) == len(df)
    pd.testing.assert_series_equal(back["error"], df["error"])
    pd.testing.assert_series_equal(back["model"].astype(str), df["model"].astype(str), check_dtype=False)
    hist = back["history"].map(json.loads) if ext == "csv" else back["history"].map(lambda h: [dict(r) for r in h])
    assert hist.tolist() == df["history"].tolist()


def test_export_rejects_unknown_extension(url, tmp_path):
    with pytest.raises(UserError, match=r"\.xlsx.*\.csv, \.parquet"):
        export_results("demo", tmp_path / "t.xlsx", Results.of(storage=url))
    assert not (tmp_path / "t.xlsx").exists()


def test_default_storage_under_runs_dir(tmp_path):
    from robustbench_vit.store import resolve_storage

    (tmp_path / "demo").mkdir()
    write_study(resolve_storage("demo", runs_dir=tmp_path), "demo", points=3)
    assert len(load_results("demo", Results.of(tmp_path))) == 6
    with pytest.raises(UserError, match=r"unknown study 'nope'.*studies in .*: demo\)"):
        load_results("nope", Results.of(tmp_path))
    assert not (tmp_path / "nope").exists()  # reading never creates storage


def test_unreadable_storage_is_one_clear_error(tmp_path):
    missing = tmp_path / "none.db"
    with pytest.raises(UserError, match=r"no SQLite file .*none\.db"):
        load_results("demo", Results.of(storage=f"sqlite:///{missing}"))
    assert not missing.exists()
    with pytest.raises(UserError, match=r"storage weird://bob:\*\*\*@h:1:2: cannot read it") as e:
        load_results("demo", Results.of(storage="weird://bob:s3cret@h:1:2"))
    assert "s3cret" not in str(e.value)


@pytest.mark.postgres
def test_postgres_and_sqlite_read_together(postgres_url, url):
    write_study(postgres_url, "demo", models=("mine<b>&",), points=12)  # the same study, one model elsewhere
    df = load_results("demo", Results.of(storage=[url, postgres_url]))
    assert set(df["model"]) == {"vit_p_micro", "vit_c_micro", "mine<b>&"}
    pg = df[df["model"] == "mine<b>&"]
    assert len(pg) == 12 and pg["storage"].str.startswith("postgresql").all() and pg["history"].map(len).gt(0).all()
    assert not pg["storage"].str.contains(postgres_url.split("@")[0].split(":")[-1]).any()  # password masked


def test_report_and_status_count_the_same_attempt_per_slot(tmp_path):
    # slot (0, 0): failed, complete, then a later diverged twin; (1, 0): failed then running; (2, 0): a failed
    # duplicate (loser of a race) beside a pending one. The report's row per slot is the state `study status`
    # shows (storage.slot_states), the latest attempt in that state, and `attempts` counts the non-duplicates.
    import optuna
    from optuna.trial import TrialState, create_trial

    from robustbench_vit.store import count_states, slot_states

    u = f"sqlite:///{tmp_path / 's.db'}"
    s = optuna.create_study(study_name="st/vit_c_micro", storage=u)
    for state, point, status, value in [
            (TrialState.FAIL, 0, "failed", None), (TrialState.COMPLETE, 0, "complete", 7.0),
            (TrialState.COMPLETE, 0, "diverged", 100.0), (TrialState.FAIL, 1, "failed", None),
            (TrialState.RUNNING, 1, None, None), (TrialState.FAIL, 2, "duplicate", None),
            (TrialState.WAITING, 2, None, None)]:
        attrs = {"point": point, "seed": 0} | ({"status": status} if status else {})
        s.add_trial(create_trial(state=state, value=value, params={}, distributions={}, user_attrs=attrs))
    df = load_results("st", Results.of(storage=u)).set_index("point")
    states = slot_states(s.get_trials())
    assert df["status"].to_dict() == {p: states[(p, 0)] for p in (0, 1, 2)} == {0: "complete", 1: "running",
                                                                                  2: "pending"}
    assert df.at[0, "error"] == 7.0 and df["attempts"].to_dict() == {0: 3, 1: 2, 2: 1}
    assert df["status"].value_counts().to_dict() == {k: v for k, v in count_states(s).items() if v}
