"""Opening Optuna storage: read-write for the harness (heartbeats, serialised SQLite writes, outages waited out),
read-only for the analysis (never creates a table or a file), and the studies a storage holds."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryFailedTrialCallback
from sqlalchemy import event

from robustbench_vit.errors import UserError
from robustbench_vit.store.optuna_internals import cached
from robustbench_vit.store.resilient import ResilientStorage, retry, storage_wait_s
from robustbench_vit.store.trials import split_study_name, study_name
from robustbench_vit.store.urls import Results, mask_url, sqlite_path, storage_errors, unmasked

HEARTBEAT_S = 5  # a running trial records a heartbeat this often ...
GRACE_S = 30  # ... and is failed as stale (then retried from its checkpoint) after this long without one

_STORAGES: dict[str, ResilientStorage] = {}


@contextmanager
def quiet_optuna() -> Iterator[None]:
    """Silence Optuna's per-trial INFO logs (and Sobol's power-of-two warning) inside the block."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        optuna.logging.set_verbosity(level)


def engine_kwargs(url: str, *, reader: bool = False) -> dict[str, Any]:
    """SQLAlchemy engine settings: SQLite waits 60 s for a lock (writers issue their own BEGIN); a server-backed
    pool checks a connection before use (pre-ping) and recycles it hourly, so a restarted database is reconnected."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60} if reader else {"timeout": 60, "isolation_level": None}}
    return {"pool_pre_ping": True, "pool_recycle": 3600}


def _sqlite_serial_writes(engine: Any) -> None:
    """SQLite with several processes: WAL, and BEGIN IMMEDIATE so read-then-write transactions never deadlock."""

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        """Take the write lock up front (waits up to the busy timeout instead of failing)."""
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    raw = engine.raw_connection()  # sqlite3 runs in autocommit mode (isolation_level=None): SQLAlchemy issues BEGIN
    try:
        raw.driver_connection.execute("PRAGMA journal_mode=WAL")
    finally:
        raw.close()


def open_storage(url: str, create: bool = True) -> ResilientStorage:
    """The process's Optuna storage for `url`, with heartbeats (stale trials are failed and re-queued).

    SQLite files get WAL, a 60 s lock timeout and serialised writes. The grace period before a silent running trial
    counts as stale is GRACE_S seconds, or $ROBUSTBENCH_VIT_GRACE_S. Every call rides through an outage of the
    database (see `resilient`); a storage that cannot be opened for another reason is a UserError.
    """
    url = unmasked(url)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        if not create:
            raise UserError(f"no study storage at {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        _STORAGES.pop(url, None)
    if url in _STORAGES:
        return _STORAGES[url]
    grace = int(os.environ.get("ROBUSTBENCH_VIT_GRACE_S", GRACE_S))

    def connect() -> RDBStorage:
        """A fresh RDB storage with heartbeats; SQLite files serialise their writes."""
        rdb = RDBStorage(url, heartbeat_interval=max(1, min(HEARTBEAT_S, grace // 3)), grace_period=grace,
                         heartbeat_stale_trial_callback=RetryFailedTrialCallback(max_retry=None),
                         engine_kwargs=engine_kwargs(url))
        if url.startswith("sqlite"):
            _sqlite_serial_writes(rdb.engine)
        return rdb

    with quiet_optuna(), storage_errors(url):
        rdb, _ = retry(connect, mask_url(url), storage_wait_s())
    _STORAGES[url] = ResilientStorage(cached(rdb), mask_url(url), wait_s=storage_wait_s(), grace_s=grace)
    return _STORAGES[url]


def open_reader(url: str) -> ResilientStorage:
    """A storage to read from: no table creation, and plain transactions (the harness's writers take BEGIN
    IMMEDIATE; a reader doing the same would queue behind a running study for every query)."""
    with storage_errors(url, "read"), quiet_optuna():
        rdb, _ = retry(lambda: RDBStorage(url, skip_table_creation=True, engine_kwargs=engine_kwargs(url, reader=True)),
                       mask_url(url), storage_wait_s())
    return ResilientStorage(rdb, mask_url(url), wait_s=storage_wait_s(), grace_s=0)


def load_study(name: str, model: str, url: str, sampler: optuna.samplers.BaseSampler | None = None) -> optuna.Study:
    """Load one existing model study (fixed points need no sampler; tpe slots pass theirs)."""
    with quiet_optuna():
        return optuna.load_study(study_name=study_name(name, model), storage=open_storage(url, create=False),
                                 sampler=sampler or optuna.samplers.RandomSampler())


def create_model_study(name: str, model: str, url: str) -> optuna.Study:
    """Create (or load) the Optuna study of one model of a study."""
    with quiet_optuna():
        return optuna.create_study(storage=open_storage(url), study_name=study_name(name, model),
                                   direction="minimize", load_if_exists=True)


def stored_models(name: str, url: str) -> list[str]:
    """The models stored for study `name` (in creation order)."""
    with quiet_optuna():
        names = optuna.get_all_study_names(open_storage(url, create=False))
    return [split_study_name(n)[1] for n in names if split_study_name(n)[0] == name]


def fail_stale(study: optuna.Study) -> None:
    """Fail the running trials whose heartbeat stopped (their retry callback re-queues them)."""
    with quiet_optuna():
        optuna.storages.fail_stale_trials(study)


def read_studies(study: str, urls: list[str]) -> list[tuple[str, optuna.Study]]:
    """(masked URL, Optuna study) of every `<study>/<model>` in the storages, opened read-only (UserError naming the
    studies present if there is none)."""
    found, present = [], set()
    for url in urls:
        storage = open_reader(url)
        with storage_errors(url, "read"), quiet_optuna():
            for s in optuna.get_all_study_summaries(storage, include_best_trial=False):
                owner, _ = split_study_name(s.study_name)
                present.add(owner)
                if owner == study:
                    found.append((mask_url(url), optuna.load_study(study_name=s.study_name, storage=storage)))
    if not found:
        where = ", ".join(mask_url(u) for u in urls)
        raise UserError(f"unknown study {study!r} in {where} (studies there: {', '.join(sorted(present)) or 'none'})")
    return found


def study_urls(study: str, results: Results) -> list[str]:
    """The storage URLs to read a study from; SQLite files must exist (reading never creates a database)."""
    urls = results.urls(study)
    for url in urls:
        path = sqlite_path(url)
        if path is None or path.is_file():
            continue
        if results.storage is None:
            present = sorted(p.parent.name for p in Path(results.runs_dir).glob("*/study.db"))
            raise UserError(f"unknown study {study!r}: no SQLite file {path} (runs dir {results.runs_dir}/) "
                            f"(studies in {results.runs_dir}/: {', '.join(present) or 'none'})")
        raise UserError(f"unknown study {study!r}: no SQLite file {path} (--storage)")
    return urls


def stored_study_names(results: Results) -> list[str]:
    """The studies a storage holds: the STUDY of its `STUDY/MODEL` Optuna studies, or the runs dir's `*/study.db`."""
    if results.storage:
        names = []
        for url in results.urls(""):
            with quiet_optuna():
                names += optuna.get_all_study_names(open_reader(url))
        return sorted({split_study_name(s)[0] for s in names})
    return sorted(p.parent.name for p in Path(results.runs_dir).glob("*/study.db"))


def study_attrs(study: str, results: Results) -> list[dict[str, Any]]:
    """The user attrs of every model study of `study` ([] when it is not stored)."""
    url = results.url(study)
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        return []
    return [s.user_attrs for s in open_storage(url, create=False).get_all_studies()
            if split_study_name(s.study_name)[0] == study]
