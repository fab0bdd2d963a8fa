"""What several commands share; none of it is a command. The shared flags as typed values, the --dry-run plan, the
terminal width that gets tables, the leaderboard of given studies (`leaderboard`, and `compare` with several stems),
and the claims run behind a scorecard (`reproduce`, and `compare --claims` with a stem in ViT_C's place): plan and
confirm, run what is missing (or look by look until decided), score each claim, write and print the scorecard."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import shlex
import shutil
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console

from robustbench_vit.analysis.claims import (CLAIM_DECIDED, Claim, ClaimLook, Roles, Score, ScoredClaim, Scorecard,
                                             baselines, claim_key, claim_lines, claim_trials, load_claims, score)
from robustbench_vit.analysis.frame import load_results
from robustbench_vit.analysis.leaderboard import study_rows
from robustbench_vit.analysis.sequential import expected_settings
from robustbench_vit.analysis.verdict import Verdict, analyse, headline_lines, rerun
from robustbench_vit.commands.until import (NOTHING_SPENT, Budget, Decider, Outcome, Sequential, Until, look_frame,
                                            run_until_decided, until_lines)
from robustbench_vit.errors import UserError, choices
from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.report.build import build_report, parse_formats
from robustbench_vit.report.leaderboard import glances, write_leaderboard
from robustbench_vit.report.scorecard import blocks, card_json, table, write_scorecard
from robustbench_vit.store import Results
from robustbench_vit.study.estimate import GPU_TFLOPS, Cost, cost, plan_lines
from robustbench_vit.study.files import load_spec
from robustbench_vit.study.gpus import auto_workers, study_gpus
from robustbench_vit.study.launch import run_study
from robustbench_vit.study.options import RunOptions, SlurmOptions, parse_sbatch_options
from robustbench_vit.study.overrides import parse_overrides
from robustbench_vit.study.plan import extended, trial_count
from robustbench_vit.study.spec import BASE_PRESETS, StudySpec, override_suffix

WIDE = 120  # a terminal at least this wide gets tables; narrower ones, logs and pipes get blocks of 80 columns
PRESETS = ("default", *BASE_PRESETS)  # the presets a claims run takes (every study has each)
CONFIRM_GPU_HOURS = 100  # above this, a claims run asks before launching (or needs --yes)
CPU_SIZED = 0.05  # GPU-hours below which a plan is called CPU-sized and its GPU-hours are not printed


def terminal_width() -> int:
    """The terminal's columns (80 where output is not a terminal); headlines wrap to it, at most 100."""
    return shutil.get_terminal_size((80, 24)).columns


def study_verdicts(spec: StudySpec, results: Results) -> list[Verdict]:
    """Every comparison's verdict in a stored study (none where nothing is stored yet)."""
    try:
        df = load_results(spec.name, results)
    except UserError:  # nothing stored yet: no comparison to state
        return []
    return analyse(df, rerun(spec.name, spec.preset)).verdicts


def print_headlines(verdicts: list[Verdict]) -> None:
    """Every comparison's headline, one line each (wrapped at the terminal's width): how `study run` ends."""
    if verdicts:
        print("\n".join(headline_lines(verdicts, terminal_width())))


def as_json_or_text(run: Callable[[], tuple[int, dict]], as_json: bool) -> int:
    """Run a command that prints as it goes and returns (exit code, what it did as JSON values); `as_json`: what it
    printed goes to stderr and stdout holds the one JSON object."""
    if not as_json:
        return run()[0]
    with contextlib.redirect_stdout(sys.stderr):
        code, found = run()
    print(json.dumps(found, indent=2))
    return code


def results_of(args: argparse.Namespace) -> Results:
    """Where the results live: --runs-dir and --storage."""
    return Results.of(args.runs_dir, args.storage)


def overrides_of(args: argparse.Namespace) -> dict:
    """The --set KEY=VALUE overrides, checked ({dotted key: value})."""
    return parse_overrides(args.set)


def run_options_of(args: argparse.Namespace) -> RunOptions:
    """The options of a command that runs trials, validated once: RunOptions (one error line otherwise)."""
    slurm = {"partition": args.slurm_partition, "timeout_min": args.slurm_timeout_min, "cpus_per_task": args.slurm_cpus,
             "gpus_per_node": args.slurm_gpus, "array_parallelism": args.slurm_array_parallelism,
             "additional_parameters": parse_sbatch_options(args.slurm_option) or None, "ddp": args.slurm_ddp}
    return RunOptions.from_flags(runs_dir=args.runs_dir, storage=args.storage, executor=args.executor,
                                 workers=args.workers, trials_per_gpu=args.trials_per_gpu, data_root=args.data_root,
                                 slurm=SlurmOptions(**slurm), detach=getattr(args, "detach", False))


