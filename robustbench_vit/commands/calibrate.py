"""`robustbench-vit calibrate STUDY`: the A/A check. Train R independent copies of a baseline on the study's own
settings and report how often the verdict separates copies of one model, and the noise floor of each headline
statistic at this study's size (see analysis/noise.py). The copies stay in the study's storage, so every later
report, `compare` and scorecard on it quotes the measured floor.
"""

from __future__ import annotations

import json
from pathlib import Path

from robustbench_vit.errors import UserError
from robustbench_vit.models import ModelSpec
from robustbench_vit.store import mask_url
from robustbench_vit.study.files import load_spec
from robustbench_vit.study.launch import run_study
from robustbench_vit.study.options import RunOptions


def copies(model: ModelSpec, replicas: int) -> list[ModelSpec]:
    """R copies of `model`: the same stem, options, size and depth under the names `<model>_aa<k>`; each trial's
    init seed is hashed from its model's name, so every copy starts from its own weights."""
    from robustbench_vit.analysis.noise import copy_name

    return [model.model_copy(update={"name": copy_name(model.name, k)}) for k in range(1, replicas + 1)]


def calibrate_command(study: str, *, model: str | None = None, replicas: int = 3, preset: str | None = None,
                      run: RunOptions = RunOptions(), overrides: dict | None = None, as_json: bool = False,
                      out: str | Path | None = None, dry_run: bool = False) -> int:
    """Run the copies (with the original, reusing its stored trials), then print the A/A rate and noise floors."""
    from robustbench_vit.analysis.frame import load_results
    from robustbench_vit.analysis.noise import STATISTICS, copy_of, noise_floors

    spec = load_spec(study, preset, overrides)
    if replicas < 1:
        raise UserError(f"--replicas {replicas}: must be at least 1 (copies besides {model or 'the model'})")
    names = [m.name for m in spec.models]
    conv = [m for m in spec.models if m.stem == "conv"]
    chosen = next((m for m in spec.models if m.name == model), None) if model else (conv or spec.models)[0]
    if chosen is None or copy_of(chosen.name):
        raise UserError(f"--model {model!r}: not a model of study {spec.name!r}; allowed: {', '.join(names)}")
    made = copies(chosen, replicas)
    if dry_run:
        from robustbench_vit.commands.study import print_plan

        return print_plan([spec], run, [chosen, *made])
    summary = run_study(spec, run, models=[chosen, *made])
    df = load_results(spec.name, run.results)
    floor = noise_floors(df[df["model"].isin([chosen.name, *(m.name for m in made)])]).get(chosen.name)
    if floor is None:
        raise UserError(f"study {spec.name!r}: the copies of {chosen.name} have no results to compare yet "
                        f"({summary.done}/{summary.total} trials finished); run calibrate again")
    rate, lo, hi = floor.rate
    result = {"study": spec.name, "model": chosen.name, "copies": floor.copies, "settings": floor.settings,
              "pairs": len(floor.pairs), "separated": floor.separated, "aa_rate": rate, "aa_rate_low": lo,
              "aa_rate_high": hi, "noise_floor": floor.floors,
              "outcomes": {f"{c.model} vs {c.baseline}": c.outcome for c in floor.pairs},
              "storage": mask_url(summary.storage)}
    path = Path(out) if out else Path("reports") / spec.name / "calibration.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    if as_json:
        print(json.dumps(result))
        return 0
    print(f"A/A check of {chosen.name} on {spec.name}: {floor.copies} independent copies (the original and "
          f"{replicas} more), {floor.settings} settings each, {len(floor.pairs)} pairs")
    print(f"separated by the verdict (more or less robust): {floor.separated} of {len(floor.pairs)} pairs = "
          f"{100 * rate:.0f}% (95% Wilson interval {100 * lo:.0f}–{100 * hi:.0f}%)")
    print("noise floor (largest |difference| between two copies):")
    for key, (what, spec_, scale) in STATISTICS.items():
        print(f"  {what:<30} ±{abs(floor.floors[key]) * scale:{spec_.lstrip('+')}}")
    for c in floor.pairs:
        print(f"  {c.model} vs {c.baseline}: {c.outcome}")
    print(f"written: {path}")
    return 0
