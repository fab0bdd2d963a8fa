"""`robustbench-vit reproduce`: run (or reuse from storage) the studies behind the paper's stability claims,
score each claim, and write the scorecard (HTML, PDF) beside the studies' own reports."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import textwrap
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import jinja2
from rich.console import Console
from rich.table import Table

from robustbench_vit.analysis.claims import Claim, Score, load_claims, score
from robustbench_vit.commands.study import WIDE, print_plan
from robustbench_vit.commands.until import (NOTHING_SPENT, Decider, Outcome, Sequential, Until, look_frame,
                                            run_until_decided)
from robustbench_vit.errors import UserError, choices
from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.study.estimate import GPU_TFLOPS, cost
from robustbench_vit.study.options import RunOptions
from robustbench_vit.study.spec import StudySpec, override_suffix

DECIDED = ("reproduced", "contradicted", "equivalent")  # a claim's decided statuses

PRESETS = ("default", "cifar", "paper")
CONFIRM_GPU_HOURS = 100  # above this, `reproduce` asks before launching (or needs --yes)


@dataclass(frozen=True)
class Card:
    """A scorecard: the preset, what each study ran, and one score per (claim, model size)."""

    preset: str
    generated: str
    studies: dict[str, str]  # study name → what it ran (dataset, models, trials, epochs)
    rows: list[tuple[Score, str, str]]  # (score, size, link to the study report)


def load_studies(claims: list[Claim], preset: str, overrides: dict | None = None) -> dict[str, StudySpec]:
    """The specs of the studies behind `claims`, at the preset (default: each study's own default), with the
    --set `overrides` applied to each."""
    from robustbench_vit.study.files import load_spec

    if preset not in PRESETS:
        raise UserError(f"--preset {preset!r} is not one of {choices(PRESETS)}")
    return {c.study: load_spec(c.study, None if preset == "default" else preset, overrides) for c in claims}


def confirm(preset: str, trials: int, hours: float, *, yes: bool, until: bool = False) -> None:
    """Print the plan (`until`: the budget); above CONFIRM_GPU_HOURS ask on a terminal, else require --yes."""
    cost = (f"about {hours:,.1f} GPU-hours at {GPU_TFLOPS:.0f} TFLOP/s sustained per GPU (a lower bound for "
            f"small models, which a GPU runs below its FLOP rate)" if hours >= 0.05 else "CPU-sized")
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


def until_cost(specs: dict[str, StudySpec], models: list[ModelSpec] | None, until: Until):
    """The cost of every study run to its --until-decided budget (the most it may use)."""
    from robustbench_vit.study.estimate import Cost
    from robustbench_vit.study.plan import extended

    costs = [cost([extended(s, until.budget.settings(s, models or s.models))], models) for s in specs.values()]
    return Cost(sum(c.trials for c in costs), sum(c.epochs for c in costs), sum(c.flops for c in costs))


def expected_lines(claims: list[Claim], specs: dict[str, StudySpec], *, preset: str, run: RunOptions, until: Until,
                   stem: ModelSpec | None) -> list[str]:
    """--until-decided --dry-run: per claim, the expected cost of a decision next to the fixed plan's, from the
    effect and its sd measured by the default preset's stored run (normal approximation of the looks,
    analysis.sequential.expected_settings); an estimate that assumes the effect carries over to this scale."""
    from robustbench_vit.analysis.frame import load_results
    from robustbench_vit.analysis.sequential import expected_settings
    from robustbench_vit.study.files import load_spec
    from robustbench_vit.study.plan import extended, trial_count

    lines = [f"expected cost of a decision per claim (preset {preset}), from the default preset's stored effects:"]
    for claim in claims:
        spec = specs[claim.study]
        ms = models_for(spec, stem)
        default = load_spec(claim.study)
        try:
            df = load_results(default.name, run.results)
        except UserError:
            df = None
        fixed = cost([spec], ms)
        for size, conv, patch in baselines(spec, stem):
            s = None
            if df is not None:
                small = baselines(default, None)
                if small:
                    s = score(claim, df, small[0][1], small[0][2])
            if s is None or s.effect is None or not s.se:
                lines.append(textwrap.fill(f"  {claim.id} ({size}): no stored default-preset result to estimate "
                                           f"from (run `robustbench-vit reproduce --until-decided` first); fixed "
                                           f"plan {fixed.trials} trials, {fixed.gpu_hours:,.1f} GPU-hours", 80,
                                           subsequent_indent="    "))
                continue
            budget, every = until.budget.settings(spec, ms), until.every(spec)
            looks = list(range(every, budget + 1, every))
            n = expected_settings(s.effect, s.se, s.n, s.margin, looks=looks, budget=budget)
            c = cost([extended(spec, max(1, math.ceil(n)))], ms)
            lines.append(textwrap.fill(
                f"  {claim.id} ({size}): about {n:.0f} of {budget} settings per model until decided, "
                f"{c.trials} trials, {c.gpu_hours:,.1f} GPU-hours; the fixed plan: {trial_count(spec)} per model, "
                f"{fixed.trials} trials, {fixed.gpu_hours:,.1f} GPU-hours (effect {s.effect:+.3g}, sd {s.se:.2g} at "
                f"{s.n} settings on {default.dataset})", 80, subsequent_indent="    "))
    return lines


def models_for(spec: StudySpec, stem: ModelSpec | None) -> list[ModelSpec]:
    """The models a claims study runs: its own, or both baselines and the stem."""
    if stem is None:
        return spec.models
    return [ModelSpec.from_name(f"vit_{k}_{stem.size}") for k in "pc"] + [stem]


def baselines(spec: StudySpec, stem: ModelSpec | None = None) -> list[tuple[str, str, str]]:
    """(size, conv model, patchify model) for every size with both baselines; with a stem: its size, the stem in
    the conv stem's place."""
    if stem is not None:
        return [(stem.size, stem.name, f"vit_p_{stem.size}")]
    names = {m.name for m in spec.models}
    sizes = dict.fromkeys(m.size for m in spec.models if m.stem in ("patchify", "conv"))
    return [(s, f"vit_c_{s}", f"vit_p_{s}") for s in sizes if {f"vit_p_{s}", f"vit_c_{s}"} <= names]


