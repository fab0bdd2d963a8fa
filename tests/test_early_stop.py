"""Hopeless trials stopped early (issue 19 item 3): the rule on synthetic curves, then real tiny training through a
study: the hopeless trial is stopped at epoch 4 of 5, stored PRUNED with status "stopped", counted at the cap by the
analysis and never run again; the trial that learns runs to the end; `stop_hopeless: false` turns the rule off."""

import optuna
import pytest

from robustbench_vit.analysis.frame import ERROR_CAP, load_results
from robustbench_vit.models import ModelSpec
from robustbench_vit.store import FINISHED, Results, resolve_storage, slot_states
from robustbench_vit.study.files import load_spec
from robustbench_vit.study.launch import run_study
from robustbench_vit.study.options import RunOptions
from robustbench_vit.study.runner import is_duplicate
from robustbench_vit.study.status import study_status
from robustbench_vit.train import TrialConfig, run_trial
from robustbench_vit.train.loop import STOP_MARGIN, hopeless

CHANCE = 90.0  # 10 classes
HOPELESS_WD = 500.0  # AdamW decoupled decay, lr·wd = 1 per step at the peak lr: weights ~0, constant predictions

SPEC = """\
models: [vit_c_micro]
dataset: digits
train: {{epochs: 5, batch_size: 256, lr: 2.0e-3, threads: 1{extra}}}
space:
  weight_decay: {{values: [0.05, {wd}]}}
design: {{kind: grid, seeds: 1}}
"""


AT = [90.0, 89.0, 88.5, 91.0, 90.0, 89.5, 90.0, 88.0, 90.0, 90.0]  # within 2 points of chance at every epoch


@pytest.mark.parametrize("errors, epochs, stops", [
    (AT[:7], 10, False),  # 7 epochs < ceil(0.8 × 10) = 8: too early to tell (such curves still learned)
    (AT[:8], 10, True),  # at chance at every one of the first 8 of 10
    (AT[:9], 10, True),  # later checks agree (the trainer stops at the first)
    (AT[:10], 10, False),  # the last epoch: nothing left to save, the trial completes (and collapses)
    (AT[:4] + [85.0] + AT[5:8], 10, False),  # one epoch below chance − 2: it moved, keep training
    ([70.0] + AT[1:8], 10, False),  # learned, then lost it: not hopeless by this rule (ends collapsed or diverged)
    (AT[:4], 5, True),  # short schedules: at least 2 epochs, and fewer than all
    (AT[:3], 5, False),
    (AT[:2], 2, False),
    (AT[:2], 3, False),  # ceil(0.8 × 3) = 3 = all of them
])
def test_rule_on_synthetic_curves(errors, epochs, stops):
    assert hopeless(errors, epochs, 10) is stops


def test_rule_uses_each_datasets_chance_and_its_margin():
    assert hopeless([98.0, 97.5, 99.0, 98.0], 5, 100)  # CIFAR-100: chance 99%
    assert not hopeless([96.0] * 4, 5, 100)
    assert hopeless([CHANCE - STOP_MARGIN] * 4, 5, 10) and not hopeless([CHANCE - STOP_MARGIN - 0.1] * 4, 5, 10)
    assert hopeless([85.0] * 4, 5, 10, margin=5.0) and hopeless([90.0] * 5, 10, 10, fraction=0.5)


def study(tmp_path, name: str, extra: str = "", wd: float = HOPELESS_WD):
    """A one-model study of two weight decays (0.05 learns, `wd` does not), 5 epochs each (the rule looks at 4)."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(SPEC.format(extra=extra, wd=wd))
    return load_spec(str(path))


def test_hopeless_trial_is_stopped_stored_pruned_counted_at_the_cap_and_never_rerun(tmp_path):
    spec, runs = study(tmp_path, "hopeless"), tmp_path / "runs"
    summary = run_study(spec, RunOptions(runs_dir=runs), progress=False)
    assert (summary.ran, summary.done, summary.total) == (2, 2, 2)
    url = resolve_storage(spec.name, runs)
    s = optuna.load_study(study_name=f"{spec.name}/vit_c_micro", storage=url)
    by_wd = {t.params["weight_decay"]: t for t in s.trials}
    learns, stopped = by_wd[0.05], by_wd[HOPELESS_WD]
    # the trial that learns is never stopped: all 5 epochs, COMPLETE, value = final error
    assert learns.state == optuna.trial.TrialState.COMPLETE and learns.user_attrs["status"] == "complete"
    assert learns.user_attrs["epochs_run"] == 5 and learns.value == learns.user_attrs["final_error"] < 80
    # the hopeless one: PRUNED (Optuna's word) at epoch 4 of 5, value = its last epoch's error as Optuna's tell does
    a = stopped.user_attrs
    assert stopped.state == optuna.trial.TrialState.PRUNED and a["status"] == "stopped"
    assert a["epochs_run"] == 4 == len(a["history"]) and a["final_error"] == ERROR_CAP
    assert all(h["val_error"] >= CHANCE - STOP_MARGIN for h in a["history"])
    assert stopped.intermediate_values == {h["epoch"]: h["val_error"] for h in a["history"]}
    assert stopped.value == a["history"][-1]["val_error"]
    assert a["message"].startswith("stopped early at epoch 4 of 5: did not train")
    # a finished result: status counts it, the progress's FINISHED too; a rerun trains nothing
    counts = study_status(spec.name, Results.of(runs))["vit_c_micro"]
    assert (counts["complete"], counts["stopped"], counts["failed"], counts["pending"]) == (1, 1, 0, 0)
    assert "stopped" in FINISHED and slot_states(s.trials)[(a["point"], 0)] == "stopped"
    assert run_study(spec, RunOptions(runs_dir=runs), progress=False).ran == 0
    assert len(optuna.load_study(study_name=f"{spec.name}/vit_c_micro", storage=url).trials) == 2
    # a queued twin of the stopped slot (two `study run`s racing) is a duplicate, never trained
    s.enqueue_trial({"weight_decay": HOPELESS_WD}, user_attrs={"point": a["point"], "seed": 0})
    assert is_duplicate(s, s.trials[-1]) and s.trials[-1].state == optuna.trial.TrialState.WAITING
    # the analysis: did not train (at chance), at the cap, marked as stopped early
    df = load_results(spec.name, Results.of(runs)).set_index("weight_decay")
    assert df.at[HOPELESS_WD, "status"] == "collapsed" and df.at[HOPELESS_WD, "error"] == ERROR_CAP
    assert bool(df.at[HOPELESS_WD, "stopped_early"]) and df.at[HOPELESS_WD, "epochs_run"] == 4
    assert df.at[0.05, "status"] == "complete" and not df.at[0.05, "stopped_early"]


def test_stop_hopeless_false_trains_to_the_end(tmp_path):
    spec = study(tmp_path, "no_stop", extra=", stop_hopeless: false")
    assert spec.train["stop_hopeless"] is False  # settable from a study's train: block
    config = TrialConfig(model=ModelSpec.from_name("vit_c_micro"), epochs=5, batch_size=256, lr=2e-3,
                         weight_decay=HOPELESS_WD, threads=1, stop_hopeless=False)
    r = run_trial(config)
    assert r.status == "complete" and r.epochs_run == 5 and r.final_error >= CHANCE - STOP_MARGIN
