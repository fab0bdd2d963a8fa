"""The stored-trial contract: how a study, a model and a trial are named, which states a trial can be in, and what
a finished trial stores (one typed record, written by the worker and read by the analysis)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from robustbench_vit.states import SLOT_STATES, SlotState

SCHEMA = 2  # 2: a seed per setting and an init seed per model (plan.setting_seed, plan.init_seed); 1: seed 0 for all

# A slot's state (states.SlotState): a stopped trial (hopeless, stopped early) is stored as Optuna's PRUNED, a
# result like diverged; collapsed is decided by the analysis.
STATES: tuple[SlotState, ...] = SLOT_STATES
FINISHED: tuple[SlotState, ...] = STATES[:4]  # what counts as done
RESULT_STATES: tuple[SlotState, ...] = STATES[:3]  # what holds a result (never run again)
DUPLICATE = "duplicate"  # the status attr of a trial that lost a race for its slot (FAIL, never a result)
_RANK = {s: i for i, s in enumerate(RESULT_STATES + ("running", "pending", "failed"))}  # which attempt stands


def study_name(study: str, model: str) -> str:
    """The Optuna study name of one model in a study."""
    return f"{study}/{model}"


def split_study_name(name: str) -> tuple[str, str]:
    """(study, model) of an Optuna study name made by `study_name` (model "" for a name without one)."""
    study, _, model = name.partition("/")
    return study, model


def slot(trial: FrozenTrial) -> tuple[int, int]:
    """The (point, seed) a trial belongs to."""
    return int(trial.user_attrs["point"]), int(trial.user_attrs["seed"])


def has_slot(trial: FrozenTrial) -> bool:
    """Whether a trial was planned by the harness (it knows its point and seed)."""
    return "point" in trial.user_attrs


def trial_state(trial: FrozenTrial) -> SlotState:
    """A trial's state: complete / diverged (its status attr), stopped (PRUNED by the hopeless-trial rule), failed
    (FAIL, or PRUNED by anything else), running or pending."""
    status = trial.user_attrs.get("status")
    if trial.state == TrialState.COMPLETE:
        return status or "complete"
    if trial.state == TrialState.PRUNED and status == "stopped":
        return "stopped"
    if trial.state == TrialState.RUNNING:
        return "running"
    if trial.state == TrialState.WAITING:
        return "pending"
    return "failed"


def is_result(trial: FrozenTrial) -> bool:
    """Whether a trial holds a stored result (never run again): COMPLETE, or PRUNED by the hopeless-trial rule."""
    return trial_state(trial) in RESULT_STATES


def is_duplicate_loser(trial: FrozenTrial) -> bool:
    """Whether a trial gave its slot up to a twin (marked `duplicate` and failed): it never counts."""
    return trial.user_attrs.get("status") == DUPLICATE and trial_state(trial) == "failed"


def slot_states(trials: list[FrozenTrial]) -> dict[tuple[int, int], SlotState]:
    """The state of each (point, seed): complete/diverged/stopped beat running, pending, failed (retries count once)."""
    out: dict[tuple[int, int], SlotState] = {}
    for t in trials:
        if not has_slot(t) or is_duplicate_loser(t):
            continue
        state, key = trial_state(t), slot(t)
        if key not in out or _RANK[state] < _RANK[out[key]]:
            out[key] = state
    return out


def count_states(study: optuna.Study) -> dict[SlotState, int]:
    """Counts of (point, seed) slots by state."""
    counts = Counter(slot_states(study.get_trials(deepcopy=False)).values())
    return {s: counts.get(s, 0) for s in STATES}


def standing(trials: list[FrozenTrial]) -> list[tuple[FrozenTrial, int]]:
    """One trial per (point, seed) slot with its attempt count: the latest attempt in the slot's state.

    The harness retries failed and stale trials as new trials of the same slot, and marks losers of a race
    `duplicate`; the slot's state is the one `slot_states` gives, so `study status` and the report agree. Trials
    without a point (none in our studies) stay as they are.
    """
    states = slot_states(trials)
    best: dict[tuple, tuple[FrozenTrial, int]] = {}
    for t in trials:
        if not has_slot(t):
            best[("n", t.number)] = (t, 1)
            continue
        key = slot(t)
        if key not in states or is_duplicate_loser(t):
            continue
        old, n = best.get(key, (None, 0))
        if trial_state(t) == states[key] and (old is None or trial_state(old) != states[key] or t.number > old.number):
            old = t
        best[key] = (old, n + 1)
    return list(best.values())


@dataclass(frozen=True)
class TrialRecord:
    """What a finished trial stores as user attrs beside its point and seed (set when it was queued).

    The worker writes it (`attrs`), the analysis reads it back (`read`); a field added here is stored and read
    everywhere. Trials stored by older versions may lack fields: they read as the defaults.
    """

    status: str
    message: str | None = None
    final_error: float | None = None
    min_error: float | None = None
    epochs_run: int = 0
    seconds: float = math.nan
    history: list[dict[str, Any]] = field(default_factory=list)  # EpochRecord dumps
    config: dict[str, Any] = field(default_factory=dict)  # the TrialConfig dump
    host: str | None = None
    commit: str | None = None
    versions: dict[str, str | None] = field(default_factory=dict)
    params_count: int | None = None
    gmacs: float | None = None
    num_classes: int | None = None
    resumed_epochs: int = 0
    first_step_seconds: float | None = None
    worker: dict[str, Any] = field(default_factory=dict)  # host, pid, gpu, slurm job and task
    step_seconds: float | None = None  # median warm training step at the trial's batch size (train.loop.StepClock)
    device: str | None = None  # what it trained on: "cpu", "cuda:0", "cuda x4 (DDP)"

    def attrs(self) -> dict[str, Any]:
        """The user attrs to store."""
        return asdict(self)

    @classmethod
    def read(cls, trial: FrozenTrial) -> TrialRecord:
        """The record a trial stored (defaults where it stored nothing yet: pending, running, or failed early)."""
        a = trial.user_attrs
        known = {k: a[k] for k in cls.__dataclass_fields__ if k in a and a[k] is not None}
        return cls(**{"status": trial_state(trial), **known})
