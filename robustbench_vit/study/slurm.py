"""Bookkeeping of a study's submitted worker jobs: the SLURM jobs a detached run left running (a file in the
submitit folder), worker jobs that crash in a row, cancelling jobs, and squeue's word on jobs that can never start."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import submitit

from robustbench_vit.errors import UserError

MAX_CRASHES = 3  # worker jobs that fail in a row, with no trial finishing in between, stop the study
DETACHED_FILE = "detached_jobs.json"  # in the submitit folder: the SLURM jobs a detached run left running
# squeue reasons for a job whose request exceeds what its partition offers: it would stay pending for ever
NEVER_STARTS = ("PartitionConfig", "PartitionNodeLimit", "PartitionTimeLimit", "BadConstraints")


def left_jobs(folder: Path, params: dict[str, Any]) -> list[submitit.Job]:
    """The still unfinished SLURM jobs that a detached run recorded in `folder`."""
    path = folder / DETACHED_FILE
    if not path.is_file():
        return []
    tasks = range(int(params.get("tasks_per_node", 1)) * int(params.get("nodes", 1)))
    jobs = [submitit.SlurmJob(folder=folder, job_id=jid, tasks=tasks) for jid in json.loads(path.read_text())]
    return [j for j in jobs if not j.done()]


def record_detached(folder: Path, jobs: list[submitit.Job]) -> list[str]:
    """Write the ids of `jobs`, left running by a detached run, to `folder` (for `left_jobs`); returns them."""
    ids = [j.job_id for j in jobs]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DETACHED_FILE).write_text(json.dumps(ids))
    return ids


class Crashes:
    """Worker jobs that failed in a row with no trial finishing in between; MAX_CRASHES of them stop the study."""

    def __init__(self) -> None:
        """No failure yet."""
        self.count, self.last_done = 0, -1

    def check(self, ended: list[submitit.Job], done: int) -> None:
        """Count the failed jobs among `ended`; a UserError with the last one's error after MAX_CRASHES."""
        for j in ended:
            if j.exception() is not None:
                self.count, self.last_done = (self.count + 1 if done == self.last_done else 1), done
                if self.count >= MAX_CRASHES:
                    raise UserError(f"{MAX_CRASHES} worker jobs failed in a row; the last one: "
                                    f"{error_line(str(j.exception()))} (logs: {j.paths.folder})")


def error_line(text: str) -> str:
    """The last `SomeError: message` line of a worker's traceback (else its last line)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.match(r"^[\w.]+(Error|Exception|Interrupt)\b", ln)]
    return (errors or lines or ["(no message)"])[-1]


def cancel_unless_they_can_start(jobs: list[submitit.Job]) -> None:
    """A SLURM job that can never start: cancel them all and raise the UserError that says why."""
    try:
        check_slurm_jobs_can_start([j.job_id for j in jobs])
    except UserError:
        cancel(jobs)
        raise


def check_slurm_jobs_can_start(job_ids: list[str]) -> None:
    """Raise when SLURM holds one of `job_ids` pending for a reason no wait can end (it asks for more CPUs, memory,
    nodes or time than its partition has); a failing `squeue` says nothing (the next poll asks again)."""
    arrays = sorted({j.split("_")[0] for j in job_ids})
    if not arrays:
        return
    try:
        proc = subprocess.run(["squeue", "-h", "-t", "PD", "-j", ",".join(arrays), "-o", "%i|%r|%P|%D|%C|%m|%l"],
                              capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return
    for line in proc.stdout.splitlines() if proc.returncode == 0 else []:
        job, reason, partition, nodes, cpus, mem, limit = line.split("|")
        if reason in NEVER_STARTS:
            raise UserError(f"SLURM job {job} can never start in partition {partition!r} ({reason}): it asks "
                            f"{nodes} node(s), {cpus} CPU(s) in all, {mem} memory per node, for {limit}: more than the "
                            f"partition offers (`scontrol show partition {partition}`); lower --slurm-cpus, "
                            f"--trials-per-gpu, --slurm-gpus or --slurm-option mem=")


def cancel(jobs: list[submitit.Job]) -> None:
    """Cancel the jobs still queued or running (their trials go back to the queue)."""
    for j in jobs:
        if not j.done():
            j.cancel(check=False)
