"""A real study through the local SLURM cluster: one trial per array task, results in the default SQLite storage."""

from __future__ import annotations

import subprocess
import time

import pytest
from study_contract import assert_stored, small_spec

from robustbench_vit.study.launch import run_study


def job_states(name: str, timeout: float = 60) -> list[str]:
    """Accounting states of the jobs called `name`, once none is pending or running (results land before exit)."""
    deadline = time.monotonic() + timeout
    while True:
        states = subprocess.run(["sacct", "-n", "-X", "-P", f"--name={name}", "-o", "State"],
                                capture_output=True, text=True, check=True).stdout.split()
        if not {"PENDING", "RUNNING", "COMPLETING", "REQUEUED"} & set(states) or time.monotonic() > deadline:
            return states
        time.sleep(0.5)


def slurm_options(cluster: dict, folder, **extra) -> dict:
    """Small jobs that fit the one-node test cluster, logs in `folder`."""
    return {"partition": cluster["partition"], "cpus_per_task": 1, "mem_gb": 1, "timeout_min": 10,
            "array_parallelism": 2, "folder": str(folder), **extra}


@pytest.mark.slow
@pytest.mark.slurm
def test_study_runs_through_slurm(slurm_cluster, tmp_path):
    """Every trial runs in its own SLURM job, accounting records them, the storage holds the contract."""
    spec, runs = small_spec(tmp_path, "slurm"), tmp_path / "runs"
    summary = run_study(spec, runs_dir=runs, executor="slurm", slurm=slurm_options(slurm_cluster, tmp_path / "jobs"),
                        progress=False)
    assert summary.ran == 4 and summary.storage.startswith("sqlite:///")
    assert_stored(summary.storage, spec, runs)
    states = job_states(f"rbv-{spec.name}")
    assert states.count("COMPLETED") >= 4 and not {"FAILED", "TIMEOUT", "OUT_OF_MEMORY"} & set(states)
