"""Studies: YAML spec, paired plans, the queue in storage, launch (inline / local / SLURM), workers, status."""

from robustbench_vit.study.files import load_spec
from robustbench_vit.study.launch import StudySummary, run_study
from robustbench_vit.study.options import RunOptions, SlurmOptions
from robustbench_vit.study.plan import plan, trial_count
from robustbench_vit.study.spec import StudySpec
from robustbench_vit.study.status import list_studies, study_status

__all__ = ["RunOptions", "SlurmOptions", "StudySpec", "StudySummary", "list_studies", "load_spec", "plan",
           "run_study", "study_status", "trial_count"]
