"""Waiting out an unreachable storage: which errors count as an outage, the backoff, the give-up line, the
heartbeat that skips instead of failing. The end-to-end proof (a real PostgreSQL restart mid-study) is in
test_study_postgres.py; here the outage is a real SQLAlchemy error raised by a stand-in for the database."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, exc, text

from robustbench_vit.errors import UserError
from robustbench_vit.store.resilient import StorageUnreachable, retry, unreachable


def refused() -> exc.OperationalError:
    """The error SQLAlchemy raises for a database that refuses connections (from a real failed connect)."""
    try:
        create_engine("sqlite:////nonexistent-dir/x.db").connect().execute(text("select 1"))
    except exc.OperationalError as e:
        return e
    raise AssertionError("connecting to a file in a missing folder succeeded")


def test_outages_are_told_apart_from_bad_requests():
    assert unreachable(refused())
    wrapped = RuntimeError("optuna re-raised it")
    wrapped.__cause__ = refused()
    assert unreachable(wrapped)  # Optuna's StorageInternalError keeps the driver error as its cause
    assert not unreachable(exc.IntegrityError("insert", {}, Exception("duplicate key")))
    assert not unreachable(ValueError("bad value"))
    try:
        create_engine("sqlite://").connect().execute(text("select * from studies"))
    except exc.OperationalError as e:
        assert not unreachable(e)  # a file that is not a study storage: no point in waiting


def test_retry_waits_out_an_outage_with_one_line_each_way(capsys):
    calls = []

    def flaky():
        calls.append(time.monotonic())
        if len(calls) < 4:
            raise refused()
        return "ok"

    assert retry(flaky, "sqlite:///x", wait_s=30) == ("ok", True)
    gaps = [b - a for a, b in zip(calls, calls[1:])]
    assert gaps[0] >= 0.5 and gaps[1] >= 1.0 and gaps[2] >= 2.0  # backoff doubles
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "unreachable" in err[0] and "retrying for 30 s" in err[0], err
    assert "reachable again after" in err[1]
    assert retry(lambda: 1, "x", wait_s=30) == (1, False) and capsys.readouterr().err == ""


def test_retry_gives_up_with_one_user_error_line():
    def down():
        raise refused()

    t0 = time.monotonic()
    with pytest.raises(StorageUnreachable, match=r"storage db: unreachable for 1 s \(.*\); start it again") as e:
        retry(down, "db", wait_s=1)
    assert isinstance(e.value, UserError) and 1 <= time.monotonic() - t0 < 5
    with pytest.raises(ValueError):  # not an outage: raised at once
        retry(lambda: (_ for _ in ()).throw(ValueError("bad")), "db", wait_s=30)
