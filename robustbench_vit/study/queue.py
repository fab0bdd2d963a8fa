"""The queue of a study in storage: each model's Optuna study made from (and checked against) the spec, and every
planned (point, seed) that is not done queued as a WAITING trial (failed ones again)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from robustbench_vit.errors import UserError
from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.models.stems import stem_source
from robustbench_vit.store import (SCHEMA, create_model_study, fail_stale, mask_url, quiet_optuna, slot, slot_states,
                                   study_name)
from robustbench_vit.study.plan import Point
from robustbench_vit.study.spec import StudySpec


def trial_dir(runs_dir: str | Path, study: str, model: str, *, point: int, seed: int) -> Path:
    """Checkpoint folder of one (model, point, seed): shared by every attempt, so retries resume."""
    return Path(runs_dir) / study / "trials" / model / f"p{point}-s{seed}"


def same_model(stored: dict[str, Any], model: ModelSpec) -> bool:
    """True if a stored model trains like `model`: same size, stem, stem options and reference (and depth where both
    set)."""
    now = model.model_dump(mode="json")
    if any(stored.get(k) != now[k] for k in ("size", "stem", "stem_options", "reference")):
        return False
    return stored.get("depth") is None or now["depth"] is None or stored["depth"] == now["depth"]


def open_studies(spec: StudySpec, url: str, models: list[ModelSpec] | None = None) -> dict[str, optuna.Study]:
    """Create or load the Optuna study of each model, checking that stored ones were made by the same spec."""
    out = {}
    for model in models or spec.models:
        name = study_name(spec.name, model.name)
        study = create_model_study(spec.name, model.name, url)
        attrs = study.user_attrs
        if attrs.get("spec") is not None:
            stored = StudySpec.model_validate(attrs["spec"]).fingerprint()
            if attrs.get("schema", 1) < SCHEMA:
                raise UserError(f"{mask_url(url)}: study {name!r} was made under the old seeding rule (every trial of "
                                f"a model from one init seed); run it under another name or --runs-dir, or delete "
                                f"the old storage")
            if stored != spec.fingerprint() or not same_model(attrs.get("model") or {}, model):
                was = f" (preset {attrs.get('preset')})" if attrs.get("preset") else ""
                raise UserError(f"{mask_url(url)}: study {name!r} was made from a different spec{was}; run the "
                                f"changed study under another name or --runs-dir, or delete the old storage")
            stored_source = attrs.get("stem_source")
            if stored_source and stem_source(model.stem) != stored_source:
                raise UserError(f"{mask_url(url)}: stem file {stored_source['file']} changed since study {name!r} "
                                f"stored its trials; run the edited stem under another name (compare --name), "
                                f"or delete the old storage")
        else:
            for key, value in {"schema": SCHEMA, "study": spec.name, "model": model.model_dump(mode="json"),
                               "spec": spec.model_dump(mode="json"), "preset": spec.preset,
                               "stem_source": stem_source(model.stem)}.items():
                study.set_user_attr(key, value)
        out[model.name] = study
    return out


def _retry_params(trials: list[FrozenTrial]) -> dict[tuple[int, int], FrozenTrial]:
    """Per (point, seed): its latest failed attempt with sampled params the trainer could take (tpe retries reuse them).

    A retry must train the same config, or it could not resume the failed attempt's checkpoint.
    """
    out = {}
    for t in trials:
        if t.state == TrialState.FAIL and t.params and "point" in t.user_attrs and \
                not str(t.user_attrs.get("message") or "").startswith("invalid config"):
            out[slot(t)] = t
    return out


def enqueue_missing(study: optuna.Study, points: list[Point], seeds: list[int]) -> int:
    """Queue every planned (point, seed) not done, running or queued (failed ones are retried); returns how many."""
    added = 0
    fail_stale(study)
    with quiet_optuna():
        trials = study.get_trials(deepcopy=False)
        have, failed = slot_states(trials), _retry_params(trials)
        for p in points:
            for s in seeds:
                if have.get((p.index, s), "failed") == "failed":
                    prev = failed.get((p.index, s)) if not p.params else None  # tpe slots: the failed sample
                    params = prev.params if prev else p.params  # else filled when claimed
                    dists = prev.distributions if prev else {k: p.distributions[k] for k in p.params}
                    study.add_trial(optuna.trial.create_trial(state=TrialState.WAITING, params=params,
                                                              distributions=dists,
                                                              user_attrs={"point": p.index, "seed": s}))
                    added += 1
    return added