def until_of(args: argparse.Namespace) -> Until | None:
    """The --until-decided options (None without the flag; --budget / --look-every alone are refused)."""
    if not args.until_decided:
        given = [f for f, v in (("--budget", args.budget), ("--look-every", args.look_every)) if v is not None]
        if given:
            raise UserError(f"{given[0]} is an option of --until-decided; add --until-decided, or leave it out")
        return None
    return Until(Budget.parse(args.budget), args.look_every)


@dataclass(frozen=True)
class Launch:
    """How a command that trains runs its trials: where and on what (`run`), the --set `overrides`, the plan only
    (`dry_run`), look by look until decided (`until`), and above CONFIRM_GPU_HOURS without asking (`yes`)."""

    run: RunOptions = field(default_factory=RunOptions)
    overrides: dict | None = None
    dry_run: bool = False
    until: Until | None = None
    yes: bool = False

    @classmethod
    def of(cls, args: argparse.Namespace) -> Launch:
        """From the parsed flags, each checked in the order the command line gives them."""
        return cls(run=run_options_of(args), overrides=overrides_of(args), dry_run=args.dry_run,
                   until=until_of(args), yes=getattr(args, "yes", False))


def print_plan(specs: list[StudySpec], options: RunOptions, models: list[ModelSpec] | None = None,
               until: Until | None = None) -> int:
    """--dry-run: print the plan and its estimated cost (GPU-hours where trials run on GPUs, else CPU time); with
    `until`, the look schedule and the cost at the budget too."""
    spec = specs[0]
    on_gpu = spec.device.startswith("cuda") or bool(study_gpus(spec)) or \
        options.executor == "slurm" and bool(options.slurm.over(spec.slurm).gpus_per_node)
    workers = options.workers or auto_workers(spec, options.executor)
    print("\n".join(plan_lines(specs, models, workers=workers, on_gpu=on_gpu)))
    if until is not None:
        print("\n".join(until_lines(specs, models, until, workers=workers, on_gpu=on_gpu)))
    return 0


def write_leaderboard_of(studies: list[str], results: Results, out: Path, *, formats: list[str],
                         reports: dict[str, Path]) -> None:
    """Rank every stem of `studies`, write the leaderboard under `out` (linking `reports`: study → its report.html)
    and print where each format went."""
    rows = [r for s in studies for r in study_rows(s, results)]
    if not rows:
        raise UserError(f"studies {', '.join(studies)} hold no stem besides the patchify baseline")
    glance = glances(studies, results) if "html" in formats else None
    for fmt, path in write_leaderboard(rows, out, formats, reports, glance=glance).items():
        print(f"leaderboard {fmt}: {path}")


@dataclass(frozen=True)
class ScorecardRequest:
    """A claims run: which claims (comma-separated ids; None: all) at which preset, how it launches, where the
    scorecard goes, in which formats and whether it prints as JSON; `stem`: a model in ViT_C's place."""

    preset: str = "default"
    claims: str | None = None
    launch: Launch = field(default_factory=Launch)
    out: str | None = None
    formats: str = "html,pdf"
    stem: ModelSpec | None = None
    as_json: bool = False


def load_studies(claims: list[Claim], preset: str, overrides: dict | None = None) -> dict[str, StudySpec]:
    """The specs of the studies behind `claims`, at the preset (default: each study's own default), with the
    --set `overrides` applied to each."""
    if preset not in PRESETS:
        raise UserError(f"--preset {preset!r} is not one of {choices(PRESETS)}")
    by_study: dict[str, list[Claim]] = {}
    for c in claims:
        by_study.setdefault(c.study, []).append(c)
    return {name: claimed_models(load_spec(name, None if preset == "default" else preset, overrides), cs)
            for name, cs in by_study.items()}


