"""`--until-decided`: designs that grow by a prefix, looks that reuse stored trials, a budget that stops the run
and a larger one that continues it, decisions kept between runs. Real training on a tiny study, real storage."""

from __future__ import annotations

import optuna
import pytest

from robustbench_vit.analysis.claims import load_claims
from robustbench_vit.analysis.decisions import ATTR, Decided, Record
from robustbench_vit.analysis.frame import load_results
from robustbench_vit.analysis.sequential import Look
from robustbench_vit.cli import main
from robustbench_vit.commands.common import claims_decider
from robustbench_vit.commands.until import Budget, Outcome, Until, run_until_decided
from robustbench_vit.errors import UserError
from robustbench_vit.report.build import build_report
from robustbench_vit.store import Results
from robustbench_vit.study.files import load_spec
from robustbench_vit.study.options import RunOptions
from robustbench_vit.study.plan import extended, plan, slots, step, trial_count
from tests.study_fixtures import write_study

TINY = ("models: [vit_p_micro, vit_c_micro]\ntrain: {epochs: 1, batch_size: 256, threads: 1}\n"
        "space:\n  lr: {values: [0.0005, 0.002, 0.008]}\n")


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A working folder with studies/tiny.yaml (a 3-point lr grid, one replicate, 1 epoch)."""
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "tiny.yaml").write_text(TINY)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("kind", ["random", "quasirandom"])
def test_random_designs_extend_their_sequence_and_grids_add_replicates(kind):
    spec = load_spec("optimizer_stability")  # stratified by optimizer: 2 settings per step
    spec = spec.model_copy(update={"design": spec.design.model_copy(update={"kind": kind})})
    small, big = plan(extended(spec, 4)), plan(extended(spec, 20))
    assert step(spec) == 2 and len(small) == 4 and len(big) == 20
    assert [p.params for p in small] == [p.params for p in big[:4]]  # the first settings are the same
    assert {p.params["optimizer"] for p in big[:2]} == {"adamw", "sgd"}  # strata stay interleaved
    grid = load_spec("lr_sensitivity")  # 6 lrs x 2 seeds
    assert step(grid) == 6 and slots(extended(grid, 6)) < slots(grid) < slots(extended(grid, 18))
    assert {s for _, s in slots(extended(grid, 18))} == {0, 1, 2}
    assert extended(grid, 18).fingerprint() != grid.fingerprint()  # only the plan grows; the stored spec stays


def test_budgets_and_looks_read_as_given_and_bad_ones_are_refused():
    spec = load_spec("lr_sensitivity")
    assert Budget.parse("200").trials == 200 and Budget.parse("3.5gpuh").gpu_hours == 3.5
    assert Budget.parse("200").settings(spec, spec.models) == 96  # 100 per model, whole grids of 6
    assert Budget().settings(spec, spec.models) == 48  # 4 x the fixed 12 settings
    fashion = load_spec("lr_wd_stability", "fashion")  # a study's own default budget: 32 settings per model
    assert (trial_count(fashion), Budget().settings(fashion, fashion.models)) == (16, 32)
    assert Until(look_every=4).every(spec) == 6 and Until().every(load_spec("lr_wd_stability")) == 8
    for bad in ("0", "-3", "lots", "2 days"):
        with pytest.raises(UserError, match="--budget"):
            Budget.parse(bad)
    with pytest.raises(UserError, match="tpe"):
        extended(load_spec("peak"), 8)


def test_until_decided_refuses_stray_flags(here, capsys):
    assert main(["study", "run", "tiny", "--budget", "12"]) == 2
    assert "--budget is an option of --until-decided" in capsys.readouterr().err
    assert main(["study", "run", "tiny", "--until-decided", "--budget", "4"]) == 2  # 2 per model: below one look
    assert "below one look of 3 settings" in capsys.readouterr().err
    assert not (here / "runs").exists()


def _finished(url: str) -> int:
    return sum(t.state.is_finished() for s in optuna.get_all_study_names(url)
               for t in optuna.load_study(study_name=s, storage=url).trials)


@pytest.mark.slow
def test_looks_stop_at_the_budget_rerun_trains_nothing_and_a_larger_budget_continues(here, capsys):
    url = f"sqlite:///{here / 'runs' / 'tiny' / 'study.db'}"
    assert main(["study", "run", "tiny", "--until-decided", "--budget", "12"]) == 0
    err = capsys.readouterr().err
    assert "look 1: 3 settings per model, 6 trials (6 ran now)" in err
    assert "look 2: 6 settings per model, 12 trials (6 ran now)" in err
    assert "stopped — budget spent (12 trials, 6 settings per model)" in err or "every decision taken" in err
    assert _finished(url) == 12  # two replicates of the 3-point grid, both models
    home = optuna.load_study(study_name="tiny/vit_p_micro", storage=url)
    rec = Record.from_json(home.user_attrs[ATTR + "vit_c_micro vs vit_p_micro"])
    assert [lk.n for lk in rec.looks] == [3, 6] and rec.looks[-1].spent == pytest.approx(0.05)
    assert main(["study", "run", "tiny", "--until-decided", "--budget", "12"]) == 0
    assert "budget spent" in capsys.readouterr().err
    assert _finished(url) == 12  # nothing trained again
    if not rec.decided:  # a larger budget continues at 9 settings, with nothing left to spend beyond 0.05
        assert main(["study", "run", "tiny", "--until-decided", "--budget", "18"]) == 0
        assert "look 3: 9 settings per model, 18 trials (6 ran now)" in capsys.readouterr().err
        rec = Record.from_json(optuna.load_study(study_name="tiny/vit_p_micro", storage=url)
                               .user_attrs[ATTR + "vit_c_micro vs vit_p_micro"])
        assert rec.looks[-1].spent <= 0.05 + 1e-12 and _finished(url) == 18


@pytest.mark.slow
def test_a_decision_taken_at_a_look_is_kept_and_the_run_stops_there(here, capsys):
    """A decider that decides at the second look (the comparisons' statistics are tested elsewhere): the run
    stops there, and a later run with a larger budget trains nothing for it."""
    spec = load_spec("tiny")
    run = RunOptions(runs_dir=str(here / "runs"))

    def decide(df, level) -> list[Outcome]:
        look = level("x")
        n = df.groupby("model").size().min()
        return [] if look is None else [Outcome("x", "more robust" if n >= 6 else "inconclusive", n >= 6,
                                                f"{n} settings", len(df))]

    seq = run_until_decided(spec, run, Until(Budget(trials=30)), decide)
    assert seq.reason == "decided" and [n for n, _, _ in seq.looks] == [3, 6] and seq.decided["x"].look == 2
    assert "every decision taken (the last at look 2)" in capsys.readouterr().err
    again = run_until_decided(spec, run, Until(Budget(trials=60)), decide)
    assert again.ran == 0 and again.looks == [] and again.reason == "decided"
    assert isinstance(again.records["x"].looks[0], Look)
    html = build_report("tiny", Results.of(str(here / "runs")), out_dir=here / "rep")["html"].read_text()
    assert "Sequential (--until-decided): x: more robust at look 2 of 2, 6 settings per model" in html
    assert "Kim &amp; DeMets" in html or "Kim & DeMets" in html  # the Methods paragraph on the procedure


def test_earlier_decisions_skip_training_only_when_no_new_decision_can_appear():
    """A new stem's decisions exist only once it has results: until then, decided claims do not stop the run."""
    import pandas as pd

    from robustbench_vit.commands.until import Sequential, _all_decided

    seq = Sequential("s", 8, 8, records={"x": Record(decided=Decided("more robust", 1, 8, 16))})

    def decide(df, level):
        for key in ["x", *(["y"] if "stem" in set(df["model"]) else [])]:
            level(key)
        return []

    two = pd.DataFrame({"model": ["vit_p", "vit_c"]})
    assert _all_decided(seq, decide, two, ["vit_p", "vit_c"])
    assert not _all_decided(seq, decide, two, ["vit_p", "vit_c", "stem"])  # the stem has no result yet
    assert not _all_decided(seq, decide, pd.DataFrame({"model": ["vit_p", "vit_c", "stem"]}), ["vit_p", "stem"])
    assert not _all_decided(seq, decide, pd.DataFrame(), ["vit_p"])
    other = Sequential("s", 8, 8, records={"x": Record(decided=Decided("more robust", 1, 8, 16)),
                                           "z": Record()})  # z: another command's
    assert _all_decided(other, decide, two, ["vit_p", "vit_c"]) and other.pending() == []


def test_a_model_that_never_trained_is_never_decided(tmp_path):
    """Every vit_p trial diverged (all at the cap): its Δ are all 0, which would read as 'more robust' if decided."""
    from robustbench_vit.analysis.sequential import decide_at
    from robustbench_vit.commands.until import comparison_decider

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    write_study(url, "s", points=16)
    df = load_results("s", Results.of(storage=url))
    dead = df["model"] == "vit_p_micro"
    df.loc[dead, ["status", "error"]] = ["diverged", 100.0]
    look = Look(16, 0.0125, 0.0125)
    (o,) = comparison_decider()(df, lambda key: look)
    assert o.status == "inconclusive" and not o.decided
    at_chance = decide_at([90.0] * 16, list(range(5, 21)), "area", look, chance=90.0, margin=0.05, paired=True)
    assert at_chance.outcome == "inconclusive"  # never below chance: nothing to decide either


def test_stored_decisions_read_and_write_the_same_json_as_before():
    """A record stored by an earlier version (a decided and an undecided one) loads as typed values and is written
    back byte for byte."""
    decided = ('{"looks": [{"n": 8, "level": 0.00078125, "spent": 0.00078125, "budget": 32}, {"n": 16, "level": '
               '0.00234375, "spent": 0.003125, "budget": 32}], "decided": {"status": "more robust", "look": 2, "n": 16, '
               '"trials": 32, "detail": "area +0.300 [+0.100, +0.500], p 0.001"}}')
    pending = '{"looks": [{"n": 8, "level": 0.0125, "spent": 0.0125, "budget": 16}], "decided": null}'
    rec = Record.from_json(decided)
    assert rec.decided == Decided("more robust", 2, 16, 32, "area +0.300 [+0.100, +0.500], p 0.001")
    assert [lk.n for lk in rec.looks] == [8, 16] and rec.to_json() == decided
    assert Record.from_json(pending).decided is None and Record.from_json(pending).to_json() == pending


def test_a_cost_claim_never_holds_the_looks_open(tmp_path):
    """The claims' decider asks for every claim of the study but the cost claim: a measurement, scored afterwards on
    all stored trials at 5%, which would otherwise keep the study looking to its budget at ever smaller levels."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    write_study(url, "lr_wd_stability", ("vit_p_micro", "vit_c_micro", "regnety_micro"), points=16)
    df = load_results("lr_wd_stability", Results.of(storage=url))
    claims = [c for c in load_claims() if c.study == "lr_wd_stability"]
    asked: list[str] = []
    outcomes = claims_decider(claims, load_spec("lr_wd_stability"), None)(df, lambda k: asked.append(k) or Look(
        16, 0.0125, 0.0125))
    assert "cost_parity" in {c.id for c in claims} and not [k for k in asked if "cost_parity" in k]
    assert {o.key for o in outcomes} == {f"claim {c.id} (micro)" for c in claims if c.test != "cost"}
