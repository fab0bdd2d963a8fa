"""run_study: queue the planned trials in storage, then run them inline, in local worker processes or on SLURM."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import submitit

from robustbench_vit.errors import UserError
from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.store import FINISHED, count_states, job_url, quiet_optuna, resolve_storage
from robustbench_vit.study.checks import check_slurm, check_slurm_jobs_can_start, preflight
from robustbench_vit.study.ddp import ddp_work, export_job_env
from robustbench_vit.study.gpus import Packing, choose_trials_per_gpu, visible_gpus
from robustbench_vit.study.options import RunOptions, SlurmOptions
from robustbench_vit.study.plan import extended, plan
from robustbench_vit.study.progress import StudyProgress
from robustbench_vit.study.queue import enqueue_missing, open_studies
from robustbench_vit.study.runner import work
from robustbench_vit.study.spec import StudySpec

POLL_S = 1.0
SLURM_CHECK_S = 30.0  # how often SLURM is asked whether pending jobs can ever start
MAX_CRASHES = 3  # worker jobs that fail in a row, with no trial finishing in between, stop the study
DETACHED_FILE = "detached_jobs.json"  # in the submitit folder: the SLURM jobs a detached run left running


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


class Worker(submitit.helpers.Checkpointable):
    """A submitit job: run queued trials; on preemption or timeout submitit requeues it and it claims again."""

    def __init__(self, url: str, name: str, models: list[str], runs_dir: str, *, threads: int | None,
                 max_trials: int | None = None, gpu: int | None = None, launcher: int | None = None,
                 shared: bool = False) -> None:
        """Everything the job needs; the trials themselves come from the storage.

        `launcher`: for local workers, the `study run` process; they claim no new trial once it is gone.
        `shared`: one of several trial workers (tasks) of a SLURM job sharing its GPU.
        """
        self.args = dict(url=url, name=name, models=models, runs_dir=runs_dir, threads=threads, max_trials=max_trials)
        self.gpu, self.launcher, self.shared = gpu, launcher, shared

    def __call__(self) -> int:
        """Pin the GPU (if any) and work; returns the number of trials run."""
        guard_preemption_handler(shared=self.shared)
        if self.gpu is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = str(self.gpu)
        return work(**self.args, launcher=self.launcher)


class DDPWorker(Worker):
    """A job of several tasks (one per GPU): they form one torch.distributed group and train each trial together."""

    def __call__(self) -> int:
        """Join the group from the job's environment and work as one DDP trainer."""
        guard_preemption_handler()
        export_job_env()
        return ddp_work(**self.args)


def is_ddp(params: dict[str, Any]) -> bool:
    """True when submitit `params` ask for several tasks per job (then each trial is one DDP job)."""
    return int(params.get("tasks_per_node", 1)) * int(params.get("nodes", 1)) > 1


def error_line(text: str) -> str:
    """The last `SomeError: message` line of a worker's traceback (else its last line)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.match(r"^[\w.]+(Error|Exception|Interrupt)\b", ln)]
    return (errors or lines or ["(no message)"])[-1]


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
        ex = submitit.AutoExecutor(folder=folder, cluster="slurm" if self.kind == "slurm" else "local")
        if self.kind == "slurm":
            ex.update_parameters(name=f"rbv-{self.spec.name}", **self.params)
        else:
            ex.update_parameters(timeout_min=7 * 24 * 60)
        return ex

    def describe(self, pack: Packing | None) -> str:
        """One line on how trials share GPUs: K per GPU and why, and the workers or jobs that makes."""
        if pack is None:
            return f"no GPU visible here: --trials-per-gpu does not apply ({self.workers} CPU worker(s))"
        where = (f"{self.workers} local worker(s) on {study_gpus(self.spec)} GPU(s)" if self.kind == "local" else
                 f"each SLURM job runs {self.trials_per_gpu} trial worker(s) on its GPU")
        return f"{pack.trials_per_gpu} trial(s) per GPU ({pack.why}); {where}"

    def counts(self) -> dict[str, dict[str, int]]:
        """Fail stale trials (which re-queues them) and count slots by state, per model."""
        with quiet_optuna():
            for s in self.studies.values():
                optuna.storages.fail_stale_trials(s)
        return {m: count_states(s) for m, s in self.studies.items()}


def study_gpus(spec: StudySpec) -> int:
    """The GPUs this machine's workers use for `spec` (none for a CPU study)."""
    return visible_gpus() if spec.device != "cpu" else 0