def claimed_models(spec: StudySpec, claims: list[Claim]) -> StudySpec:
    """`spec` as its claims need it: its CNN reference only where one of them speaks of the reference. (No claim on
    epoch_stability does: its RegNetY, the paper's Fig. 2 yardstick, is `study run epoch_stability`'s, and would
    cost reproduce a third of that study's trials at 1.6× a ViT trial's time on a CPU.) The study keeps its name and
    storage: the models' trials are the same either way."""
    if any("reference" in c.models for c in claims):
        return spec
    return spec.model_copy(update={"models": [m for m in spec.models if not m.is_reference], "reference": None})


def confirm(preset: str, trials: int, hours: float, *, yes: bool, until: bool = False) -> None:
    """Print the plan (`until`: the budget); above CONFIRM_GPU_HOURS ask on a terminal, else require --yes."""
    cost = (f"about {hours:,.1f} GPU-hours at {GPU_TFLOPS:.0f} TFLOP/s sustained per GPU (a lower bound for "
            f"small models, which a GPU runs below its FLOP rate)" if hours >= CPU_SIZED else "CPU-sized")
    what = "at most" if until else "planned"
    print(f"reproduce --preset {preset}: {trials} trials {what}, {cost}; trials already stored are reused",
          file=sys.stderr)
    if hours <= CONFIRM_GPU_HOURS or yes:
        return
    if sys.stdin.isatty():
        if input(f"That is over {CONFIRM_GPU_HOURS} GPU-hours. Launch? [y/N] ").strip().lower() in ("y", "yes"):
            return
        raise UserError("not launched")
    raise UserError(f"about {hours:,.0f} GPU-hours (over {CONFIRM_GPU_HOURS}): pass --yes to launch")


def until_cost(specs: dict[str, StudySpec], models: list[ModelSpec] | None, until: Until) -> Cost:
    """The cost of every study run to its --until-decided budget (the most it may use)."""
    costs = [cost([extended(s, until.budget.settings(s, models or s.models))], models) for s in specs.values()]
    return Cost(sum(c.trials for c in costs), sum(c.epochs for c in costs), sum(c.flops for c in costs))


def models_for(spec: StudySpec, stem: ModelSpec | None) -> list[ModelSpec]:
    """The models a claims study runs: its own, or both baselines, the study's CNN reference of that size and the
    stem."""
    if stem is None:
        return spec.models
    refs = [m for m in spec.models if m.is_reference and m.size == stem.size]
    return [ModelSpec.from_name(f"vit_{k}_{stem.size}") for k in "pc"] + refs + [stem]


def _gpu_hours(c: Cost) -> str:
    """", N GPU-hours" for a GPU-sized cost; nothing for a CPU-sized one."""
    return f", {c.gpu_hours:,.1f} GPU-hours" if c.gpu_hours >= CPU_SIZED else ""


def _expected(claim: Claim, spec: StudySpec, *, default: StudySpec, df, until: Until,
              stem: ModelSpec | None) -> list[str]:
    """expected_lines for one claim, a line per model size (`df`: the default preset's stored trials, or None)."""
    lines, ms = [], models_for(spec, stem)
    fixed = cost([spec], ms)
    for roles in baselines(spec.models, stem):
        size = roles.size
        small = baselines(default.models, None) if df is not None else []
        s = score(claim, df, small[0]) if small else None
        if s is None or s.effect is None or not s.se:
            lines.append(textwrap.fill(f"  {claim.id} ({size}): no stored default-preset result to estimate "
                                       f"from (run `robustbench-vit reproduce --until-decided` first); fixed "
                                       f"plan {fixed.trials} trials{_gpu_hours(fixed)}", 80,
                                       subsequent_indent="    "))
            continue
        budget, every = until.budget.settings(spec, ms), until.every(spec)
        n = expected_settings(s.effect, s.se, s.n, s.margin, looks=list(range(every, budget + 1, every)),
                              budget=budget)
        c = cost([extended(spec, max(1, math.ceil(n)))], ms)
        lines.append(textwrap.fill(
            f"  {claim.id} ({size}): about {n:.0f} of {budget} settings per model until decided, "
            f"{c.trials} trials{_gpu_hours(c)}; the fixed plan: {trial_count(spec)} per model, "
            f"{fixed.trials} trials{_gpu_hours(fixed)} (effect {s.effect:+.3g}, sd {s.se:.2g} at "
            f"{s.n} settings on {default.dataset})", 80, subsequent_indent="    "))
    return lines


