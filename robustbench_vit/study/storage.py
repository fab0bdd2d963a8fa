"""Optuna storage per the storage contract: where it lives, one study per (study, model), trial states."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryFailedTrialCallback
from optuna.trial import FrozenTrial, TrialState

from robustbench_vit.errors import UserError
from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.models.stems import stem_source
from robustbench_vit.study.optuna_internals import cached
from robustbench_vit.study.plan import Point, quiet_optuna
from robustbench_vit.study.resilient import ResilientStorage, retry, storage_wait_s
from robustbench_vit.study.spec import StudySpec

SCHEMA = 2  # 2: a seed per setting and an init seed per model (plan.setting_seed, plan.init_seed); 1: seed 0 for all
HEARTBEAT_S = 5  # a running trial records a heartbeat this often ...
GRACE_S = 30  # ... and is failed as stale (then retried from its checkpoint) after this long without one
# stopped: a hopeless trial stopped early (train.loop.hopeless), stored as Optuna's PRUNED; a result like diverged
STATES = ("complete", "diverged", "stopped", "failed", "running", "pending")
FINISHED = STATES[:4]  # what counts as done

PASSWORD_ENV = "ROBUSTBENCH_VIT_STORAGE_PASSWORD"  # the storage password of worker jobs (see job_url)


def resolve_storage(study: str, runs_dir: str | Path = "runs", storage: str | None = None) -> str:
    """The storage URL of a study: `storage` if given, else the SQLite file <runs_dir>/<study>/study.db."""
    if storage:
        return storage
    return f"sqlite:///{(Path(runs_dir) / study / 'study.db').resolve()}"


def _parsed(url: str) -> Any:
    """SQLAlchemy's URL object for `url`, or None for a string it cannot parse."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        return None


def mask_url(url: str) -> str:
    """The storage URL with any password replaced by *** (also for strings SQLAlchemy cannot parse): the one helper
    for every URL that is printed, logged, raised, stored or written into a file."""
    parsed = _parsed(url)
    if parsed is None:
        return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", url)
    return parsed.render_as_string(hide_password=True)


def job_url(url: str) -> str:
    """The URL to give worker jobs, whose pickles lie in the runs folder: masked, its password moved to
    $ROBUSTBENCH_VIT_STORAGE_PASSWORD, which local workers and SLURM jobs (sbatch exports the environment) inherit;
    `open_storage` puts it back."""
    parsed = _parsed(url)
    if parsed is None or not parsed.password:
        return url
    os.environ[PASSWORD_ENV] = str(parsed.password)
    return mask_url(url)


def _unmasked(url: str) -> str:
    """A `job_url` with its password back from the environment (any other URL as it is)."""
    parsed = _parsed(url)
    if parsed is None or parsed.password != "***" or PASSWORD_ENV not in os.environ:
        return url
    return parsed.set(password=os.environ[PASSWORD_ENV]).render_as_string(hide_password=False)


@contextmanager
def storage_errors(url: str, doing: str = "open") -> Iterator[None]:
    """Turn an unreachable server, a malformed URL or a missing driver into one UserError line (password masked)."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except (SQLAlchemyError, optuna.exceptions.StorageInternalError, ValueError, ImportError) as e:
        cause = e.__cause__ or e  # Optuna re-raises driver errors as generic ones
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        hint = "; name an installed driver, e.g. postgresql+psycopg2://" if isinstance(cause, ImportError) else ""
        raise UserError(f"storage {mask_url(url)}: cannot {doing} it ({first}{hint})") from None


def study_name(study: str, model: str) -> str:
    """The Optuna study name of one model in a study."""
    return f"{study}/{model}"


def trial_dir(runs_dir: str | Path, study: str, model: str, *, point: int, seed: int) -> Path:
    """Checkpoint folder of one (model, point, seed): shared by every attempt, so retries resume."""
    return Path(runs_dir) / study / "trials" / model / f"p{point}-s{seed}"


def _sqlite_serial_writes(engine: Any) -> None:
    """SQLite with several processes: WAL, and BEGIN IMMEDIATE so read-then-write transactions never deadlock."""
    from sqlalchemy import event

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        """Take the write lock up front (waits up to the busy timeout instead of failing)."""
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    raw = engine.raw_connection()  # sqlite3 runs in autocommit mode (isolation_level=None): SQLAlchemy issues BEGIN
    try:
        raw.driver_connection.execute("PRAGMA journal_mode=WAL")
    finally:
        raw.close()


_STORAGES: dict[str, ResilientStorage] = {}


def engine_kwargs(url: str, *, reader: bool = False) -> dict[str, Any]:
    """SQLAlchemy engine settings: SQLite waits 60 s for a lock (writers issue their own BEGIN); a server-backed
    pool checks a connection before use (pre-ping) and recycles it hourly, so a restarted database is reconnected."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60} if reader else {"timeout": 60, "isolation_level": None}}
    return {"pool_pre_ping": True, "pool_recycle": 3600}


