"""The real services the study tests rely on: PostgreSQL for Optuna storage, SLURM for submitit."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import optuna
import pytest
import sqlalchemy
import submitit

# Jobs unpickle their function in a fresh interpreter that cannot import this test module.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

SLURM_SCRIPT = Path(__file__).parent / "cluster" / "slurm-local.sh"


def where_am_i(x: int) -> dict:
    """Job body: a value computed in the job plus the SLURM facts the job sees."""
    import os
    import socket

    import submitit

    env = submitit.JobEnvironment()
    return {"square": x * x, "job_id": env.job_id, "host": socket.gethostname(), "pid": os.getpid(),
            "array_task": os.environ.get("SLURM_ARRAY_TASK_ID")}


def fail(message: str) -> None:
    """Job body that raises, to see the traceback come back."""
    raise ValueError(message)


def final_state(job: submitit.Job, timeout: float = 30) -> str:
    """The job's state in SLURM accounting once it is no longer pending or running."""
    deadline = time.monotonic() + timeout
    while True:
        state = job.get_info(mode="force").get("State", "UNKNOWN")
        if state not in ("UNKNOWN", "PENDING", "RUNNING", "COMPLETING") or time.monotonic() > deadline:
            return state
        time.sleep(0.5)


def slurm_executor(folder: Path, cluster: dict, **params) -> submitit.AutoExecutor:
    """A submitit executor on the local cluster's partition with small, quick jobs."""
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    executor.update_parameters(slurm_partition=cluster["partition"], timeout_min=5, cpus_per_task=1, mem_gb=1,
                               **params)
    return executor


@pytest.mark.postgres
def test_optuna_study_round_trips_on_postgres(postgres_url):
    """A study with attrs, a distribution-typed trial and a failed trial reads back the same from a new connection."""
    assert sqlalchemy.make_url(postgres_url).get_backend_name() == "postgresql"
    name = f"services/{time.time_ns()}"
    study = optuna.create_study(study_name=name, storage=postgres_url)
    study.set_user_attr("model", {"name": "vit_c_micro", "depth": 3})
    history = [{"epoch": 1, "val_error": 50.0}, {"epoch": 2, "val_error": 31.5}]
    study.add_trial(optuna.trial.create_trial(
        params={"lr": 3e-3, "optimizer": "adamw"},
        distributions={"lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True),
                       "optimizer": optuna.distributions.CategoricalDistribution(["adamw", "sgd"])},
        value=31.5, user_attrs={"point": 0, "seed": 1, "status": "complete", "history": history}))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, user_attrs={"status": "failed"}))

    again = optuna.load_study(study_name=name, storage=optuna.storages.RDBStorage(postgres_url))
    done, failed = again.trials
    assert again.user_attrs["model"] == {"name": "vit_c_micro", "depth": 3}
    assert (done.state, done.value, done.params) == (optuna.trial.TrialState.COMPLETE, 31.5,
                                                     {"lr": 3e-3, "optimizer": "adamw"})
    assert done.distributions["lr"].log and done.user_attrs["history"] == history
    assert failed.state == optuna.trial.TrialState.FAIL and failed.user_attrs["status"] == "failed"
    assert name in optuna.get_all_study_names(postgres_url)


@pytest.mark.slurm
def test_slurm_start_is_idempotent(slurm_cluster):
    """Starting a cluster that is up answers at once and leaves it up."""
    t0 = time.perf_counter()
    proc = subprocess.run([str(SLURM_SCRIPT), "start"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "already up" in proc.stderr
    assert time.perf_counter() - t0 < 5
    assert subprocess.run([str(SLURM_SCRIPT), "status"], capture_output=True).returncode == 0


@pytest.mark.slurm
def test_submitit_job_on_slurm_returns_value(slurm_cluster, tmp_path):
    """One sbatch job runs the function on the node and accounting records it COMPLETED."""
    job = slurm_executor(tmp_path, slurm_cluster).submit(where_am_i, 7)
    out = job.result()
    assert out["square"] == 49 and out["job_id"] == job.job_id
    assert final_state(job) == "COMPLETED"  # read from sacct: accounting works


@pytest.mark.slurm
def test_submitit_job_array_on_slurm(slurm_cluster, tmp_path):
    """A job array returns every task's value, in order, from distinct array tasks."""
    executor = slurm_executor(tmp_path, slurm_cluster, slurm_array_parallelism=2)
    jobs = executor.map_array(where_am_i, range(4))
    outs = [j.result() for j in jobs]
    assert [o["square"] for o in outs] == [0, 1, 4, 9]
    assert sorted(o["array_task"] for o in outs) == ["0", "1", "2", "3"]
    assert len({o["pid"] for o in outs}) == 4


@pytest.mark.slurm
def test_slurm_failures_come_back(slurm_cluster, tmp_path):
    """A raising job gives FailedJobError with its traceback; a cancelled one is seen as done, not waited on forever."""
    executor = slurm_executor(tmp_path, slurm_cluster)
    with pytest.raises(submitit.core.utils.FailedJobError, match="boom at 42"):
        executor.submit(fail, "boom at 42").result()
    job = executor.submit(time.sleep, 300)
    deadline = time.monotonic() + 60
    while job.get_info(mode="force").get("State") != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.3)
    job.cancel()
    assert final_state(job).startswith("CANCELLED")
    assert job.done(force_check=True)  # so result() raises UncompletedJobError instead of waiting forever
