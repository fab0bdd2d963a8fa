"""Study harness failure paths: claims that are interrupted, twin trials, bad user input caught before storage.

Real SQLite storage and real Optuna trials throughout. Where a test needs a failure at an exact moment (a Ctrl-C
between the claim and the start of training), it patches the one function running at that moment to raise.
"""

from __future__ import annotations

import time

import optuna
import pytest
from optuna.trial import TrialState
from study_contract import MODELS, small_spec

from robustbench_vit.study import runner
from robustbench_vit.study.plan import plan
from robustbench_vit.study.storage import enqueue_missing, open_studies, resolve_storage


def queued(tmp_path, prefix: str):
    """A small study with every slot queued in fresh SQLite storage: (spec, url, {model: study})."""
    spec = small_spec(tmp_path, prefix)
    url = resolve_storage(spec.name, tmp_path / "runs")
    studies = open_studies(spec, url)
    for s in studies.values():
        enqueue_missing(s, plan(spec), spec.design.seed_list)
    return spec, url, studies


def states(study: optuna.Study) -> list[TrialState]:
    """The states of a study's trials, by number."""
    return [t.state for t in study.get_trials(deepcopy=False)]


def test_interrupt_between_claim_and_training_requeues(tmp_path, monkeypatch):
    """A Ctrl-C while the claimed trial's config is built puts it back in the queue (not RUNNING forever)."""
    spec, url, studies = queued(tmp_path, "claim_int")

    def interrupted(self, spec, threads):
        """Ctrl-C right after the claim, before the heartbeat thread starts."""
        raise KeyboardInterrupt

    monkeypatch.setattr(runner.TrialRun, "config", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runner.work(url, spec.name, list(MODELS), tmp_path / "runs", trial_fn=lambda *a: pytest.fail("trained"))
    assert all(s == TrialState.WAITING for st in studies.values() for s in states(st))


def test_claimed_trial_is_heartbeated_at_once(tmp_path, monkeypatch):
    """A worker dying right after the claim leaves a trial that goes stale (then re-queued), never RUNNING forever."""
    monkeypatch.setenv("ROBUSTBENCH_VIT_GRACE_S", "1")
    spec, url, studies = queued(tmp_path, "claim_hb")
    seen = {}

    def dies(self, spec, threads):
        """Stand-in for a SIGKILL before training: wait past the grace period, then look for stale trials."""
        time.sleep(2.5)
        seen["stale"] = optuna.storages.fail_stale_trials(self.study) or self.study._storage.get_trial(
            self.trial_id).state
        raise SystemExit(1)

    monkeypatch.setattr(runner.TrialRun, "config", dies)
    with pytest.raises(SystemExit):
        runner.work(url, spec.name, list(MODELS), tmp_path / "runs", trial_fn=lambda *a: pytest.fail("trained"))
    assert seen["stale"] == TrialState.FAIL  # had a heartbeat: failed as stale (and retried by the callback)
    first = studies[MODELS[0]]
    assert TrialState.RUNNING not in states(first) and states(first).count(TrialState.WAITING) == 2


def test_queued_twin_with_lower_number_wins(tmp_path):
    """Two processes enqueuing the same slot at once: the later twin is a duplicate, even while both are queued."""
    spec, url, studies = queued(tmp_path, "twins")
    study = studies[MODELS[0]]
    enqueue_missing(study, plan(spec), spec.design.seed_list)  # a second `study run` would not add twins ...
    assert len(study.trials) == 2
    for t in list(study.get_trials(deepcopy=False)):  # ... but one racing the first one does: add them by hand
        study.add_trial(optuna.trial.create_trial(state=TrialState.WAITING, params=t.params,
                                                  distributions=t.distributions, user_attrs=t.user_attrs))
    frozen = study.trials
    assert [runner.is_duplicate(study, t) for t in frozen] == [False, False, True, True]
