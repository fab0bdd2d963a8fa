"""Watching studies: counts by model and status, and the list of available studies."""

from __future__ import annotations

from robustbench_vit.errors import UserError
from robustbench_vit.store import Results, count_states, load_study, mask_url, stored_models
from robustbench_vit.study.files import list_specs, load_spec
from robustbench_vit.study.plan import trial_count


def study_status(name: str, results: Results) -> dict[str, dict[str, int]]:
    """{model: {status: count}} over complete, diverged, failed, running and pending (point, seed) slots."""
    url = results.url(name)
    models = stored_models(name, url)
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
