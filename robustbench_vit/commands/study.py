"""`robustbench-vit study run|status|list`: run a study, show its progress, list the studies available."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table

from robustbench_vit.commands.common import (WIDE, as_json_or_text, overrides_of, print_headlines, print_plan,
                                            results_of, run_options_of, study_verdicts, until_of)
from robustbench_vit.commands.until import Until, comparison_decider, run_until_decided, until_flags
from robustbench_vit.errors import UserError
from robustbench_vit.store import STATES, Results, mask_url
from robustbench_vit.study.files import load_spec, study_name
from robustbench_vit.study.launch import run_study
from robustbench_vit.study.options import RunOptions
from robustbench_vit.study.overrides import override_flags
from robustbench_vit.study.status import list_studies, study_status


def _location_flags(runs_dir: str, storage: str | None) -> str:
    """The storage options to repeat in a follow-up command (none for the defaults; any password masked)."""
    return f" --storage '{mask_url(storage)}'" if storage else "" if runs_dir == "runs" else f" --runs-dir {runs_dir}"


@dataclass(frozen=True)
class StudyRunRequest:
    """`study run`: the study (a name or a YAML path), its preset and --set overrides, how to run it; `dry_run`: the
    plan only; `until`: look by look until every comparison is decided."""

    name: str
    preset: str | None = None
    run: RunOptions = field(default_factory=RunOptions)
    overrides: dict | None = None
    dry_run: bool = False
    until: Until | None = None
    as_json: bool = False


def run_command(request: StudyRunRequest) -> int:
    """`study run`: run what is left of a study, then say where the results are, what comes next and each
    comparison's headline (`dry_run`: print the plan only; `until`: look by look until every comparison is decided;
    `as_json`: all of it as one JSON object on stdout, everything else on stderr)."""
    return as_json_or_text(lambda: _run(request), request.as_json)


def _run(request: StudyRunRequest) -> tuple[int, dict]:
    """Run the study and print what was done; (exit code, what was done as JSON values)."""
    name, preset, options, overrides = request.name, request.preset, request.run, request.overrides
    dry_run, until = request.dry_run, request.until
    spec = load_spec(name, preset, overrides)
    if until is not None and options.detach:
        raise UserError("--until-decided analyses every look as it finishes; it cannot --detach")
    if dry_run:
        return print_plan([spec], options, until=until), {"study": spec.name, "dry_run": True}
    flags = _location_flags(str(options.runs_dir), options.storage)
    again = (f"robustbench-vit study run {name}{f' --preset {preset}' if preset else ''}"
             f"{override_flags(overrides or {})}{flags}{until_flags(until)}")
    found = {"study": spec.name, "results": mask_url(options.results.url(spec.name)),
             "next": f"robustbench-vit report {spec.name}{flags}"}
    try:
        if until is not None:
            seq = run_until_decided(spec, options, until, comparison_decider())
            print(f"results: {found['results']}")
            print(f"next: {found['next']}")  # its looks printed each decision
            found |= {"stopped": seq.reason, "ran": seq.ran, "trials": {"done": seq.trials},
                      "verdicts": [v.to_dict() for v in study_verdicts(spec, options.results)]}
            return (0 if seq.reason != "failed trials" else 1), found
        summary = run_study(spec, options, progress=not options.detach)
    except KeyboardInterrupt:
        print(f"stopped; finished trials are stored. Resume with: {again}", file=sys.stderr)
        raise
    if options.detach:
        print(f"{spec.name}: {len(summary.jobs)} SLURM job(s) queued or running for {summary.total - summary.done} "
              f"unfinished trial(s){f' ({summary.jobs[0]} ...)' if summary.jobs else ''}")
        print(f"follow: robustbench-vit study status {spec.name}{flags}")
        print(f"later: {again} --executor slurm"
              f"{' (and the same --slurm-* options)' if options.slurm.given() else ''}"
              f"   (waits for these jobs, re-runs failed or lost trials)")
        return 0, found | {"jobs": summary.jobs, "next": f"{again} --executor slurm"}
    totals = {s: sum(c[s] for c in summary.counts.values()) for s in STATES}
    print(f"{spec.name}: {summary.done}/{summary.total} trials finished ({totals['complete']} complete, "
          f"{totals['diverged']} diverged, {totals['stopped']} stopped early, {totals['failed']} failed) for "
          f"{', '.join(summary.models)}; {summary.ran} ran now in {summary.seconds:.0f} s")
    print(f"results: {mask_url(summary.storage)}")
    print(f"next: {found['next']}")
    verdicts = study_verdicts(spec, options.results)
    print_headlines(verdicts)
    found |= {"models": summary.models, "ran": summary.ran, "seconds": round(summary.seconds, 1),
              "trials": {"done": summary.done, "total": summary.total, **totals},
              "verdicts": [v.to_dict() for v in verdicts]}
    return (0 if totals["failed"] == 0 else 1), found


def status_command(name: str, results: Results, as_json: bool) -> int:
    """`study status`: counts by model and status, and the storage location."""
    counts = study_status(name, results)
    url = mask_url(results.url(name))
    if as_json:
        print(json.dumps(counts, indent=2))
        print(f"storage: {url}", file=sys.stderr)
        return 0
    t = Table(title=f"study {name}")
    t.add_column("model")
    for s in STATES:
        t.add_column(s, justify="right")
    for model, c in counts.items():
        t.add_row(model, *(str(c[s]) for s in STATES))
    console = Console()
    console.print(t)
    console.print(f"storage: {url}", soft_wrap=True)
    return 0


def _study_block(row: dict) -> str:
    """One study of `study list` in lines of at most 80 characters: name, trials, models, presets; description."""
    head = f"{row['name']}: {row['trials']} trials ({', '.join(row['models'])}); presets: {', '.join(row['presets'])}"
    return (textwrap.fill(head, 80, subsequent_indent="    ") + "\n" +
            textwrap.fill(row["description"], 80, initial_indent="  ", subsequent_indent="  "))


def list_command(as_json: bool = False) -> int:
    """`study list`: name, description, models, trial count and presets of every study reachable by name."""
    rows = list_studies()
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    console = Console()
    if not (console.is_terminal and console.width >= WIDE):  # a log, a pipe, a narrow terminal: a block each
        print("\n\n".join(_study_block(r) for r in rows))
        return 0
    t = Table(title="studies")
    for col in ("name", "description", "models", "trials", "presets"):
        t.add_column(col, justify="right" if col == "trials" else "left")
    for r in rows:
        t.add_row(r["name"], r["description"], ", ".join(r["models"]), str(r["trials"]), ", ".join(r["presets"]))
    console.print(t)
    return 0


def main(args: argparse.Namespace) -> int:
    """`study run|status|list` from its parsed flags."""
    if args.study_command == "list":
        return list_command(args.json)
    if args.study_command == "status":
        return status_command(study_name(args.name), results_of(args), args.json)
    return run_command(StudyRunRequest(args.name, args.preset, run_options_of(args), overrides=overrides_of(args),
                                       dry_run=args.dry_run, until=until_of(args), as_json=args.json))
