"""`robustbench-vit calibrate STUDY`: the A/A check. Train R independent copies of a baseline on the study's own
settings and report how often the verdict separates copies of one model, and the noise floor of each headline
statistic at this study's size (see analysis/noise.py). The copies stay in the study's storage, so every later
report, `compare` and scorecard on it quotes the measured floor.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

from robustbench_vit.analysis.frame import load_results
from robustbench_vit.analysis.metrics import model_metrics
from robustbench_vit.analysis.noise import STATISTICS, NoiseFloor, copy_name, copy_of, noise_floors
from robustbench_vit.analysis.summary import terminal_lines
from robustbench_vit.analysis.verdict import verdict
from robustbench_vit.commands.common import overrides_of, print_plan, run_options_of, terminal_width
from robustbench_vit.errors import UserError
from robustbench_vit.models import ModelSpec
from robustbench_vit.store import mask_url
from robustbench_vit.study.files import load_spec
from robustbench_vit.study.launch import run_study
from robustbench_vit.study.options import RunOptions


def copies(model: ModelSpec, replicas: int) -> list[ModelSpec]:
    """R copies of `model`: the same stem, options, size and depth under the names `<model>_aa<k>`; each trial's
    init seed is hashed from its model's name, so every copy starts from its own weights."""
    return [model.model_copy(update={"name": copy_name(model.name, k)}) for k in range(1, replicas + 1)]


@dataclass(frozen=True)
class CalibrateRequest:
    """`calibrate`: the study (its preset and --set), the model to copy (None: the study's conv-stem model) and how
    many copies, how to run; `as_json`: print one JSON object; `out`: the result file; `dry_run`: the plan only."""

    study: str
    model: str | None = None
    replicas: int = 3
    preset: str | None = None
    run: RunOptions = field(default_factory=RunOptions)
    overrides: dict | None = None
    as_json: bool = False
    out: str | Path | None = None
    dry_run: bool = False


def _print(result: dict, floor: NoiseFloor, *, replicas: int, path: Path) -> None:
    """The A/A result in words: the rate at which the verdict separates copies, the noise floors, then each pair's
    headline."""
    rate, lo, hi = floor.rate
    print(f"A/A check of {result['model']} on {result['study']}: {floor.copies} independent copies (the original "
          f"and {replicas} more), {floor.settings} settings each, {len(floor.pairs)} pairs")
    print(f"separated by the verdict (more or less robust): {floor.separated} of {len(floor.pairs)} pairs = "
          f"{100 * rate:.0f}% (95% Wilson interval {100 * lo:.0f}–{100 * hi:.0f}%)")
    print("noise floor (largest |difference| between two copies):")
    for key, (what, spec_, scale) in STATISTICS.items():
        print(f"  {what:<30} ±{abs(floor.floors[key]) * scale:{spec_.lstrip('+')}}")
    print(f"written: {path}")
    print("\n".join(terminal_lines([h["line"] for h in result["headlines"]],
                                    terminal_width())))


def calibrate_command(request: CalibrateRequest) -> int:
    """Run the copies (with the original, reusing its stored trials), then print the A/A rate and noise floors."""
    r = request
    spec = load_spec(r.study, r.preset, r.overrides)
    if r.replicas < 1:
        raise UserError(f"--replicas {r.replicas}: must be at least 1 (copies besides {r.model or 'the model'})")
    names = [m.name for m in spec.models]
    conv = [m for m in spec.models if m.stem == "conv"]
    chosen = next((m for m in spec.models if m.name == r.model), None) if r.model else (conv or spec.models)[0]
    if chosen is None or copy_of(chosen.name):
        raise UserError(f"--model {r.model!r}: not a model of study {spec.name!r}; allowed: {', '.join(names)}")
    made = copies(chosen, r.replicas)
    if r.dry_run:
        return print_plan([spec], r.run, [chosen, *made])
    summary = run_study(spec, r.run, models=[chosen, *made])
    df = load_results(spec.name, r.run.results)
    df = df[df["model"].isin([chosen.name, *(m.name for m in made)])]
    floor = noise_floors(df).get(chosen.name)
    if floor is None:
        raise UserError(f"study {spec.name!r}: the copies of {chosen.name} have no results to compare yet "
                        f"({summary.done}/{summary.total} trials finished); run calibrate again")
    rate, lo, hi = floor.rate
    mm = model_metrics(df)
    result = {"study": spec.name, "model": chosen.name, "copies": floor.copies, "settings": floor.settings,
              "pairs": len(floor.pairs), "separated": floor.separated, "aa_rate": rate, "aa_rate_low": lo,
              "aa_rate_high": hi, "noise_floor": floor.floors,
              "outcomes": {f"{c.model} vs {c.baseline}": c.outcome for c in floor.pairs},
              "headlines": [verdict(c, mm).to_dict() for c in floor.pairs],
              "storage": mask_url(summary.storage)}
    path = Path(r.out) if r.out else Path("reports") / spec.name / "calibration.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    if r.as_json:
        print(json.dumps(result))
    else:
        _print(result, floor, replicas=r.replicas, path=path)
    return 0


def main(args: argparse.Namespace) -> int:
    """`calibrate` from its parsed flags."""
    return calibrate_command(CalibrateRequest(args.name, model=args.model, replicas=args.replicas, preset=args.preset,
                                              run=run_options_of(args), overrides=overrides_of(args),
                                              as_json=args.json, out=args.out, dry_run=args.dry_run))