def auto_workers(spec: StudySpec, executor: str = "auto", trials_per_gpu: int = 1) -> int:
    """The default worker count: `trials_per_gpu` per GPU, else as many as the study's pinned CPU threads fit
    here, else 1.

    Only the auto and local executors use it: inline runs in this process, SLURM submits one job per trial.
    """
    if executor not in ("auto", "local"):
        return 1
    gpus = study_gpus(spec)
    if gpus:
        return gpus * trials_per_gpu
    return max(1, (os.cpu_count() or 1) // int(spec.threads)) if spec.threads else 1


def packing(spec: StudySpec, models: list[ModelSpec], options: RunOptions, slurm: SlurmOptions) -> Packing | None:
    """Trials per GPU for this run (None: no GPU here, nor SLURM); 1 where a trial takes whole GPUs (DDP or
    multi-GPU jobs), and a UserError when --trials-per-gpu or the study asked for more there."""
    on_slurm = options.executor == "slurm"
    if not on_slurm and not study_gpus(spec):
        return None
    chosen = choose_trials_per_gpu(spec, models, options.trials_per_gpu)
    if on_slurm and not chosen.asked and not (slurm.gpus_per_node or slurm.gres):
        return Packing(1, "auto: the SLURM jobs ask for no GPU")
    whole = "DDP jobs (--slurm-ddp)" if slurm.ddp else "jobs of several GPUs" if (slurm.gpus_per_node or 1) > 1 else ""
    if on_slurm and whole and chosen.trials_per_gpu > 1:
        if chosen.asked:
            raise UserError(f"{chosen.why} {chosen.trials_per_gpu}: trials share a GPU only in jobs of one GPU, not "
                            f"in {whole}; allowed: --trials-per-gpu 1, or --slurm-gpus 1 without --slurm-ddp")
        return Packing(1, f"auto: {whole} train one trial each")
    return chosen


def pick_gpus(n: int, gpus: int, busy: list[int]) -> list[int | None]:
    """GPUs for `n` new local workers: the ones fewest live workers use (`busy`: theirs) first; None without GPUs."""
    if not gpus:
        return [None] * n
    load = Counter(busy)
    out: list[int | None] = []
    for _ in range(n):
        gpu = min(range(gpus), key=lambda g: (load[g], g))
        load[gpu] += 1
        out.append(gpu)
    return out


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
    url = resolve_storage(spec.name, options.runs_dir, options.storage)
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


def _unfinished(counts: dict[str, dict[str, int]]) -> tuple[int, int]:
    """(pending, running) over all models."""
    return sum(c["pending"] for c in counts.values()), sum(c["running"] for c in counts.values())


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


def left_jobs(folder: Path, params: dict[str, Any]) -> list[submitit.Job]:
    """The still unfinished SLURM jobs that a detached run recorded in `folder`."""
    path = folder / DETACHED_FILE
    if not path.is_file():
        return []
    tasks = range(int(params.get("tasks_per_node", 1)) * int(params.get("nodes", 1)))
    jobs = [submitit.SlurmJob(folder=folder, job_id=jid, tasks=tasks) for jid in json.loads(path.read_text())]
    return [j for j in jobs if not j.done()]


class _Crashes:
    """Worker jobs that failed in a row with no trial finishing in between; MAX_CRASHES of them stop the study."""

    def __init__(self) -> None:
        self.count, self.last_done = 0, -1

    def check(self, ended: list[submitit.Job], done: int) -> None:
        """Count the failed jobs among `ended`; a UserError with the last one's error after MAX_CRASHES."""
        for j in ended:
            if j.exception() is not None:
                self.count, self.last_done = (self.count + 1 if done == self.last_done else 1), done
                if self.count >= MAX_CRASHES:
                    raise UserError(f"{MAX_CRASHES} worker jobs failed in a row; the last one: "
                                    f"{error_line(str(j.exception()))} (logs: {j.paths.folder})")


def _submit(launch: Launch, ex: submitit.Executor, want: int, *, alive: list[submitit.Job],
            gpu_of: dict[str, int]) -> list[submitit.Job]:
    """Submit `want` new worker jobs: local ones on the least used GPUs, SLURM ones as one job array."""
    local = launch.kind == "local"
    threads = max(1, (os.cpu_count() or 1) // launch.workers) if local else int(launch.params.get("cpus_per_task", 1))
    job = DDPWorker if launch.ddp else Worker
    gpus = pick_gpus(want, study_gpus(launch.spec) if local else 0,
                     [gpu_of[j.job_id] for j in alive if j.job_id in gpu_of])
    new = [job(job_url(launch.url), launch.spec.name, launch.models, launch.runs_dir, threads=threads,
               max_trials=None if local else 1, gpu=gpu, launcher=os.getpid() if local else None,
               shared=launch.trials_per_gpu > 1) for gpu in gpus]
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
    crashes, gpu_of = _Crashes(), {}  # gpu_of: local job id -> its GPU
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
                _cancel_unless_they_can_start(jobs)
                ids = [j.job_id for j in jobs]
                ex.folder.mkdir(parents=True, exist_ok=True)
                (ex.folder / DETACHED_FILE).write_text(json.dumps(ids))
                return counts, ids
            if launch.kind == "slurm" and time.monotonic() >= next_check:
                next_check = time.monotonic() + SLURM_CHECK_S
                _cancel_unless_they_can_start(jobs)
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        _cancel(jobs)
        raise


def _cancel(jobs: list[submitit.Job]) -> None:
    """Cancel the jobs still queued or running (their trials go back to the queue)."""
    for j in jobs:
        if not j.done():
            j.cancel(check=False)


def _cancel_unless_they_can_start(jobs: list[submitit.Job]) -> None:
    """A SLURM job that can never start: cancel them all and raise the UserError that says why."""
    try:
        check_slurm_jobs_can_start([j.job_id for j in jobs])
    except UserError:
        _cancel(jobs)
        raise
