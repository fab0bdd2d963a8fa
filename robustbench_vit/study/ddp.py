"""DDP trial jobs: rank 0 claims each trial from storage and broadcasts it, every rank trains it, rank 0 stores it."""

from __future__ import annotations

import os
from pathlib import Path

import submitit

from robustbench_vit.study.runner import TrialFn, work
from robustbench_vit.train import run_trial
from robustbench_vit.train.dist import broadcast_object, init_from_env


def ddp_work(url: str, name: str, models: list[str], runs_dir: str | Path = "runs", *, threads: int | None = None,
             max_trials: int | None = None, trial_fn: TrialFn | None = None) -> int:
    """`work` as one torch.distributed job (env:// variables set): returns the trials this rank trained.

    Only rank 0 touches the storage (claim, heartbeat, result); it broadcasts each claimed (config, folder) and
    finally None, which ends the other ranks' loop. Every rank calls `trial_fn` (run_trial), which trains with DDP.
    """
    rank, _ = init_from_env()
    fn = trial_fn or run_trial
    if rank == 0:
        def shared(config, folder, on_epoch):
            """Hand the claimed trial to the other ranks, then train it here too."""
            broadcast_object((config, str(folder)))
            return fn(config, folder, on_epoch)

        try:
            return work(url, name, models, runs_dir, threads=threads, max_trials=max_trials, trial_fn=shared)
        finally:  # also when rank 0 fails: the other ranks must not wait for a trial forever
            broadcast_object(None)
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    done = 0
    while (job := broadcast_object()) is not None:
        fn(job[0], job[1], None)
        done += 1
    return done


def export_job_env() -> None:
    """In a submitit job (SLURM or local) of several tasks: RANK, WORLD_SIZE, MASTER_*, LOCAL_RANK from its env."""
    if "RANK" not in os.environ:
        submitit.helpers.TorchDistributedEnvironment().export()  # also CUDA_VISIBLE_DEVICES=LOCAL_RANK
