"""Storage outages are waited out: a database restart or a network blip must not fail a trial that has trained for
hours, nor print a traceback. Every storage call retries (reconnecting, with backoff) for up to a few minutes.

The heartbeat half subclasses Optuna's BaseHeartbeat (through `optuna_internals`, the one door to its internals).
"""

from __future__ import annotations

import abc
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from optuna.storages import BaseStorage
from sqlalchemy import exc

from robustbench_vit.errors import UserError
from robustbench_vit.store.optuna_internals import BaseHeartbeat

STORAGE_WAIT_S = 300.0  # default; $ROBUSTBENCH_VIT_STORAGE_WAIT_S (or --storage-wait) overrides it
MAX_BACKOFF_S = 5.0
NOT_OUTAGES = ("no such table", "no such column", "syntax error")  # SQLite's OperationalErrors that will not pass


class StorageUnreachable(UserError):
    """The storage stayed unreachable for the whole wait (one line: masked URL, how long, the driver's words)."""


def unreachable(e: BaseException | None) -> bool:
    """Whether `e` (or an exception it was raised from) says the database could not be reached, rather than that
    a request was wrong: connection refused or lost, server restarting, SQLite locked past its timeout."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, exc.OperationalError) and any(s in str(e) for s in NOT_OUTAGES):
            return False
        if isinstance(e, (exc.OperationalError, exc.InterfaceError, exc.DisconnectionError)) or \
                (isinstance(e, exc.DBAPIError) and e.connection_invalidated):
            return True
        e = e.__cause__ or e.__context__
    return False


def _first_line(e: BaseException) -> str:
    """The most telling line of a driver error (the root cause's first line)."""
    while e.__cause__ is not None:
        e = e.__cause__
    text = str(getattr(e, "orig", None) or e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def retry(fn: Callable[[], Any], label: str, wait_s: float) -> tuple[Any, bool]:
    """fn(), retried with backoff (0.5 s doubling to 5 s) while the database is unreachable, for up to `wait_s`
    seconds with one line on stderr when the outage starts and one when it ends; then StorageUnreachable.

    Returns fn's value and whether it had to wait.
    """
    deadline, delay, since = None, 0.5, time.monotonic()
    while True:
        try:
            out = fn()
        except Exception as e:
            if not unreachable(e):
                raise
            now = time.monotonic()
            if deadline is None:
                deadline, since = now + wait_s, now
                _say(f"storage {label} unreachable ({_first_line(e)}), retrying for {wait_s:.0f} s")
            if now >= deadline:
                raise StorageUnreachable(f"storage {label}: unreachable for {wait_s:.0f} s ({_first_line(e)}); "
                                         f"start it again and re-run the same command (nothing finished is "
                                         f"lost)") from None
            time.sleep(min(delay, deadline - now))
            delay = min(2 * delay, MAX_BACKOFF_S)
            continue
        if deadline is not None:
            _say(f"storage {label} reachable again after {time.monotonic() - since:.0f} s")
        return out, deadline is not None


def storage_wait_s() -> float:
    """How long storage calls wait for an unreachable database: $ROBUSTBENCH_VIT_STORAGE_WAIT_S, else the default."""
    return float(os.environ.get("ROBUSTBENCH_VIT_STORAGE_WAIT_S", STORAGE_WAIT_S))


class ResilientStorage(BaseStorage, BaseHeartbeat):
    """An Optuna storage whose every call rides through an outage of the database behind it.

    A call that fails because the database cannot be reached is retried with exponential backoff (0.5 s doubling
    to 5 s) for up to `wait_s` seconds, after one line on stderr; then StorageUnreachable. Heartbeats never wait
    and never raise: a missed one is skipped, the next is tried on time. For `grace_s` after an outage ends, this
    process reports no trial as stale: the other workers' heartbeats stopped for the same outage and need a
    moment to resume, so a trial that kept training through it is not re-run elsewhere.
    """

    def __init__(self, inner: BaseStorage, label: str, *, wait_s: float, grace_s: float) -> None:
        self._inner, self._label, self._wait_s, self._grace_s = inner, label, wait_s, grace_s
        self._recovered_at = -math.inf
        self._lock = threading.Lock()
        self._heartbeat_down = False

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """inner.name(*args, **kwargs), retried while the database is unreachable."""
        out, outage = retry(lambda: getattr(self._inner, name)(*args, **kwargs), self._label, self._wait_s)
        if outage:
            self._recovered_at = time.monotonic()
        return out

    def attempt(self, name: str, *args: Any, **kwargs: Any) -> bool:
        """inner.name(*args, **kwargs) once, for what may be skipped (a live progress report): False, and no wait,
        while the database is unreachable."""
        try:
            getattr(self._inner, name)(*args, **kwargs)
        except Exception as e:
            if not unreachable(e):
                raise
            return False
        return True

    def record_heartbeat(self, trial_id: int) -> None:
        """One heartbeat, or none while the database is unreachable (the heartbeat thread tries again on time)."""
        try:
            self._inner.record_heartbeat(trial_id)  # type: ignore[attr-defined]
        except Exception as e:
            if not unreachable(e):
                raise
            with self._lock:
                first, self._heartbeat_down = not self._heartbeat_down, True
            if first:
                _say(f"storage {self._label} unreachable: heartbeats skipped until it is back ({_first_line(e)})")
            self._recovered_at = math.inf  # no stale verdicts from this process until a call succeeds again
            return
        if self._heartbeat_down:
            with self._lock:
                self._heartbeat_down = False
            self._recovered_at = time.monotonic()

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        """Stale trials, except right after an outage (others' heartbeats are catching up): none then."""
        if time.monotonic() - self._recovered_at < self._grace_s:
            return []
        stale = self._call("_get_stale_trial_ids", study_id)
        # asked again after the call: an outage it waited out ends just now, before anyone's heartbeat resumed
        return [] if time.monotonic() - self._recovered_at < self._grace_s else stale

    def get_heartbeat_interval(self) -> int | None:
        return self._inner.get_heartbeat_interval()  # type: ignore[attr-defined]

    def get_heartbeat_stale_trial_callback(self) -> Any:
        return self._inner.get_heartbeat_stale_trial_callback()  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> Any:
        """Anything else (an engine, a cache detail) from the wrapped storage."""
        return getattr(self.__dict__["_inner"], name)


def _retrying(name: str):
    """A ResilientStorage method that forwards `name` through the retry loop."""
    def method(self: ResilientStorage, *args: Any, **kwargs: Any) -> Any:
        return self._call(name, *args, **kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"BaseStorage.{name}, riding through storage outages."
    return method


STORAGE_METHODS = ("create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
                   "get_study_id_from_name", "get_study_name_from_id", "get_study_directions",
                   "get_study_user_attrs", "get_study_system_attrs", "get_all_studies", "create_new_trial",
                   "set_trial_param", "get_trial_id_from_study_id_trial_number", "get_trial_number_from_id",
                   "get_trial_param", "set_trial_state_values", "set_trial_intermediate_value",
                   "set_trial_user_attr", "set_trial_system_attr", "get_trial", "get_all_trials", "get_n_trials",
                   "get_best_trial", "get_trial_params", "get_trial_user_attrs", "get_trial_system_attrs",
                   "remove_session", "check_trial_is_updatable")
for _name in STORAGE_METHODS:
    setattr(ResilientStorage, _name, _retrying(_name))
abc.update_abstractmethods(ResilientStorage)


def _say(line: str) -> None:
    """One line on stderr, now (workers' stderr goes to their logs)."""
    print(f"robustbench-vit: {line}", file=sys.stderr, flush=True)
