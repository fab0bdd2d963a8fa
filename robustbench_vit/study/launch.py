"""run_study: queue the planned trials in storage, then run them inline, or keep local worker processes or SLURM
jobs going until every trial has finished."""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import submitit

from robustbench_vit.errors import UserError
from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.store import FINISHED, count_states, fail_stale, job_url
from robustbench_vit.study.checks import check_slurm, preflight
from robustbench_vit.study.gpus import Packing, auto_workers, packing, pick_gpus, study_gpus
from robustbench_vit.study.options import RunOptions, SlurmOptions
from robustbench_vit.study.plan import extended, plan
from robustbench_vit.study.progress import StudyProgress
from robustbench_vit.study.queue import enqueue_missing, open_studies
from robustbench_vit.study.runner import work
from robustbench_vit.study.slurm import (Crashes, cancel, cancel_unless_they_can_start, error_line, left_jobs,
                                         record_detached)
from robustbench_vit.study.spec import StudySpec
from robustbench_vit.study.workers import DDPWorker, Worker, WorkerArgs, is_ddp, submitit_executor

POLL_S = 1.0
SLURM_CHECK_S = 30.0  # how often SLURM is asked whether pending jobs can ever start


@dataclass
class StudySummary:
    """What run_study did and where the results are."""

    study: str
    storage: str
    runs_dir: str
    counts: dict[str, dict[str, int]]  # {model: {status: count}}
    ran: int  # trials that finished during this call
    seconds: float
    models: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)  # SLURM job ids submitted and left running (detach=True)

    @property
    def total(self) -> int:
        """Planned trials over all models."""
        return sum(sum(c.values()) for c in self.counts.values())

    @property
    def done(self) -> int:
        """Finished trials (complete, diverged or failed) over all models."""
        return sum(c[s] for c in self.counts.values() for s in FINISHED)


@dataclass(frozen=True)
class Launch:
    """What one run_study call runs and where: the studies (one per model) in storage, the executor and its jobs."""

    spec: StudySpec
    studies: dict[str, optuna.Study]
    url: str
    runs_dir: str
    kind: str  # inline, local or slurm
    workers: int
    slurm: SlurmOptions  # the study's `slurm:` block with the flags merged over it
    trials_per_gpu: int = 1  # SLURM: trial workers (tasks) per job; local: already in `workers`

    @property
    def models(self) -> list[str]:
        """The model names, in run order."""
        return list(self.studies)

    @property
    def params(self) -> dict[str, Any]:
        """submitit's SLURM job parameters (empty for local executors)."""
        if self.kind != "slurm":
            return {}
        return self.slurm.submitit_parameters(self.spec.threads, self.trials_per_gpu)

    @property
    def ddp(self) -> bool:
        """Each SLURM job is one DDP trial over its tasks (not several trial workers)."""
        return self.trials_per_gpu == 1 and is_ddp(self.params)

    def executor(self) -> submitit.Executor:
        """A submitit executor: local processes (no time limit) or SLURM job arrays."""
        folder = Path(self.slurm.folder) if self.slurm.folder else Path(self.runs_dir) / self.spec.name / "submitit"
        return submitit_executor(folder, slurm=self.kind == "slurm", name=f"rbv-{self.spec.name}", params=self.params)

    def describe(self, pack: Packing | None) -> str:
        """One line on how trials share GPUs: K per GPU and why, and the workers or jobs that makes."""
        if pack is None:
            return f"no GPU visible here: --trials-per-gpu does not apply ({self.workers} CPU worker(s))"
        where = (f"{self.workers} local worker(s) on {study_gpus(self.spec)} GPU(s)" if self.kind == "local" else
                 f"each SLURM job runs {self.trials_per_gpu} trial worker(s) on its GPU")
        return f"{pack.trials_per_gpu} trial(s) per GPU ({pack.why}); {where}"

    def counts(self) -> dict[str, dict[str, int]]:
        """Fail stale trials (which re-queues them) and count slots by state, per model."""
        for s in self.studies.values():
            fail_stale(s)
        return {m: count_states(s) for m, s in self.studies.items()}


def run_study(spec: StudySpec, options: RunOptions = RunOptions(), *, models: list[ModelSpec] | None = None,
              progress: bool = True, settings: int | None = None) -> StudySummary:
    """Run every planned (model, point, seed) trial of `spec` that is not finished yet, and store the results.

    Args:
        spec: the study (see `load_spec`).
        options: where results live and how trials run (`RunOptions`: runs_dir, storage, executor, workers,
            data_root, slurm, detach). Local workers each get their share of CPU threads, or one GPU where there
            are GPUs; SLURM runs one trial per array task (with `slurm.ddp`, each trial is one job of
            gpus_per_node tasks training with DDP). `detach` submits one job per unfinished trial and returns
            without waiting (the jobs' ids are in the summary); running the study again later waits for them.
        models: the models to run (default: the spec's); each gets the same points and seeds.
        progress: draw a progress bar on stderr.
        settings: run the design grown to its first `settings` settings per model (`plan.extended`: more grid
            replicates or more random / quasirandom points; `--until-decided` runs a study this way, look by look).

    Running again is safe: finished trials are kept, failed and interrupted ones are run again (from their
    checkpoints), trials running elsewhere are waited for (and re-run if their heartbeat stops).
    """
    if options.data_root is not None:
        spec = spec.model_copy(update={"data_root": options.data_root})
    slurm, models, t0 = options.slurm.over(spec.slurm), models or spec.models, time.perf_counter()
    if options.executor == "slurm":
        check_slurm(slurm.partition)
    preflight(spec, models)  # nothing is written or launched for a missing dataset or a broken stem
    pack = packing(spec, models, options, slurm)
    per_gpu = pack.trials_per_gpu if pack else 1
    workers = auto_workers(spec, options.executor, per_gpu) if options.workers is None else options.workers
    kind = options.kind(workers)
    url = options.results.url(spec.name)
    launch = Launch(spec, open_studies(spec, url, models), url, str(options.runs_dir), kind, workers, slurm,
                    per_gpu if kind == "slurm" else 1)
    if pack and kind != "inline" or options.trials_per_gpu and not pack:
        print(f"{spec.name}: {launch.describe(pack)}", file=sys.stderr)
    grown = extended(spec, settings) if settings else spec
    points, seeds = plan(grown), grown.design.seed_list
    for study in launch.studies.values():
        enqueue_missing(study, points, seeds)
    counts = launch.counts()
    before = sum(c[s] for c in counts.values() for s in FINISHED)
    bar = StudyProgress(spec.name, {m: len(points) * len(seeds) for m in launch.models}, enabled=progress)
    jobs: list[str] = []  # left running (detach)
    with bar:
        bar.update(counts)
        if kind == "inline":
            counts = _run_inline(launch, bar)
        else:
            counts, jobs = _run_jobs(launch, bar, detach=options.detach)
    ran = sum(c[s] for c in counts.values() for s in FINISHED) - before
    return StudySummary(spec.name, url, str(options.runs_dir), counts, ran, time.perf_counter() - t0,
                        launch.models, jobs)


