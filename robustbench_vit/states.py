"""The status words of a trial, each family defined once and read everywhere (Literal types and their tuples).

A trial returns a result status (`train/`); storage adds a slot's progress (`store/`); the analysis turns a finished
trial at chance into `collapsed` and a stopped one too (`analysis/frame.py`). The verdict and claim words are the
analysis's own (`analysis/comparison.py`, `analysis/claims.py`).
"""

from __future__ import annotations

from typing import Literal, get_args

# What one trial returns. stopped: it stayed at chance until the hopeless-trial rule stopped it (train.loop.hopeless)
ResultStatus = Literal["complete", "diverged", "stopped", "failed"]
# A slot's (one planned point and seed) state in storage: a result status, or not finished yet
SlotState = Literal[ResultStatus, "running", "pending"]
# The outcome class the analysis gives a trial: complete · collapsed (finished at chance, or stopped) · diverged are
# the results; failed has none; running / pending are not finished
TrialStatus = Literal["complete", "collapsed", "diverged", "failed", "running", "pending"]

RESULT_STATUSES: tuple[ResultStatus, ...] = get_args(ResultStatus)
SLOT_STATES: tuple[SlotState, ...] = get_args(SlotState)
TRIAL_STATUSES: tuple[TrialStatus, ...] = get_args(TrialStatus)