def expected_lines(claims: list[Claim], specs: dict[str, StudySpec], *, preset: str, run: RunOptions, until: Until,
                   stem: ModelSpec | None) -> list[str]:
    """--until-decided --dry-run: per claim, the expected cost of a decision next to the fixed plan's, from the
    effect and its sd measured by the default preset's stored run (normal approximation of the looks,
    analysis.sequential.expected_settings); an estimate that assumes the effect carries over to this scale."""
    lines = [f"expected cost of a decision per claim (preset {preset}), from the default preset's stored effects:"]
    for claim in claims:
        default = load_spec(claim.study)
        try:
            df = load_results(default.name, run.results)
        except UserError:
            df = None
        lines += _expected(claim, specs[claim.study], default=default, df=df, until=until, stem=stem)
    return lines


def described(spec: StudySpec) -> str:
    """What a study runs: dataset, models, trials per model, epochs."""
    epochs = spec.space["epochs"].values if "epochs" in spec.space else [spec.epochs]
    span = f"{epochs[0]}" if len(epochs) == 1 else f"{min(epochs)}–{max(epochs)}"
    return (f"{spec.dataset}, {', '.join(m.name for m in spec.models)}: {trial_count(spec)} "
            f"trials per model, {span} epochs")


def claims_decider(claims: list[Claim], spec: StudySpec, stem: ModelSpec | None) -> Decider:
    """Decisions on the claims a study tests, per size: taken when reproduced, contradicted or equivalent. A cost
    claim is left out: it is a measurement, scored on every stored trial at the fixed 5% (its step-time interval
    would only widen at a look's spent level, and waiting on it would hold the study's looks open)."""
    def decide(df, level) -> list[Outcome]:
        """The outcome of each claim still pending, at the level this look spends on it."""
        out = []
        for claim in claims:
            if claim.test == "cost":  # a measurement, not a test that looks spend α on: scored on every trial
                continue
            for roles in baselines(spec.models, stem):
                key = claim_key(claim, roles.size)
                if (look := level(key)) is None:
                    continue
                if look.level <= 0:  # nothing left to spend: this look decides nothing
                    out.append(Outcome(key, "inconclusive", False, NOTHING_SPENT, 0))
                    continue
                s = score(claim, df, roles, alpha=look.level, power=False)
                p = "" if s.p is None else f"; p {s.p:.2g}"
                out.append(Outcome(key, s.status, s.status in CLAIM_DECIDED, f"{s.ours}{p}",
                                   claim_trials(claim, df, roles)))
        return out

    return decide


def _scored(claim: Claim, df, spec: StudySpec, *, roles: Roles, seq: Sequential | None) -> Score:
    """A claim's score: on every stored trial (fixed design), or on its sequential decision's look at that look's
    level (the trials of later looks, run for other claims, do not change a taken decision)."""
    key = claim_key(claim, roles.size)
    rec = seq.records.get(key) if seq and key in seq.keys else None  # a decision this run asked for
    if not rec or not rec.looks:
        return score(claim, df, roles)
    k = rec.decided.look if rec.decided else len(rec.looks)
    look = rec.looks[k - 1]
    frame = look_frame(df, spec, look.n, list(df["model"].unique()))
    s = score(claim, frame, roles, alpha=look.level)
    info = ClaimLook(k, look.n, claim_trials(claim, frame, roles), look.level, bool(rec.decided))
    return dataclasses.replace(s, look=info)


def decide_command(request: ScorecardRequest, scored: list[tuple[Score, int]]) -> str:
    """The command that looks on until the undecided claims are decided: this run's command (its claims, stem,
    preset and --set) with --until-decided, and where a look run spent its budget, a --budget in trials that reaches the
    settings per model the claims need (at least twice those spent); `scored`: each claim's score and the models
    its study trains per setting."""
    stem, ids = request.stem, [request.claims] if request.claims else []
    words = (["reproduce", *(["--claims", *ids] if ids else [])] if stem is None else
             ["compare", "--stem", stem.stem, "--name", stem.name, "--size", stem.size, "--claims", *ids])
    words += ["--options", shlex.quote(json.dumps(stem.stem_options))] if stem and stem.stem_options else []
    words += ["--preset", request.preset] if request.preset != "default" else []
    for key, value in (request.launch.overrides or {}).items():
        words += ["--set", shlex.quote(f"{key}={value if isinstance(value, str) else json.dumps(value)}")]
    words.append("--until-decided")
    spent = [max(s.needed or 0, 2 * s.look.n) * models for s, models in scored
             if s.status == "inconclusive" and s.look is not None and not s.look.decided]
    return " ".join(words + (["--budget", str(max(spent))] if spent else []))


