"""The submitit side of a study: the worker jobs (plain or DDP), the executor that runs them, and the guard that
turns a failed preemption requeue into the end of the job instead of a failed trial."""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import submitit

from robustbench_vit.study.ddp import ddp_work, export_job_env
from robustbench_vit.study.runner import work


@dataclass(frozen=True)
class WorkerArgs:
    """What a worker job works on (passed to `work` / `ddp_work`); the trials themselves come from the storage."""

    url: str
    name: str  # the study
    models: tuple[str, ...]
    runs_dir: str
    threads: int | None = None
    max_trials: int | None = None


class Worker(submitit.helpers.Checkpointable):
    """A submitit job: run queued trials; on preemption or timeout submitit requeues it and it claims again."""

    def __init__(self, args: WorkerArgs, *, gpu: int | None = None, launcher: int | None = None,
                 shared: bool = False) -> None:
        """Everything the job needs: `args`, and where and how it runs.

        `launcher`: for local workers, the `study run` process; they claim no new trial once it is gone.
        `shared`: one of several trial workers (tasks) of a SLURM job sharing its GPU.
        """
        self.args, self.gpu, self.launcher, self.shared = args, gpu, launcher, shared

    def __call__(self) -> int:
        """Pin the GPU (if any) and work; returns the number of trials run."""
        guard_preemption_handler(shared=self.shared)
        if self.gpu is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = str(self.gpu)
        a = self.args
        return work(a.url, a.name, list(a.models), a.runs_dir, threads=a.threads, max_trials=a.max_trials,
                    launcher=self.launcher)


class DDPWorker(Worker):
    """A job of several tasks (one per GPU): they form one torch.distributed group and train each trial together."""

    def __call__(self) -> int:
        """Join the group from the job's environment and work as one DDP trainer."""
        guard_preemption_handler()
        export_job_env()
        a = self.args
        return ddp_work(a.url, a.name, list(a.models), a.runs_dir, threads=a.threads, max_trials=a.max_trials)


def is_ddp(params: dict[str, Any]) -> bool:
    """True when submitit `params` ask for several tasks per job (then each trial is one DDP job)."""
    return int(params.get("tasks_per_node", 1)) * int(params.get("nodes", 1)) > 1


def submitit_executor(folder: Path, *, slurm: bool, name: str, params: dict[str, Any]) -> submitit.Executor:
    """A submitit executor: local processes (no time limit) or SLURM job arrays named `name` with `params`."""
    ex = submitit.AutoExecutor(folder=folder, cluster="slurm" if slurm else "local")
    if slurm:
        ex.update_parameters(name=name, **params)
    else:
        ex.update_parameters(timeout_min=7 * 24 * 60)
    return ex


def guard_preemption_handler(*, shared: bool = False) -> None:
    """Make a failure inside submitit's preemption handler end the job instead of failing the trial it interrupts.

    submitit requeues a preempted or timed-out job from its signal handler (`scontrol requeue`), which runs in the
    middle of the training loop. A preemption also sends SIGTERM to every process of the job, and when that kills
    the `scontrol` child, the handler raises CalledProcessError there: the trainer would record an ordinary
    exception, a "failed" trial. As SystemExit instead, the trial goes back to the queue (resuming from its
    checkpoint) and the job ends; the study submits a new job for the trial.

    `shared`: the job's tasks are separate trial workers (--trials-per-gpu). submitit checkpoints and requeues the
    job from task 0 only; the other tasks end too (SystemExit), so their trials go back to the queue at once.
    """
    name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
    sig = getattr(signal, name if name.startswith("SIG") else f"SIG{name}", None)
    if sig is None or threading.current_thread() is not threading.main_thread():  # handlers live in the main thread
        return
    original = signal.getsignal(sig)
    if not callable(original) or getattr(original, "guarded", False):
        return

    def handler(signum: int, frame: Any) -> None:
        """submitit's handler, with its failure (and with `shared`, its end) as SystemExit."""
        try:
            original(signum, frame)
        except Exception as e:
            logging.getLogger(__name__).warning("preemption handler failed (%s: %s); ending the job, the trial "
                                                "goes back to the queue", type(e).__name__, e)
            raise SystemExit(-1) from e
        if shared:
            raise SystemExit(-1)

    handler.guarded = True  # type: ignore[attr-defined]
    signal.signal(sig, handler)
