"""A real study against a real PostgreSQL server: two local worker processes share the storage."""

from __future__ import annotations

import pytest
from tests.study_contract import MODELS, assert_stored, small_spec

from robustbench_vit.study.launch import run_study
from robustbench_vit.study.options import RunOptions


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
