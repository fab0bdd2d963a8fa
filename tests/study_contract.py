"""A tiny real study (2 micro models x 2 lr points, 1 epoch on digits) and a check of its storage, read with plain Optuna.

Shared by the PostgreSQL and SLURM study tests: what they prove is that the harness writes exactly the storage
contract wherever the trials run.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import optuna

from robustbench_vit.study.files import load_spec
from robustbench_vit.study.spec import StudySpec

MODELS = ("vit_p_micro", "vit_c_micro")
LRS = (5e-4, 2e-3)

SPEC_YAML = """\
description: service test, 2 models x 2 lr points, 1 epoch
models: [vit_p_micro, vit_c_micro]
dataset: digits
train: {{epochs: {epochs}, batch_size: 128, weight_decay: 0.05}}
space:
  lr: {{values: [{lrs}]}}
design: {{kind: grid, seeds: 1}}
"""


def small_spec(folder: Path, prefix: str, epochs: int = 1) -> StudySpec:
    """Write and load a study file with a unique name (several tests may share one database)."""
    path = folder / f"{prefix}_{uuid.uuid4().hex[:8]}.yaml"
    path.write_text(SPEC_YAML.format(epochs=epochs, lrs=", ".join(map(str, LRS))))
    return load_spec(str(path))


def assert_stored(url: str, spec: StudySpec, runs_dir: Path) -> dict[str, list[optuna.trial.FrozenTrial]]:
    """Every model study holds one finished trial per (point, seed), paired across models, per the contract."""
    names = set(optuna.get_all_study_names(url))
    standing: dict[str, list[optuna.trial.FrozenTrial]] = {}
    for model in MODELS:
        assert f"{spec.name}/{model}" in names
        study = optuna.load_study(study_name=f"{spec.name}/{model}", storage=url)
        attrs = study.user_attrs
        assert (attrs["schema"], attrs["study"], attrs["model"]["name"], attrs["preset"]) == (2, spec.name, model, None)
        assert attrs["spec"]["space"]["lr"]["values"] == list(LRS)
        done = sorted((t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE),
                      key=lambda t: t.user_attrs["point"])
        assert [(t.user_attrs["point"], t.user_attrs["seed"]) for t in done] == [(0, 0), (1, 0)]
        for t in done:
            a = t.user_attrs
            assert a["status"] in ("complete", "diverged") and t.value == a["final_error"]
            assert 0 <= a["min_error"] <= a["final_error"] <= 100
            assert a["epochs_run"] == len(a["history"]) >= 1 and a["seconds"] > 0
            assert t.intermediate_values == {h["epoch"]: h["val_error"] for h in a["history"]}  # dashboard curves
            assert a["config"]["model"]["name"] == model and a["config"]["lr"] == t.params["lr"]
            assert a["params_count"] > 0 and "commit" in a and a["host"] and "torch" in a["versions"]
            assert (runs_dir / spec.name / "trials" / model / f"p{a['point']}-s{a['seed']}").is_dir()
        standing[model] = done
    assert [t.params for t in standing[MODELS[0]]] == [t.params for t in standing[MODELS[1]]]  # paired points
    assert sorted(t.params["lr"] for t in standing[MODELS[0]]) == sorted(LRS)
    return standing
