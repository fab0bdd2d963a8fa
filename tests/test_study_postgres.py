"""A real study against a real PostgreSQL server: two local worker processes share the storage."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import optuna
import pytest

from robustbench_vit.study.launch import run_study
from robustbench_vit.study.options import RunOptions
from tests.study_contract import MODELS, assert_stored, small_spec


@pytest.mark.slow
@pytest.mark.postgres
def test_study_runs_on_postgres_with_two_workers(postgres_url, tmp_path):
    """2 models x 2 points finish in PostgreSQL (nothing in SQLite); running again starts no trial."""
    spec, runs = small_spec(tmp_path, "pg"), tmp_path / "runs"
    summary = run_study(spec, RunOptions(runs_dir=runs, storage=postgres_url, executor="local", workers=2),
                        progress=False)
    assert summary.storage == postgres_url and summary.ran == 4
    for model in MODELS:
        counts = summary.counts[model]
        assert counts["complete"] + counts["diverged"] == 2 and counts["failed"] == counts["pending"] == 0
    assert_stored(postgres_url, spec, runs)
    assert not (runs / spec.name / "study.db").exists()

    again = run_study(spec, RunOptions(runs_dir=runs, storage=postgres_url, executor="inline"), progress=False)
    assert again.ran == 0 and again.counts == summary.counts


@pytest.mark.slow
@pytest.mark.postgres
def test_a_postgres_restart_mid_study_loses_and_repeats_nothing(postgres_server, tmp_path):
    """The server goes down while trials train, for longer than the heartbeat grace period, and comes back:
    `study run` waits (one line, no traceback) and exits 0; every trial is stored once, none was failed as stale
    and run again, none is lost."""
    url, runs = postgres_server["url"], tmp_path / "runs"
    spec = small_spec(tmp_path, "pgrestart", epochs=4)
    env = {**os.environ, "ROBUSTBENCH_VIT_GRACE_S": "6", "ROBUSTBENCH_VIT_STORAGE_WAIT_S": "120",
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "robustbench_vit.cli", "study", "run", spec.source, "--storage",
                             url, "--runs-dir", str(runs), "--workers", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 180
    while not list(runs.glob("*/trials/*/*/last.pt")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)  # the first epoch is checkpointed: trials are training
    assert proc.poll() is None, proc.communicate()
    postgres_server["restart"](12)  # down for twice the grace period
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "unreachable" in err and "reachable again" in err, err
    assert "4/4 trials finished (4 complete" in out or "4/4 trials finished" in out, out
    assert_stored(url, spec, runs)
    for model in MODELS:
        trials = optuna.load_study(study_name=f"{spec.name}/{model}", storage=url).trials
        assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2, trials  # no stale retry