def open_storage(url: str, create: bool = True) -> ResilientStorage:
    """The process's Optuna storage for `url`, with heartbeats (stale trials are failed and re-queued).

    SQLite files get WAL, a 60 s lock timeout and serialised writes. The grace period before a silent running trial
    counts as stale is GRACE_S seconds, or $ROBUSTBENCH_VIT_GRACE_S. Every call rides through an outage of the
    database (see `resilient`); a storage that cannot be opened for another reason is a UserError.
    """
    url = _unmasked(url)
    path = Path(url.split("///", 1)[1]) if url.startswith("sqlite") and "///" in url else None
    if path is not None and not path.exists():
        if not create:
            raise UserError(f"no study storage at {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        _STORAGES.pop(url, None)
    if url in _STORAGES:
        return _STORAGES[url]
    grace = int(os.environ.get("ROBUSTBENCH_VIT_GRACE_S", GRACE_S))

    def connect() -> RDBStorage:
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


def same_model(stored: dict[str, Any], model: ModelSpec) -> bool:
    """True if a stored model trains like `model`: same size, stem and stem options (and depth where both set)."""
    now = model.model_dump(mode="json")
    if any(stored.get(k) != now[k] for k in ("size", "stem", "stem_options")):
        return False
    return stored.get("depth") is None or now["depth"] is None or stored["depth"] == now["depth"]


def open_studies(spec: StudySpec, url: str, models: list[ModelSpec] | None = None) -> dict[str, optuna.Study]:
    """Create or load the Optuna study of each model, checking that stored ones were made by the same spec."""
    storage = open_storage(url)
    out = {}
    for model in models or spec.models:
        name = study_name(spec.name, model.name)
        with quiet_optuna():
            study = optuna.create_study(storage=storage, study_name=name, direction="minimize", load_if_exists=True)
        attrs = study.user_attrs
        if attrs.get("spec") is not None:
            stored = StudySpec.model_validate(attrs["spec"]).fingerprint()
            if attrs.get("schema", 1) < SCHEMA:
                raise UserError(f"{mask_url(url)}: study {name!r} was made under the old seeding rule (every trial of "
                                f"a model from one init seed); run it under another name or --runs-dir, or delete "
                                f"the old storage")
            if stored != spec.fingerprint() or not same_model(attrs.get("model") or {}, model):
                was = f" (preset {attrs.get('preset')})" if attrs.get("preset") else ""
                raise UserError(f"{mask_url(url)}: study {name!r} was made from a different spec{was}; run the "
                                f"changed study under another name or --runs-dir, or delete the old storage")
            stored_source = attrs.get("stem_source")
            if stored_source and stem_source(model.stem) != stored_source:
                raise UserError(f"{mask_url(url)}: stem file {stored_source['file']} changed since study {name!r} "
                                f"stored its trials; run the edited stem under another name (compare --name), "
                                f"or delete the old storage")
        else:
            for key, value in {"schema": SCHEMA, "study": spec.name, "model": model.model_dump(mode="json"),
                               "spec": spec.model_dump(mode="json"), "preset": spec.preset,
                               "stem_source": stem_source(model.stem)}.items():
                study.set_user_attr(key, value)
        out[model.name] = study
    return out


def load_study(name: str, model: str, url: str, sampler: optuna.samplers.BaseSampler | None = None) -> optuna.Study:
    """Load one existing model study (fixed points need no sampler; tpe slots pass theirs)."""
    with quiet_optuna():
        return optuna.load_study(study_name=study_name(name, model), storage=open_storage(url, create=False),
                                 sampler=sampler or optuna.samplers.RandomSampler())


def slot(trial: FrozenTrial) -> tuple[int, int]:
    """The (point, seed) a trial belongs to."""
    return int(trial.user_attrs["point"]), int(trial.user_attrs["seed"])


def is_result(trial: FrozenTrial) -> bool:
    """Whether a trial holds a stored result (never run again): COMPLETE, or PRUNED by the hopeless-trial rule."""
    return trial.state == TrialState.COMPLETE or (trial.state == TrialState.PRUNED and
                                                  trial.user_attrs.get("status") == "stopped")


def slot_states(trials: list[FrozenTrial]) -> dict[tuple[int, int], str]:
    """The state of each (point, seed): complete/diverged/stopped beat running, pending, failed (retries count once).

    A PRUNED trial is the harness's `stopped` (a result); one pruned by anything else counts as failed.
    """
    rank = {s: i for i, s in enumerate(STATES[:3] + ("running", "pending", "failed"))}
    out: dict[tuple[int, int], str] = {}
    for t in trials:
        if "point" not in t.user_attrs:
            continue
        if t.state == TrialState.COMPLETE:
            state = t.user_attrs.get("status", "complete")
        elif t.state == TrialState.PRUNED and t.user_attrs.get("status") == "stopped":
            state = "stopped"
        elif t.state == TrialState.RUNNING:
            state = "running"
        elif t.state == TrialState.WAITING:
            state = "pending"
        elif t.user_attrs.get("status") == "duplicate":
            continue
        else:
            state = "failed"
        key = slot(t)
        if key not in out or rank[state] < rank[out[key]]:
            out[key] = state
    return out


def count_states(study: optuna.Study) -> dict[str, int]:
    """Counts of (point, seed) slots by state."""
    counts = Counter(slot_states(study.get_trials(deepcopy=False)).values())
    return {s: counts.get(s, 0) for s in STATES}


def _retry_params(trials: list[FrozenTrial]) -> dict[tuple[int, int], FrozenTrial]:
    """Per (point, seed): its latest failed attempt with sampled params the trainer could take (tpe retries reuse them).

    A retry must train the same config, or it could not resume the failed attempt's checkpoint.
    """
    out = {}
    for t in trials:
        if t.state == TrialState.FAIL and t.params and "point" in t.user_attrs and \
                not str(t.user_attrs.get("message") or "").startswith("invalid config"):
            out[slot(t)] = t
    return out


def enqueue_missing(study: optuna.Study, points: list[Point], seeds: list[int]) -> int:
    """Queue every planned (point, seed) that is not done, running or queued (failed ones are retried); returns how many."""
    added = 0
    with quiet_optuna():
        optuna.storages.fail_stale_trials(study)
        trials = study.get_trials(deepcopy=False)
        have, failed = slot_states(trials), _retry_params(trials)
        for p in points:
            for s in seeds:
                if have.get((p.index, s), "failed") == "failed":
                    prev = failed.get((p.index, s)) if not p.params else None  # tpe slots: the failed sample
                    params = prev.params if prev else p.params  # else filled when claimed
                    dists = prev.distributions if prev else {k: p.distributions[k] for k in p.params}
                    study.add_trial(optuna.trial.create_trial(state=TrialState.WAITING, params=params,
                                                              distributions=dists,
                                                              user_attrs={"point": p.index, "seed": s}))
                    added += 1
    return added
