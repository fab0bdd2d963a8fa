"""Contract for the Optuna internals in robustbench_vit/store/optuna_internals.py: each still exists and fits our use.

A failure names the internal that changed: fix optuna_internals.py (only there), or pin Optuna below that version.
"""

from __future__ import annotations

import importlib
import inspect
import time

import optuna
import pytest
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import TrialState

from robustbench_vit.store.optuna_internals import (BaseHeartbeat, cached, heartbeat, open_trial, pop_waiting_trial,
                                                     record_heartbeat, storage_of)

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

# Each internal we call, and the parameters we call it with.
INTERNALS = {
    "optuna.storages._heartbeat.get_heartbeat_thread": ["trial_id", "storage"],
    "optuna.storages._heartbeat.BaseHeartbeat.record_heartbeat": ["self", "trial_id"],
    "optuna.study.Study._pop_waiting_trial_id": ["self"],
    "optuna.trial.Trial.__init__": ["self", "study", "trial_id"],
    "optuna.storages._cached_storage._CachedStorage.__init__": ["self", "backend"],
    "optuna.storages._heartbeat.BaseHeartbeat._get_stale_trial_ids": ["self", "study_id"],
}


def internal(path: str):
    """The object at a dotted path (the longest importable module, then attributes), or a failure naming it."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
        except AttributeError as e:
            pytest.fail(f"optuna internal {path} changed: missing ({e})")
        return obj
    pytest.fail(f"optuna internal {path} changed: module missing")


def study_with_queue(tmp_path, queued: int, grace: int = 2) -> optuna.Study:
    """A study in real SQLite storage with heartbeats (every second), holding `queued` WAITING trials."""
    storage = RDBStorage(f"sqlite:///{tmp_path / 'study.db'}", heartbeat_interval=1, grace_period=grace)
    study = optuna.create_study(storage=storage, study_name="contract")
    for i in range(queued):
        study.add_trial(optuna.trial.create_trial(state=TrialState.WAITING, user_attrs={"i": i}))
    return study


def state(study: optuna.Study, trial_id: int) -> TrialState:
    """A trial's state, read through the storage."""
    return storage_of(study).get_trial(trial_id).state


@pytest.mark.parametrize("path", INTERNALS)
def test_internal_exists_with_the_parameters_we_pass(path):
    params = list(inspect.signature(internal(path)).parameters)
    assert params == INTERNALS[path], f"optuna internal {path} changed: parameters {params}, we pass {INTERNALS[path]}"


def test_study_storage_is_a_heartbeat_capable_base_storage(tmp_path):
    storage = storage_of(study_with_queue(tmp_path, 0))
    assert isinstance(storage, BaseStorage), f"optuna internal Study._storage changed: a {type(storage).__name__}"
    base = internal("optuna.storages._heartbeat.BaseHeartbeat")
    assert isinstance(storage, base), f"optuna internal BaseHeartbeat changed: {type(storage).__name__} is not one"
    assert storage.get_heartbeat_interval() == 1, "optuna internal Study._storage changed: heartbeat interval lost"


def test_pop_waiting_trial_claims_the_queued_trial_then_none(tmp_path):
    study = study_with_queue(tmp_path, 1)
    queued = study.get_trials(deepcopy=False)[0]
    tid = pop_waiting_trial(study)
    name = "optuna internal Study._pop_waiting_trial_id changed"
    assert tid is not None and storage_of(study).get_trial(tid).number == queued.number, f"{name}: popped {tid}"
    assert state(study, tid) == TrialState.RUNNING, f"{name}: the popped trial is {state(study, tid)}, not RUNNING"
    assert pop_waiting_trial(study) is None, f"{name}: did not return None with nothing left in the queue"


def test_open_trial_is_the_claimed_trial(tmp_path):
    study = study_with_queue(tmp_path, 1)
    tid = pop_waiting_trial(study)
    trial = open_trial(study, tid)
    name = "optuna internal Trial(study, trial_id) changed"
    assert trial.number == storage_of(study).get_trial(tid).number, f"{name}: trial number {trial.number}"
    x = trial.suggest_float("x", 0.0, 1.0)
    assert storage_of(study).get_trial(tid).params == {"x": x}, f"{name}: suggested params not stored on the trial"


def wait_while_running(study: optuna.Study, tid: int, timeout: float = 15) -> None:
    """Fail stale trials every half second until trial `tid` is no longer RUNNING (or `timeout` passes)."""
    deadline = time.monotonic() + timeout
    while state(study, tid) == TrialState.RUNNING and time.monotonic() < deadline:
        time.sleep(0.5)
        optuna.storages.fail_stale_trials(study)


def test_record_heartbeat_makes_a_silent_claimed_trial_go_stale(tmp_path):
    study = study_with_queue(tmp_path, 2, grace=1)
    beaten, silent = pop_waiting_trial(study), pop_waiting_trial(study)
    record_heartbeat(storage_of(study), beaten)
    wait_while_running(study, beaten)
    assert state(study, beaten) == TrialState.FAIL, \
        "optuna internal BaseHeartbeat.record_heartbeat changed: its trial never went stale"
    assert state(study, silent) == TrialState.RUNNING, \
        "optuna internal RDBStorage._get_stale_trial_ids changed: a trial without heartbeats went stale"


def test_heartbeat_keeps_a_trial_alive_and_stops_at_the_end_of_the_block(tmp_path):
    study = study_with_queue(tmp_path, 1, grace=2)
    tid = pop_waiting_trial(study)
    name = "optuna internal get_heartbeat_thread changed"
    with heartbeat(tid, storage_of(study)):
        time.sleep(4)  # twice the grace period
        optuna.storages.fail_stale_trials(study)
        assert state(study, tid) == TrialState.RUNNING, f"{name}: no heartbeats while the block runs"
    wait_while_running(study, tid)
    assert state(study, tid) == TrialState.FAIL, f"{name}: heartbeats went on after the block (or none was recorded)"


def test_our_storage_wrapper_still_covers_every_abstract_method(tmp_path):
    """ResilientStorage forwards each BaseStorage / BaseHeartbeat method through its retry loop: a method a new
    Optuna adds (abstract, so every storage must have it) would leave it unusable, named here."""
    from robustbench_vit.store.resilient import ResilientStorage

    missing = sorted((BaseStorage.__abstractmethods__ | BaseHeartbeat.__abstractmethods__) - set(vars(ResilientStorage)))
    assert not missing, f"optuna storage API changed: ResilientStorage lacks {missing}"
    rdb = RDBStorage(f"sqlite:///{tmp_path / 's.db'}", heartbeat_interval=1, grace_period=2)
    storage = ResilientStorage(cached(rdb), "test", wait_s=1, grace_s=2)
    study = optuna.create_study(storage=storage, study_name="wrapped")
    study.add_trial(optuna.trial.create_trial(state=TrialState.WAITING))
    tid = pop_waiting_trial(study)
    assert isinstance(storage_of(study), BaseHeartbeat) and storage_of(study).get_trial(tid).state == TrialState.RUNNING
    with heartbeat(tid, storage_of(study)):  # the heartbeat thread accepts the wrapper
        time.sleep(1.5)
    wait_while_running(study, tid)
    assert state(study, tid) == TrialState.FAIL, "optuna internal fail_stale_trials no longer sees our wrapper"