def scorecard(claims: list[Claim], specs: dict[str, StudySpec], request: ScorecardRequest, *, reports: Path,
              sequential: dict[str, Sequential] | None = None) -> Scorecard:
    """Write each study's report and score every claim on it (per model size; `sequential`: per study, the
    looks of a --until-decided run, each claim scored at its deciding look)."""
    run, stem, scored, frames = request.launch.run, request.stem, [], {}
    for name, spec in specs.items():
        build_report(spec.name, run.results, out_dir=reports / spec.name)
        frames[name] = load_results(spec.name, run.results)
    for claim in claims:
        spec, df = specs[claim.study], frames[claim.study]
        seq = (sequential or {}).get(claim.study)
        for roles in baselines(spec.models, stem):
            s = _scored(claim, df, spec, roles=roles, seq=seq)
            scored.append((s, roles.size, f"../{spec.name}/report.html", df["model"].nunique()))
    command = decide_command(request, [(s, models) for s, _, _, models in scored])
    rows = tuple(ScoredClaim(s, size, report, command) for s, size, report, _ in scored)
    return Scorecard(request.preset, datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                     {s.name: described(s) for s in specs.values()}, rows)


def print_card(card: Scorecard, paths: dict[str, Path], as_json: bool) -> None:
    """Print the scorecard: JSON, a table on a wide terminal, else blocks; then the files written."""
    console = Console()
    if as_json:
        print(card_json(card, paths))
        return
    if console.is_terminal and console.width >= WIDE:
        console.print(table(card))
    else:
        print(blocks(card))
    for fmt, path in paths.items():
        print(f"{fmt}: {path}")
    print("\n".join(claim_lines(card.rows, terminal_width())))


def _run_studies(request: ScorecardRequest, chosen: list[Claim], specs: dict[str, StudySpec],
                 models: list[ModelSpec] | None) -> dict[str, Sequential]:
    """Run every study behind the claims (stored trials are reused); with --until-decided look by look until its
    claims are decided, returning each study's looks."""
    sequential: dict[str, Sequential] = {}
    launch = request.launch
    for key, spec in specs.items():
        if launch.until is not None:
            mine = [claim for claim in chosen if claim.study == key]
            sequential[key] = run_until_decided(spec, launch.run, launch.until,
                                                claims_decider(mine, spec, request.stem), models=models)
            continue
        done = run_study(spec, launch.run, models=models)
        print(f"{spec.name}: {done.done}/{done.total} trials finished; {done.ran} ran now in {done.seconds:.0f} s",
              file=sys.stderr)
    return sequential


def run_claims(request: ScorecardRequest) -> int:
    """Plan and confirm, run what is missing, score the claims, write and print the scorecard (`dry_run`: print the
    plan only)."""
    fmts = parse_formats(request.formats)
    chosen = load_claims([c.strip() for c in request.claims.split(",") if c.strip()] if request.claims else None)
    launch = request.launch
    specs = load_studies(chosen, request.preset, launch.overrides)
    stem, until = request.stem, launch.until
    models = None if stem is None else models_for(next(iter(specs.values())), stem)
    if launch.dry_run:
        print_plan(list(specs.values()), launch.run, models, until=until)
        if until is not None:
            print("\n".join(expected_lines(chosen, specs, preset=request.preset, run=launch.run, until=until,
                                           stem=stem)))
        return 0
    c = cost(list(specs.values()), models) if until is None else until_cost(specs, models, until)
    confirm(request.preset, c.trials, c.gpu_hours, yes=launch.yes or request.preset == "default",
            until=until is not None)
    sequential = _run_studies(request, chosen, specs, models)
    reports = Path(request.out) if request.out else Path("reports")
    card = scorecard(chosen, specs, request, reports=reports, sequential=sequential)
    folder = reports / (f"claims-{stem.name}" if stem else "reproduce")
    folder = folder.with_name(folder.name + ("" if request.preset == "default" else f"-{request.preset}") +
                              override_suffix(launch.overrides or {}))
    print_card(card, write_scorecard(card, folder, fmts), request.as_json)
    return 0
