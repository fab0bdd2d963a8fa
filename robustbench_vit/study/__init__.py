"""Studies: YAML spec, paired plans, Optuna storage, launch (inline / local / SLURM), status."""

from robustbench_vit.store import resolve_storage
from robustbench_vit.study.files import load_spec
from robustbench_vit.study.launch import StudySummary, run_study
from robustbench_vit.study.options import RunOptions, SlurmOptions
from robustbench_vit.study.plan import plan, trial_count
from robustbench_vit.study.spec import StudySpec
from robustbench_vit.study.status import list_studies, study_status

__all__ = ["RunOptions", "SlurmOptions", "StudySpec", "StudySummary", "list_studies", "load_spec", "plan",
           "resolve_storage", "run_study", "study_status", "trial_count"]
