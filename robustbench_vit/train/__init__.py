"""One trial: a TrialConfig in, a TrialResult out (optimizer, schedule, loop, divergence, checkpoints)."""

from robustbench_vit.train.config import EpochRecord, TrialConfig, TrialResult
from robustbench_vit.train.loop import run_trial

__all__ = ["EpochRecord", "TrialConfig", "TrialResult", "run_trial"]
