"""A real study through the local SLURM cluster: one trial per array task, results in the default SQLite storage."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import optuna
import pytest
import torch

from robustbench_vit.cli import main
from robustbench_vit.store import count_states
from robustbench_vit.study.files import load_spec
from robustbench_vit.study.launch import run_study
from robustbench_vit.study.options import RunOptions, SlurmOptions
from tests.study_contract import assert_stored, small_spec


def job_states(name: str, timeout: float = 60) -> list[str]:
    """Accounting states of the jobs called `name`, once none is pending or running (results land before exit)."""
    deadline = time.monotonic() + timeout
    while True:
        states = subprocess.run(["sacct", "-n", "-X", "-P", f"--name={name}", "-o", "State"],
                                capture_output=True, text=True, check=True).stdout.split()
        if not {"PENDING", "RUNNING", "COMPLETING", "REQUEUED"} & set(states) or time.monotonic() > deadline:
            return states
        time.sleep(0.5)


def slurm_options(cluster: dict, folder, **extra) -> SlurmOptions:
    """Small jobs that fit the one-node test cluster, logs in `folder`."""
    return SlurmOptions(partition=cluster["partition"], cpus_per_task=1, mem_gb=1, timeout_min=10,
                        array_parallelism=2, folder=str(folder), **extra)


@pytest.mark.slow
@pytest.mark.slurm
def test_study_runs_through_slurm(slurm_cluster, tmp_path, capsys):
    """`study run --detach` submits one SLURM job per trial and returns; running again waits for those jobs
    (submitting none twice); accounting records them, the storage holds the contract."""
    spec, runs = small_spec(tmp_path, "slurm"), tmp_path / "runs"
    assert main(["study", "run", spec.source, "--runs-dir", str(runs), "--executor", "slurm", "--detach",
                 "--slurm-partition", slurm_cluster["partition"], "--slurm-cpus", "1", "--slurm-timeout-min", "10",
                 "--slurm-array-parallelism", "2", "--slurm-option", "mem=1G"]) == 0
    out = capsys.readouterr().out
    assert "4 SLURM job(s) queued or running for 4 unfinished trial(s)" in out and f"study status {spec.name}" in out
    assert "--executor slurm (and the same --slurm-* options)" in out  # a plain rerun would train on this node
    options = RunOptions(runs_dir=runs, executor="slurm",
                         slurm=slurm_options(slurm_cluster, runs / spec.name / "submitit"))
    summary = run_study(spec, options, progress=False)
    assert summary.done == 4 and summary.storage.startswith("sqlite:///")
    assert_stored(summary.storage, spec, runs)
    states = job_states(f"rbv-{spec.name}")
    assert states.count("COMPLETED") == 4 and not {"FAILED", "TIMEOUT", "OUT_OF_MEMORY"} & set(states), states


@pytest.mark.slurm
def test_slurm_refusals_are_one_line(slurm_cluster, tmp_path, capsys):
    """The real controller's answers: an unknown partition is refused before anything is written; a submission
    sbatch rejects (an unknown node feature) is one line too, and its queued trials stay queued for the next run;
    so is a job SLURM accepts but can never start (more CPUs than the node has)."""
    spec, runs = small_spec(tmp_path, "refused"), tmp_path / "runs"
    base = ["study", "run", spec.source, "--runs-dir", str(runs), "--executor", "slurm"]
    assert main([*base, "--slurm-partition", "gpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"SLURM partition 'gpu' does not exist; allowed: {slurm_cluster['partition']}"), err
    assert not runs.exists()
    assert main([*base, "--slurm-partition", slurm_cluster["partition"], "--slurm-option", "constraint=nonexistent"]) \
        == 2
    err = capsys.readouterr().err.strip()  # after the progress bar had started: the last line, no traceback
    assert "Traceback" not in err and err.splitlines()[-1].startswith("robustbench-vit: error: SLURM refused the job "
                                                                       "submission"), err
    assert "Invalid feature specification" in err.splitlines()[-1], err
    url = f"sqlite:///{runs / spec.name / 'study.db'}"
    queued = optuna.load_study(study_name=f"{spec.name}/vit_c_micro", storage=url).get_trials(deepcopy=False)
    assert [t.state for t in queued] == [optuna.trial.TrialState.WAITING] * 2
    # sbatch takes a job of more tasks than the node has CPUs, which then pends for ever: one line, job cancelled
    too_big = str(slurm_cluster["cpus"] + 1)
    assert main([*base, "--slurm-partition", slurm_cluster["partition"], "--trials-per-gpu", too_big,
                 "--slurm-cpus", too_big, "--slurm-option", "mem=1G"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("robustbench-vit: error: SLURM job ") and "can never start in partition 'debug' " \
        "(PartitionConfig)" in err and f"{too_big} CPU(s) in all" in err, err
    assert not subprocess.run(["squeue", "-h", f"--name=rbv-{spec.name}"], capture_output=True, text=True,
                              check=True).stdout.strip()
    queued = optuna.load_study(study_name=f"{spec.name}/vit_c_micro", storage=url).get_trials(deepcopy=False)
    assert [t.state for t in queued] == [optuna.trial.TrialState.WAITING] * 2


PREEMPT_YAML = """\
models: [vit_c_micro]
dataset: digits
train: {epochs: 6, batch_size: 128, weight_decay: 0.05}
space:
  lr: {values: [0.001]}
