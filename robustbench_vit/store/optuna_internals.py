"""Every Optuna internal we rely on, behind one door (tests/test_optuna_internals.py checks each still fits).

Workers claim queued trials one at a time and train them outside Study.optimize, so they need a few of the
pieces Study.ask and Study.optimize use inside; nothing else in the package touches Optuna's private API.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import optuna
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages._cached_storage import _CachedStorage
from optuna.storages._heartbeat import BaseHeartbeat, get_heartbeat_thread

__all__ = ["BaseHeartbeat", "cached", "heartbeat", "open_trial", "pop_waiting_trial", "record_heartbeat",
           "storage_of"]


def cached(storage: RDBStorage) -> BaseStorage:
    """The RDB storage behind Optuna's own cache of finished trials (_CachedStorage, what get_storage wraps it in).

    BaseHeartbeat (also used from here) is the interface `fail_stale_trials` and the heartbeat thread require of a
    storage: `record_heartbeat`, `_get_stale_trial_ids`, `get_heartbeat_interval` and the stale-trial callback.
    """
    return _CachedStorage(storage)


def storage_of(study: optuna.Study) -> BaseStorage:
    """The storage a study works on (Study._storage): trial-level writes on a claimed trial need it."""
    return study._storage


def pop_waiting_trial(study: optuna.Study) -> int | None:
    """Atomically claim a WAITING trial as Study.ask does (Study._pop_waiting_trial_id): its id, or None."""
    return study._pop_waiting_trial_id()


def open_trial(study: optuna.Study, trial_id: int) -> optuna.Trial:
    """A Trial on a claimed trial, as Study.ask makes one (Trial(study, trial_id)): to suggest its params."""
    return optuna.Trial(study, trial_id)


def record_heartbeat(storage: BaseStorage, trial_id: int) -> None:
    """One heartbeat now (BaseHeartbeat.record_heartbeat): a claimed trial counts as alive from the start."""
    storage.record_heartbeat(trial_id)  # type: ignore[attr-defined]  # RDBStorage (and its cache) are BaseHeartbeats


@contextmanager
def heartbeat(trial_id: int, storage: BaseStorage) -> Iterator[None]:
    """Heartbeats in a thread inside the block (get_heartbeat_thread, as in Study.optimize): stale if we die."""
    with get_heartbeat_thread(trial_id, storage):
        yield