def described(spec: StudySpec) -> str:
    """What a study runs: dataset, models, trials per model, epochs."""
    from robustbench_vit.study.plan import trial_count

    epochs = spec.space["epochs"].values if "epochs" in spec.space else [spec.epochs]
    span = f"{epochs[0]}" if len(epochs) == 1 else f"{min(epochs)}–{max(epochs)}"
    return (f"{spec.dataset}, {', '.join(m.name for m in spec.models)}: {trial_count(spec)} "
            f"trials per model, {span} epochs")


def claim_key(claim: Claim, size: str) -> str:
    """The key of a claim's sequential decision (one per model size)."""
    return f"claim {claim.id} ({size})"


def claims_decider(claims: list[Claim], spec: StudySpec, stem: ModelSpec | None) -> Decider:
    """Decisions on the claims a study tests, per size: taken when reproduced, contradicted or equivalent."""
    def decide(df, level) -> list[Outcome]:
        out = []
        for claim in claims:
            for size, conv, patch in baselines(spec, stem):
                key = claim_key(claim, size)
                if (look := level(key)) is None:
                    continue
                if look.level <= 0:  # nothing left to spend: this look decides nothing
                    out.append(Outcome(key, "inconclusive", False, NOTHING_SPENT, 0))
                    continue
                s = score(claim, df, conv, patch, alpha=look.level, power=False)
                p = "" if s.p is None else f"; p {s.p:.2g}"
                out.append(Outcome(key, s.status, s.status in DECIDED, f"{s.ours}{p}", _trials(claim, df, conv, patch)))
        return out

    return decide


def _trials(claim: Claim, df, conv: str, patch: str) -> int:
    """The trials a claim's decision rests on (its subset, its two models)."""
    for key, value in claim.subset.items():
        df = df[df[key] == value]
    return int(df["model"].isin([conv, patch]).sum())


def _scored(claim: Claim, df, spec: StudySpec, *, conv: str, patch: str, seq: Sequential | None, size: str) -> Score:
    """A claim's score: on every stored trial (fixed design), or on its sequential decision's look at that look's
    level (the trials of later looks, run for other claims, do not change a taken decision)."""
    rec = seq.records.get(claim_key(claim, size)) if seq else None
    if not rec or not rec.looks:
        return score(claim, df, conv, patch)
    k = rec.decided["look"] if rec.decided else len(rec.looks)
    look = rec.looks[k - 1]
    frame = look_frame(df, spec, look.n, list(df["model"].unique()))
    s = score(claim, frame, conv, patch, alpha=look.level)
    info = {"look": k, "n": look.n, "trials": _trials(claim, frame, conv, patch), "level": look.level,
            "decided": bool(rec.decided)}
    return dataclasses.replace(s, look=info)


def scorecard(claims: list[Claim], specs: dict[str, StudySpec], run: RunOptions, *, preset: str,
              reports: Path, stem: ModelSpec | None = None, sequential: dict[str, Sequential] | None = None) -> Card:
    """Write each study's report and score every claim on it (per model size; `sequential`: per study, the
    looks of a --until-decided run, each claim scored at its deciding look)."""
    from robustbench_vit.analysis.frame import load_results
    from robustbench_vit.report.build import build_report

    rows, frames = [], {}
    for name, spec in specs.items():
        build_report(spec.name, run.results, out_dir=reports / spec.name)
        frames[name] = load_results(spec.name, run.results)
    for claim in claims:
        spec = specs[claim.study]
        seq = (sequential or {}).get(claim.study)
        for size, conv, patch in baselines(spec, stem):
            rows.append((_scored(claim, frames[claim.study], spec, conv=conv, patch=patch, seq=seq, size=size), size,
                         f"../{spec.name}/report.html"))
    return Card(preset, datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                {s.name: described(s) for s in specs.values()}, rows)


def title(card: Card) -> str:
    """The scorecard's heading."""
    return f"Does the paper hold? (preset {card.preset}; the paper's numbers are in the HTML)"