def _run_inline(launch: Launch, bar: StudyProgress) -> dict[str, dict[str, int]]:
    """Work in this process; then wait for trials other processes are running (re-running them if they die)."""
    while True:
        counts = launch.counts()
        bar.update(counts)
        pending, running = _unfinished(counts)
        if pending:
            work(launch.url, launch.spec.name, launch.models, launch.runs_dir,
                 on_trial=lambda m, s: bar.update(launch.counts()), on_epoch=bar.epoch)
        elif running:
            time.sleep(POLL_S)
        else:
            return counts


def _run_jobs(launch: Launch, bar: StudyProgress, *, detach: bool = False) -> tuple[dict[str, dict[str, int]],
                                                                                      list[str]]:
    """Keep worker jobs going while trials are queued; Ctrl-C cancels them (their trials go back to the queue).

    Returns the final counts and, with `detach`, the ids of the jobs left running: then it submits once for the
    queued trials and returns at once. SLURM jobs an earlier detached run left (listed in the submitit folder)
    count as alive workers until they end, so trials waiting for them are not submitted twice. A SLURM job that can
    never start (it asks for more than its partition has) is a UserError: its jobs are cancelled, trials stay queued.
    """
    ex = launch.executor()
    jobs: list[submitit.Job] = left_jobs(ex.folder, launch.params) if launch.kind == "slurm" else []
    crashes, gpu_of = Crashes(), {}  # gpu_of: local job id -> its GPU
    next_check = time.monotonic() + 2 * POLL_S  # the scheduler's first pass sets a pending job's reason
    try:
        while True:
            counts = launch.counts()
            bar.update(counts)
            pending, running = _unfinished(counts)
            if not pending and not running:
                return counts, []
            alive = [j for j in jobs if not j.done()]
            crashes.check([j for j in jobs if j not in alive], sum(c[s] for c in counts.values() for s in FINISHED))
            jobs = alive
            want = (min(launch.workers - len(alive), pending) if launch.kind == "local" else
                    math.ceil(pending / launch.trials_per_gpu) - len(alive))  # a SLURM job serves K trials
            if want > 0:
                jobs += _submit(launch, ex, want, alive=alive, gpu_of=gpu_of)
            if detach:  # (SLURM only) leave the jobs running, once the scheduler has looked at them
                time.sleep(2 * POLL_S)
                cancel_unless_they_can_start(jobs)
                return counts, record_detached(ex.folder, jobs)
            if launch.kind == "slurm" and time.monotonic() >= next_check:
                next_check = time.monotonic() + SLURM_CHECK_S
                cancel_unless_they_can_start(jobs)
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        cancel(jobs)
        raise


def _submit(launch: Launch, ex: submitit.Executor, want: int, *, alive: list[submitit.Job],
            gpu_of: dict[str, int]) -> list[submitit.Job]:
    """Submit `want` new worker jobs: local ones on the least used GPUs, SLURM ones as one job array."""
    local = launch.kind == "local"
    threads = max(1, (os.cpu_count() or 1) // launch.workers) if local else int(launch.params.get("cpus_per_task", 1))
    job = DDPWorker if launch.ddp else Worker
    gpus = pick_gpus(want, study_gpus(launch.spec) if local else 0,
                     [gpu_of[j.job_id] for j in alive if j.job_id in gpu_of])
    args = WorkerArgs(job_url(launch.url), launch.spec.name, tuple(launch.models), launch.runs_dir, threads=threads,
                      max_trials=None if local else 1)
    new = [job(args, gpu=gpu, launcher=os.getpid() if local else None, shared=launch.trials_per_gpu > 1)
           for gpu in gpus]
    if local:
        jobs = [ex.submit(w) for w in new]
        gpu_of.update({j.job_id: w.gpu for j, w in zip(jobs, new) if w.gpu is not None})
        return jobs
    try:
        with ex.batch():
            jobs = [ex.submit(w) for w in new]
    except submitit.core.utils.FailedJobError as e:  # queued trials stay queued for the next run
        raise UserError(f"SLURM refused the job submission: {error_line(str(e))}") from None
    return jobs


def _unfinished(counts: dict[str, dict[str, int]]) -> tuple[int, int]:
    """(pending, running) over all models."""
    return sum(c["pending"] for c in counts.values()), sum(c["running"] for c in counts.values())
