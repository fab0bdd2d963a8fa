"""The real optuna-dashboard on a storage our harness wrote: its HTTP API shows our studies, trials, params, user
attributes and per-epoch intermediate values (its learning curves). Needs `pip install -e '.[dashboard]'` (the
test extra includes it); skipped, saying so, where optuna-dashboard is not installed."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from robustbench_vit.store import resolve_storage
from robustbench_vit.study.launch import run_study
from robustbench_vit.study.options import RunOptions
from tests.study_contract import LRS, MODELS, small_spec

pytest.importorskip("optuna_dashboard", reason="optuna-dashboard is not installed: pip install -e '.[dashboard]'")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(base: str, path: str) -> dict:
    with urllib.request.urlopen(base + path, timeout=30) as r:
        return json.loads(r.read())


@pytest.fixture
def dashboard(tmp_path):
    """A small finished study of ours (2 micro models x 2 lr points, 2 epochs) in SQLite, and optuna-dashboard
    (its own command) serving that storage on a free port: (spec, base URL)."""
    spec, runs = small_spec(tmp_path, "dash", epochs=2), tmp_path / "runs"
    run_study(spec, RunOptions(runs_dir=runs, executor="inline"), progress=False)
    port = _free_port()
    command = Path(sys.executable).with_name("optuna-dashboard")
    proc = subprocess.Popen([str(command), resolve_storage(spec.name, runs), "--host", "127.0.0.1", "--port",
                             str(port), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
    try:
        while True:
            try:
                _get(base, "/api/meta")
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout and proc.stdout.read()
                time.sleep(0.2)
        yield spec, base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_optuna_dashboard_shows_our_studies_trials_and_learning_curves(dashboard):
    spec, base = dashboard
    studies = {s["study_name"]: s for s in _get(base, "/api/studies")["study_summaries"]}
    assert set(studies) == {f"{spec.name}/{m}" for m in MODELS}
    for model in MODELS:
        summary = studies[f"{spec.name}/{model}"]
        assert summary["directions"] == ["minimize"]
        assert {a["key"] for a in summary["user_attrs"]} >= {"schema", "study", "model", "spec", "preset"}
        detail = _get(base, f"/api/studies/{summary['study_id']}")
        assert detail["has_intermediate_values"] is True
        trials = detail["trials"]
        assert [t["state"] for t in trials] == ["Complete", "Complete"]
        assert sorted(float(p["param_external_value"]) for t in trials for p in t["params"]) == sorted(LRS)
        assert {p["name"] for t in trials for p in t["params"]} == {"lr"}
        for t in trials:
            attrs = {a["key"]: a["value"] for a in t["user_attrs"]}
            assert {"point", "seed", "status", "final_error", "min_error", "history", "config", "worker"} <= set(attrs)
            assert attrs["status"] in ("complete", "diverged") and float(attrs["final_error"]) == t["values"][0]
            assert [v["step"] for v in t["intermediate_values"]] == [0, 1]  # one per epoch: the learning curve
            assert t["intermediate_values"][-1]["value"] == pytest.approx(float(attrs["final_error"]))