def table(card: Card) -> Table:
    """The scorecard as a table, for a wide terminal."""
    t = Table(title=title(card), show_lines=True)
    t.add_column("claim", no_wrap=True)
    t.add_column("status", no_wrap=True)
    for col in ("ours [95%]", "p", "power"):
        t.add_column(col, overflow="fold")
    for s, size, _ in card.rows:
        t.add_row(f"{s.claim.id} ({size})", s.status + (f"\n{s.look_text}" if s.look else ""), s.ours,
                  "–" if s.p is None else f"{s.p:.2g}", s.power_text)
    return t


def blocks(card: Card, width: int = 80) -> str:
    """The scorecard as one block per claim, each line at most `width` characters: for logs and narrow terminals."""
    out = [title(card)]
    for s, size, _ in card.rows:
        out += ["", f"{s.claim.id} ({size}): {s.status}"]
        for label, text in (("ours", s.ours), ("test", f"p {'–' if s.p is None else f'{s.p:.2g}'}, power "
                                                       f"{s.power_text}"), ("why", s.why),
                            *((("looks", s.look_text),) if s.look else ())):
            out.append(textwrap.fill(text, width, initial_indent=f"  {label}: ", subsequent_indent=" " * 8))
    return "\n".join(out)


def card_json(card: Card, paths: dict[str, Path]) -> str:
    """The scorecard as one JSON object: preset, date, studies, one entry per (claim, size), the files written."""
    def number(x: float | None) -> float | None:
        return None if x is None or math.isnan(x) else x

    rows = [{"claim": s.claim.id, "size": size, "statement": s.claim.statement, "status": s.status, "ours": s.ours,
             "test": s.test, "p": number(s.p), "power": number(s.power), "needed_per_model": s.needed,
             "why": s.why, "ran": s.ran, "sequential": s.look, "report": link} for s, size, link in card.rows]
    return json.dumps({"preset": card.preset, "generated": card.generated, "studies": card.studies, "claims": rows,
                       "files": {k: str(v) for k, v in paths.items()}}, indent=2)


def print_card(card: Card, paths: dict[str, Path], as_json: bool) -> None:
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


def write_card(card: Card, out: Path, formats: tuple[str, ...]) -> dict[str, Path]:
    """scorecard.html (each claim linked to its study report) and scorecard.pdf."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    if "html" in formats:
        env = jinja2.Environment(loader=jinja2.PackageLoader("robustbench_vit.report", "templates"),
                                 autoescape=True, undefined=jinja2.StrictUndefined)
        paths["html"] = out / "scorecard.html"
        paths["html"].write_text(env.get_template("scorecard.html.j2").render(card=card), encoding="utf-8")
    if "pdf" in formats:
        from robustbench_vit.report.pdf import write_scorecard_pdf

        paths["pdf"] = write_scorecard_pdf(card, out / "scorecard.pdf")
    return paths


def reproduce_command(*, preset: str, claims: str | None, run: RunOptions, yes: bool, out: str | None,
                      formats: str, stem: ModelSpec | None = None, overrides: dict | None = None,
                      dry_run: bool = False, as_json: bool = False, until: Until | None = None) -> int:
    """`reproduce` (and `compare --claims` with a stem): plan and confirm, run what is missing, score the claims,
    write and print the scorecard (`dry_run`: print the plan only; `as_json`: the scorecard as JSON; `until`: each
    study look by look until its claims are decided or its budget is spent)."""
    from robustbench_vit.report.build import parse_formats
    from robustbench_vit.study.launch import run_study

    fmts = parse_formats(formats)
    chosen = load_claims([c.strip() for c in claims.split(",") if c.strip()] if claims else None)
    specs = load_studies(chosen, preset, overrides)
    models = None if stem is None else models_for(next(iter(specs.values())), stem)
    if dry_run:
        print_plan(list(specs.values()), run, models, until=until)
        if until is not None:
            print("\n".join(expected_lines(chosen, specs, preset=preset, run=run, until=until, stem=stem)))
        return 0
    c = cost(list(specs.values()), models) if until is None else until_cost(specs, models, until)
    confirm(preset, c.trials, c.gpu_hours, yes=yes or preset == "default", until=until is not None)
    sequential: dict[str, Sequential] = {}
    for key, spec in specs.items():
        if until is not None:
            mine = [claim for claim in chosen if claim.study == key]
            sequential[key] = run_until_decided(spec, run, until, claims_decider(mine, spec, stem), models=models)
            continue
        done = run_study(spec, run, models=models)
        print(f"{spec.name}: {done.done}/{done.total} trials finished; {done.ran} ran now in {done.seconds:.0f} s",
              file=sys.stderr)
    reports = Path(out) if out else Path("reports")
    card = scorecard(chosen, specs, run, preset=preset, reports=reports, stem=stem, sequential=sequential)
    folder = reports / (f"claims-{stem.name}" if stem else "reproduce")
    folder = folder.with_name(folder.name + ("" if preset == "default" else f"-{preset}") +
                              override_suffix(overrides or {}))
    print_card(card, write_card(card, folder, fmts), as_json)
    return 0
