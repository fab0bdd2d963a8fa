"""Watching studies: counts by model and status, and the list of available studies."""

from __future__ import annotations

from pathlib import Path

import optuna

from robustbench_vit.errors import UserError
from robustbench_vit.study.files import list_specs, load_spec
from robustbench_vit.study.plan import quiet_optuna, trial_count
from robustbench_vit.study.storage import count_states, load_study, mask_url, open_storage, resolve_storage


def study_models(name: str, url: str) -> list[str]:
    """The models stored for study `name` (in creation order)."""
    with quiet_optuna():
        names = optuna.get_all_study_names(open_storage(url, create=False))
    return [n.split("/", 1)[1] for n in names if n.startswith(f"{name}/")]


def study_status(name: str, runs_dir: str | Path = "runs", storage: str | None = None) -> dict[str, dict[str, int]]:
    """{model: {status: count}} over complete, diverged, failed, running and pending (point, seed) slots."""
    url = resolve_storage(name, runs_dir, storage)
    models = study_models(name, url)
    if not models:
        raise UserError(f"no study {name!r} in {mask_url(url)}; start it with `robustbench-vit study run {name}`")
    return {m: count_states(load_study(name, m, url)) for m in models}


def list_studies() -> list[dict]:
    """Every study reachable by name: name, description, models, trials (all models), presets, path."""
    rows = []
    for path in list_specs():
        try:
            spec = load_spec(str(path))
        except UserError as e:
            rows.append({"name": path.stem, "description": f"(invalid: {e})", "models": [], "trials": 0,
                         "presets": [], "path": str(path)})
            continue
        rows.append({"name": spec.name, "description": spec.description, "models": [m.name for m in spec.models],
                     "trials": trial_count(spec) * len(spec.models), "presets": sorted(spec.presets),
                     "path": str(path)})
    return rows