"""


def wait_for(path, timeout: float = 120) -> None:
    """Block until `path` exists."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear in {timeout} s"
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.slurm
def test_preempted_trial_resumes_from_its_checkpoint(slurm_cluster, tmp_path):
    """Preempt the job mid-trial (SIGTERM then USR2, as SLURM does): it requeues and the trial resumes at its epoch."""
    path = tmp_path / f"preempt_{uuid.uuid4().hex[:8]}.yaml"  # a job name no earlier run of the cluster used
    path.write_text(PREEMPT_YAML)
    spec, runs = load_spec(str(path)), tmp_path / "runs"
    # the study in a child process, stopped whatever happens: a failed wait here must not leave it waiting on SLURM
    study = subprocess.Popen([sys.executable, "-m", "robustbench_vit.cli", "study", "run", str(path), "--runs-dir",
                              str(runs), "--executor", "slurm", "--slurm-partition", slurm_cluster["partition"],
                              "--slurm-cpus", "1", "--slurm-option", "mem=1G", "--slurm-timeout-min", "10"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        ckpt = runs / spec.name / "trials" / "vit_c_micro" / "p0-s0" / "last.pt"
        wait_for(ckpt)
        before = torch.load(ckpt, weights_only=True)["history"]
        job = subprocess.run(["squeue", "-h", "-o", "%i", f"--name=rbv-{spec.name}"], capture_output=True,
                             text=True, check=True).stdout.split()[0]
        for sig in ("SIGTERM", "USR2"):  # what submitit's SlurmJob._interrupt sends for a preemption
            subprocess.run(["scancel", "--signal", sig, job], check=True)
        out, _ = study.communicate(timeout=300)
    finally:
        study.kill()
    assert study.returncode == 0, out
    url = f"sqlite:///{runs / spec.name / 'study.db'}"
    stored = optuna.load_study(study_name=f"{spec.name}/vit_c_micro", storage=url)
    counts = count_states(stored)  # per slot: an attempt the preemption ended may be stored too, as failed
    assert counts == {**dict.fromkeys(counts, 0), "complete": 1}, (counts, out)
    assert 1 <= len(before) < 6
    history = stored.best_trial.user_attrs["history"]
    assert [h["epoch"] for h in history] == list(range(6))
    assert history[:len(before)] == before  # the epochs before the preemption were kept, not trained again
    states = subprocess.run(["sacct", "-n", "-X", "-D", "-P", f"--name=rbv-{spec.name}", "-o", "State"],
                            capture_output=True, text=True, check=True).stdout.split()
    # requeued by submitit; or, when the SIGTERM killed its `scontrol requeue`, ended (FAILED) and replaced by a new job
    assert len(states) >= 2 and {"REQUEUED", "PREEMPTED", "FAILED"} & set(states), states


@pytest.mark.slurm
def test_one_slurm_job_runs_k_trial_workers(slurm_cluster, tmp_path):
    """--trials-per-gpu 2 on SLURM: 4 trials make 2 jobs of 2 tasks; each task is a trial worker that claims and
    stores its own trial (the job's CPUs split between them); the trials record their job and task."""
    spec, runs = small_spec(tmp_path, "shared"), tmp_path / "runs"
    slurm = slurm_options(slurm_cluster, runs / spec.name / "submitit").model_copy(update={"cpus_per_task": 2,
                                                                                          "mem_gb": 2})
    summary = run_study(spec, RunOptions(runs_dir=runs, executor="slurm", trials_per_gpu=2, slurm=slurm),
                        progress=False)
    assert summary.done == 4
    standing = assert_stored(summary.storage, spec, runs)
    where = {(t.user_attrs["worker"]["slurm_job"], t.user_attrs["worker"]["slurm_task"])
             for trials in standing.values() for t in trials}
    assert len(where) == 4 and len({job for job, _ in where}) == 2 and {task for _, task in where} == {"0", "1"}
    states = job_states(f"rbv-{spec.name}")
    assert states == ["COMPLETED", "COMPLETED"], states
