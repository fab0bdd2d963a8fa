"""The storage layer: the only code that touches Optuna storage (URLs, opening, outages, Optuna internals) and the
stored-trial contract (names, slot states, the record a trial stores). `study/` writes through it, `analysis/`
reads through it."""

from robustbench_vit.store.connect import (create_model_study, fail_stale, load_study, open_reader, open_storage,
                                            quiet_optuna, read_studies, stored_models, stored_study_names, study_attrs,
                                            study_urls)
from robustbench_vit.store.trials import (FINISHED, SCHEMA, STATES, SlotState, TrialRecord, count_states, is_result,
                                          slot, slot_states, split_study_name, standing, study_name, trial_state)
from robustbench_vit.store.urls import Results, job_url, mask_url, resolve_storage, storage_errors

__all__ = ["FINISHED", "SCHEMA", "STATES", "Results", "SlotState", "TrialRecord", "count_states",
           "create_model_study", "fail_stale", "is_result", "job_url", "load_study", "mask_url", "open_reader",
           "open_storage", "quiet_optuna", "read_studies", "resolve_storage", "slot", "slot_states",
           "split_study_name", "standing", "storage_errors", "stored_models", "stored_study_names", "study_attrs",
           "study_name", "study_urls", "trial_state"]
