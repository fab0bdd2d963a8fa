"""run_study end to end with real training (micro models, digits, 1-6 epochs) and real SQLite storage.

Resume, Ctrl-C and SIGKILL are tested on real `robustbench-vit study run` processes; nothing is mocked.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch

from robustbench_vit.cli import main
from robustbench_vit.errors import UserError
from robustbench_vit.store import FINISHED, Results, resolve_storage
from robustbench_vit.study.files import load_spec
from robustbench_vit.study.launch import run_study
from robustbench_vit.study.options import RunOptions
from robustbench_vit.study.status import study_status
from tests.study_contract import MODELS, assert_stored, small_spec

DONE = optuna.trial.TrialState.COMPLETE


def trials(url: str, name: str, model: str) -> list[optuna.trial.FrozenTrial]:
    """All trials of one model study, read with plain Optuna."""
    return optuna.load_study(study_name=f"{name}/{model}", storage=url).trials


def test_inline_run_stores_the_contract_and_runs_nothing_twice(tmp_path, capsys):
    """A study run writes the storage contract; running it again runs 0 trials; status counts them."""
    spec, runs = small_spec(tmp_path, "inline"), tmp_path / "runs"
    summary = run_study(spec, RunOptions(runs_dir=runs), progress=False)
    url = resolve_storage(spec.name, runs)
    assert summary.storage == url == f"sqlite:///{(runs / spec.name / 'study.db').resolve()}"
    assert (summary.ran, summary.total, summary.done) == (4, 4, 4)
    first = assert_stored(url, spec, runs)
    again = run_study(spec, RunOptions(runs_dir=runs), progress=False)
    assert again.ran == 0
    assert {m: [t.number for t in trials(url, spec.name, m)] for m in MODELS} == {
        m: [t.number for t in first[m]] for m in MODELS}
    counts = study_status(spec.name, Results.of(runs))
    assert set(counts) == set(MODELS) and all(sum(c.values()) == 2 and c["complete"] + c["diverged"] == 2
                                              for c in counts.values())
    assert main(["study", "status", spec.name, "--runs-dir", str(runs), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == counts


def test_tpe_and_spec_changes(tmp_path):
    """tpe slots get sampled params inside the space; a changed spec on the same storage is refused, one line."""
    path = tmp_path / "adaptive.yaml"
    path.write_text("models: [vit_p_micro, vit_c_micro]\ntrain: {epochs: 1, batch_size: 256}\n"
                    "space:\n  lr: {low: 1.0e-4, high: 1.0e-1, log: true}\ndesign: {kind: tpe, points: 3, seed: 1}\n")
    runs = tmp_path / "runs"
    summary = run_study(load_spec(str(path)), RunOptions(runs_dir=runs), progress=False)
    assert summary.done == 6
    url = resolve_storage("adaptive", runs)
    for m in MODELS:
        lrs = [t.params["lr"] for t in trials(url, "adaptive", m)]
        assert len(set(lrs)) == 3 and all(1e-4 <= v <= 1e-1 for v in lrs)
    path.write_text(path.read_text().replace("high: 1.0e-1", "high: 1.0"))
    with pytest.raises(UserError, match="was made from a different spec"):
        run_study(load_spec(str(path)), RunOptions(runs_dir=runs), progress=False)


@pytest.mark.slow
def test_local_workers_run_the_same_plan_as_inline(tmp_path):
    """--executor local --workers 2 yields the same (point, seed, params) trials as inline, paired across models."""
    spec = small_spec(tmp_path, "paired")
    run_study(spec, RunOptions(runs_dir=tmp_path / "a", executor="inline"), progress=False)
    summary = run_study(spec, RunOptions(runs_dir=tmp_path / "b", executor="local", workers=2), progress=False)
    assert summary.done == 4

    def planned(runs: Path) -> dict:
        url = resolve_storage(spec.name, runs)
        return {m: sorted((t.user_attrs["point"], t.user_attrs["seed"], t.params["lr"])
                          for t in trials(url, spec.name, m) if t.state == DONE) for m in MODELS}

    a, b = planned(tmp_path / "a"), planned(tmp_path / "b")
    assert a == b and a[MODELS[0]] == a[MODELS[1]] and len(a[MODELS[0]]) == 2
    configs = {t.user_attrs["config"]["threads"] for m in MODELS
               for t in trials(resolve_storage(spec.name, tmp_path / "b"), spec.name, m)}
    assert configs == {max(1, (os.cpu_count() or 1) // 2)}  # each worker its share of the CPU threads


def _start(path: Path, runs: Path, workers: int = 1) -> subprocess.Popen:
    """`robustbench-vit study run` in its own process group (one worker: it trains inline, in the process).

    Its SIGINT is the default, as under a user's terminal: a test suite started in the background of a shell
    inherits SIGINT ignored, and Python then never turns Ctrl-C into KeyboardInterrupt.
    """
    return subprocess.Popen([sys.executable, "-m", "robustbench_vit.cli", "study", "run", str(path), "--runs-dir",
                             str(runs), "--workers", str(workers)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_checkpoint(runs: Path, proc: subprocess.Popen, timeout: float = 240) -> Path:
    """The first trial folder with a last.pt whose trial is not finished (a trial killed there is mid-way)."""
    end = time.time() + timeout
    while time.time() < end:
        assert proc.poll() is None, proc.communicate()
        for ckpt in sorted(runs.glob("*/trials/*/*/last.pt")):
            try:
                state = torch.load(ckpt, weights_only=False)
            except Exception:  # noqa: BLE001 — being written right now
                continue
            if state.get("result") is None:
                return ckpt
        time.sleep(0.2)
    raise AssertionError("no trial checkpoint appeared")


SLOW_YAML = ("models: [vit_p_micro, vit_c_micro]\ntrain: {epochs: 6, batch_size: 256, threads: 1}\n"
             "space:\n  lr: {values: [0.001, 0.003]}\n")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigint", "sigkill"])
def test_interrupted_study_resumes_only_the_rest(how, tmp_path):
    """Ctrl-C puts the running trial back in the queue; SIGKILL leaves it stale until its heartbeat grace runs out.

    Either way `study run` again finishes only the rest: the trial resumes from its checkpoint (its first epochs
    are the ones trained before the kill), nothing finished is re-run, and each slot ends with one result.
    """
    path, runs = tmp_path / f"resume_{how}.yaml", tmp_path / "runs"
    path.write_text(SLOW_YAML)
    proc = _start(path, runs)
    ckpt = _wait_for_checkpoint(runs, proc)
    before = torch.load(ckpt, weights_only=False)["history"]
    proc.send_signal(signal.SIGINT if how == "sigint" else signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    url = resolve_storage(path.stem, runs)
    counts = study_status(path.stem, Results.of(runs))
    if how == "sigint":
        assert proc.returncode == 130 and "Resume with: robustbench-vit study run" in err, err
        assert sum(c["running"] for c in counts.values()) == 0 and sum(c["pending"] for c in counts.values()) >= 1
    else:
        assert sum(c["running"] for c in counts.values()) == 1
    finished = {m: {t.number for t in trials(url, path.stem, m) if t.state == DONE} for m in MODELS}
    env = {**os.environ, "ROBUSTBENCH_VIT_GRACE_S": "3"}
    again = subprocess.run([sys.executable, "-m", "robustbench_vit.cli", "study", "run", str(path), "--runs-dir",
                            str(runs)], capture_output=True, text=True, env=env, timeout=400)
    assert again.returncode == 0, again.stderr
    assert f"{sum(map(len, finished.values()))} ran now" not in again.stdout
    for m in MODELS:
        ts = trials(url, path.stem, m)
        done = [t for t in ts if t.state == DONE]
        assert sorted(t.user_attrs["point"] for t in done) == [0, 1]  # one result per slot
        assert finished[m] <= {t.number for t in done}  # finished trials were kept, not re-run
        assert not [t for t in ts if t.state in (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)]
    model, slot = ckpt.parent.parent.name, ckpt.parent.name
    resumed = next(t for t in trials(url, path.stem, model) if t.state == DONE
                   and f"p{t.user_attrs['point']}-s{t.user_attrs['seed']}" == slot)
    assert resumed.user_attrs["epochs_run"] == 6
    assert resumed.user_attrs["history"][:len(before)] == before  # resumed from last.pt, not restarted
    if how == "sigkill":  # the stale attempt was failed and retried in a new trial
        assert any(t.state == optuna.trial.TrialState.FAIL for t in trials(url, path.stem, model))


@pytest.mark.slow
def test_local_workers_of_a_killed_study_run_finish_their_trial_and_stop(tmp_path):
    """SIGKILL of `study run` alone (its workers live on): each worker stores the trial it trains, claims no other.

    Then `study run` again runs the rest with workers of its own: every slot ends with exactly one result.
    """
    path, runs = tmp_path / "orphans.yaml", tmp_path / "runs"
    path.write_text(SLOW_YAML.replace("epochs: 6", "epochs: 15"))  # 4 trials, each long enough to be caught
    proc = _start(path, runs, workers=2)
    _wait_for_checkpoint(runs, proc)
    proc.kill()  # the launcher only; its two workers keep running
    try:
        proc.communicate(timeout=180)  # returns once the workers, which hold its pipes, have exited too
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError("the workers of the killed study run kept going") from None
    counts = study_status(path.stem, Results.of(runs))
    assert sum(c["running"] for c in counts.values()) == 0
    assert sum(c[s] for c in counts.values() for s in FINISHED) <= 2  # the two they were training, no more
    assert sum(c["pending"] for c in counts.values()) >= 2
    again = subprocess.run([sys.executable, "-m", "robustbench_vit.cli", "study", "run", str(path), "--runs-dir",
                            str(runs)], capture_output=True, text=True, timeout=400)
    assert again.returncode == 0, again.stderr
    url = resolve_storage(path.stem, runs)
    for m in MODELS:
        assert sorted(t.user_attrs["point"] for t in trials(url, path.stem, m) if t.state == DONE) == [0, 1]


@pytest.mark.slow
def test_four_local_workers_complete_64_trials_on_sqlite(tmp_path):
    """4 worker processes, one SQLite file, 64 real 1-epoch trials: all done, none twice, no lock errors."""
    path, runs = tmp_path / "many.yaml", tmp_path / "runs"
    path.write_text("models: [vit_p_micro, vit_c_micro]\ntrain: {epochs: 1, batch_size: 512, augment: false}\n"
                    "space:\n  lr: {low: 1.0e-4, high: 1.0e-1, log: true, num: 32}\n")
    summary = run_study(load_spec(str(path)), RunOptions(runs_dir=runs, executor="local", workers=4),
                        progress=False)
    assert (summary.total, summary.done, summary.ran) == (64, 64, 64)
    url = resolve_storage("many", runs)
    for m in MODELS:
        ts = trials(url, "many", m)
        assert len(ts) == 32 and all(t.state == DONE for t in ts)  # exactly one trial per slot: no duplicates
        assert sorted(t.user_attrs["point"] for t in ts) == list(range(32))
    logs = " ".join(p.read_text() for p in (runs / "many" / "submitit").glob("*.err"))
    assert "database is locked" not in logs and len(list((runs / "many" / "submitit").glob("*_result.pkl"))) >= 4
