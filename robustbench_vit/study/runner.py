"""Worker side: claim queued trials atomically, train each (resuming its checkpoint) under a heartbeat, store the
results."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from pydantic import ValidationError

from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.provenance import provenance
from robustbench_vit.store import TrialRecord, is_result, load_study, quiet_optuna, slot
from robustbench_vit.store.optuna_internals import (BaseStorage, heartbeat, open_trial, pop_waiting_trial,
                                                    record_heartbeat, storage_of)
from robustbench_vit.store.resilient import ResilientStorage
from robustbench_vit.store.trials import DUPLICATE
from robustbench_vit.study.plan import distribution, suggest, trial_config
from robustbench_vit.study.queue import trial_dir
from robustbench_vit.study.spec import StudySpec
from robustbench_vit.train import run_trial
from robustbench_vit.train.config import EpochRecord, TrialConfig, TrialResult

TrialFn = Callable[..., TrialResult]  # run_trial(config, trial_dir, progress)


def trial_record(result: TrialResult, config: TrialConfig) -> TrialRecord:
    """What the trial stores (the storage contract's record), with where and with what it ran."""
    return TrialRecord(status=result.status, final_error=result.final_error, min_error=result.min_error,
                       epochs_run=result.epochs_run, seconds=result.seconds,
                       history=[h.model_dump() for h in result.history], config=config.model_dump(mode="json"),
                       message=result.message, **provenance(), params_count=result.params, gmacs=result.gmacs,
                       num_classes=result.num_classes, resumed_epochs=result.resumed_epochs,
                       first_step_seconds=result.first_step_seconds, step_seconds=result.step_seconds,
                       device=result.device, worker=worker_attrs())


def worker_attrs() -> dict[str, Any]:
    """Where the trial ran: host, process, the GPU its worker was pinned to, the SLURM job and task if any."""
    env = os.environ
    job = env.get("SLURM_JOB_ID")
    if job and env.get("SLURM_ARRAY_JOB_ID"):
        job = f"{env['SLURM_ARRAY_JOB_ID']}_{env.get('SLURM_ARRAY_TASK_ID')}"
    return {"host": socket.gethostname(), "pid": os.getpid(), "gpu": env.get("CUDA_VISIBLE_DEVICES"),
            "slurm_job": job, "slurm_task": env.get("SLURM_PROCID") if job else None}


def is_duplicate(study: optuna.Study, me: FrozenTrial) -> bool:
    """True if another trial of the same (point, seed) holds a result (complete, or stopped: PRUNED), or is running
    or queued with a lower number.

    Queued twins count too: two `study run` processes starting at once may both enqueue every slot.
    """
    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
    for t in study.get_trials(deepcopy=False, states=states):
        if t.number != me.number and "point" in t.user_attrs and slot(t) == slot(me):
            if is_result(t) or (t.state != TrialState.PRUNED and t.number < me.number):
                return True
    return False


def release(storage: BaseStorage, trial_id: int) -> None:
    """Put a claimed trial back in the queue (unless it finished meanwhile, e.g. failed as stale)."""
    try:
        storage.set_trial_state_values(trial_id, TrialState.WAITING)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass


def claim(study: optuna.Study, spec: StudySpec, *, name: str, model: str, url: str, runs_dir: str) -> TrialRun | None:
    """Claim the next queued trial of `model` (Optuna's atomic claim, as in Study.ask) and heartbeat it at once.

    The heartbeat right after the claim makes a worker that dies before training starts leave a stale trial
    (failed and re-queued after the grace period), never one RUNNING forever; an exception puts it back.
    """
    tid = pop_waiting_trial(study)
    if tid is None:
        return None
    storage = storage_of(study)
    try:
        record_heartbeat(storage, tid)
        number = storage.get_trial(tid).number
        return TrialRun(open_for_trial(spec, name=name, model=model, url=url, number=number), tid, runs_dir)
    except BaseException:
        release(storage, tid)
        raise


def open_for_trial(spec: StudySpec, *, name: str, model: str, url: str, number: int) -> optuna.Study:
    """The model study, with a TPE sampler (seeded per trial, constant liar) for adaptive designs."""
    sampler = None
    if spec.design.kind == "tpe":
        startup = min(10, max(2, (spec.design.points or 0) // 4))
        with quiet_optuna():
            sampler = optuna.samplers.TPESampler(seed=spec.design.seed + number, n_startup_trials=startup,
                                                 constant_liar=True)
    return load_study(name, model, url, sampler)


@dataclass
class TrialRun:
    """One claimed trial: which study, which Optuna trial, and the folder its checkpoints go to."""

    study: optuna.Study
    trial_id: int
    runs_dir: str

    def config(self, spec: StudySpec, threads: int | None) -> TrialConfig:
        """Fix the trial's params (sampling tpe slots) and build its TrialConfig."""
        trial = open_trial(self.study, self.trial_id)
        frozen = storage_of(self.study).get_trial(self.trial_id)
        dists = frozen.distributions or {k: distribution(d) for k, d in spec.space.items()}
        with quiet_optuna():
            params = {k: suggest(trial, k, d) for k, d in dists.items()}
        model = ModelSpec.model_validate(self.study.user_attrs["model"])
        pinned = {"threads": threads} if threads and "threads" not in spec.train else {}  # the spec's own wins
        point, replicate = slot(frozen)
        return trial_config(spec, model, params, point=point, replicate=replicate, **pinned)

    def run(self, spec: StudySpec, threads: int | None = None, trial_fn: TrialFn | None = None,
            on_epoch: Callable[[EpochRecord], None] | None = None) -> str:
        """Train under a heartbeat and store the result; Ctrl-C puts the trial back in the queue. Returns the status."""
        storage = storage_of(self.study)
        try:
            frozen = storage.get_trial(self.trial_id)
            if is_duplicate(self.study, frozen):
                storage.set_trial_user_attr(self.trial_id, "status", DUPLICATE)
                storage.set_trial_state_values(self.trial_id, TrialState.FAIL)
                return DUPLICATE
            point, seed = slot(frozen)
            folder = trial_dir(self.runs_dir, spec.name, self.study.user_attrs["model"]["name"], point=point,
                               seed=seed)
            try:
                config = self.config(spec, threads)
            except ValidationError as e:  # a tpe sample the trainer cannot take: a failed trial
                self.store(TrialResult(status="failed", final_error=100.0, min_error=100.0, epochs_run=0,
                                       seconds=0.0, message=f"invalid config: {e.errors()[0]['msg']}"), None)
                return "failed"
            with heartbeat(self.trial_id, storage):  # storing too: a store waiting out an outage stays alive
                result = (trial_fn or run_trial)(config, folder, self.reporting(on_epoch))
                self.store(result, config)
        except BaseException:  # Ctrl-C, preemption (SystemExit), a UserError: back in the queue, resumes from last.pt
            release(storage, self.trial_id)  # (a no-op once stored: the retry would read the result from last.pt)
            raise
        return result.status

    def reporting(self, on_epoch: Callable[[EpochRecord], None] | None) -> Callable[[EpochRecord], None]:
        """The per-epoch hook: each epoch's error becomes an Optuna intermediate value at once (live learning
        curves in optuna-dashboard), without ever holding training up for an unreachable storage."""
        storage = storage_of(self.study)

        def report(record: EpochRecord) -> None:
            if isinstance(storage, ResilientStorage):
                storage.attempt("set_trial_intermediate_value", self.trial_id, record.epoch, record.val_error)
            if on_epoch is not None:
                on_epoch(record)

        return report

    def store(self, result: TrialResult, config: TrialConfig | None) -> None:
        """Write the result: COMPLETE with value = final error for complete/diverged; PRUNED for stopped (a hopeless
        trial stopped early), with value = its last epoch's error as Optuna's own tell(state=PRUNED) stores it (its
        final_error attr is the cap); FAIL for failed. Every epoch's error is an intermediate value (again: epochs
        from before a resume, or skipped during an outage)."""
        storage = storage_of(self.study)
        attrs = trial_record(result, config).attrs() if config is not None else {"status": result.status,
                                                                                   "message": result.message}
        try:
            for h in result.history:
                storage.set_trial_intermediate_value(self.trial_id, h.epoch, h.val_error)
            for k, v in attrs.items():
                storage.set_trial_user_attr(self.trial_id, k, v)
            if result.status == "failed":
                storage.set_trial_state_values(self.trial_id, TrialState.FAIL)
            elif result.status == "stopped":
                last = [result.history[-1].val_error] if result.history else None
                storage.set_trial_state_values(self.trial_id, TrialState.PRUNED, last)
            else:
                storage.set_trial_state_values(self.trial_id, TrialState.COMPLETE, [result.final_error])
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # failed as stale meanwhile: its retry finds the finished checkpoint and stores the same result


def alive(pid: int) -> bool:
    """True while process `pid` runs: it exists and is not a zombie (killed, its parent not yet told)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):  # no procfs (macOS): existence is all we know
        return True


def work(url: str, name: str, models: list[str], runs_dir: str | Path = "runs", *, threads: int | None = None,
         max_trials: int | None = None, trial_fn: TrialFn | None = None,
         on_trial: Callable[[str, str], None] | None = None,
         on_epoch: Callable[[str, EpochRecord], None] | None = None, launcher: int | None = None) -> int:
    """Run queued trials of `models` (round-robin, so paired trials progress together) until none is left.

    A pure function of the storage contents: the spec, model and point of each trial come from the storage.
    With `launcher` (a local worker's `study run` process id), it claims no new trial once that process is gone:
    a killed study run leaves no workers behind beyond the trials they were training. Returns the number of
    trials run (at most `max_trials`).
    """
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    spec = StudySpec.model_validate(load_study(name, models[0], url).user_attrs["spec"])
    done = 0
    while (max_trials is None or done < max_trials) and (launcher is None or alive(launcher)):
        picked = None
        for model in models[done % len(models):] + models[:done % len(models)]:
            claimed = claim(load_study(name, model, url), spec, name=name, model=model, url=url,
                            runs_dir=str(runs_dir))
            if claimed is not None:
                picked = model, claimed
                break
        if picked is None:
            return done
        model, run = picked
        status = run.run(spec, threads, trial_fn, None if on_epoch is None else lambda r, m=model: on_epoch(m, r))
        done += status != DUPLICATE
        if on_trial is not None:
            on_trial(model, status)
    return done
