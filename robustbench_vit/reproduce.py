"""`robustbench-vit reproduce`: run (or reuse from storage) the studies behind the paper's stability claims,
score each claim, and write the scorecard (HTML, PDF) beside the studies' own reports."""

from __future__ import annotations

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
from robustbench_vit.errors import UserError, choices
from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.study.commands import WIDE, print_plan
from robustbench_vit.study.estimate import GPU_TFLOPS, cost
from robustbench_vit.study.options import RunOptions
from robustbench_vit.study.spec import StudySpec, override_suffix

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


def confirm(preset: str, trials: int, hours: float, yes: bool) -> None:
    """Print the plan; above CONFIRM_GPU_HOURS ask on a terminal, else require --yes."""
    cost = (f"about {hours:,.1f} GPU-hours at {GPU_TFLOPS:.0f} TFLOP/s sustained per GPU (a lower bound for "
            f"small models, which a GPU runs below its FLOP rate)" if hours >= 0.05 else "CPU-sized")
    print(f"reproduce --preset {preset}: {trials} trials planned, {cost}; trials already stored are reused",
          file=sys.stderr)
    if hours <= CONFIRM_GPU_HOURS or yes:
        return
    if sys.stdin.isatty():
        if input(f"That is over {CONFIRM_GPU_HOURS} GPU-hours. Launch? [y/N] ").strip().lower() in ("y", "yes"):
            return
        raise UserError("not launched")
    raise UserError(f"about {hours:,.0f} GPU-hours (over {CONFIRM_GPU_HOURS}): pass --yes to launch")


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


def scorecard(claims: list[Claim], specs: dict[str, StudySpec], run: RunOptions, *, preset: str,
              reports: Path, stem: ModelSpec | None = None) -> Card:
    """Write each study's report and score every claim on it (per model size)."""
    from robustbench_vit.analysis.frame import load_results
    from robustbench_vit.analysis.report import build_report

    rows, frames = [], {}
    for name, spec in specs.items():
        build_report(spec.name, runs_dir=run.runs_dir, storage=run.storage, out_dir=reports / spec.name)
        frames[name] = load_results(spec.name, runs_dir=run.runs_dir, storage=run.storage)
    for claim in claims:
        spec = specs[claim.study]
        for size, conv, patch in baselines(spec, stem):
            rows.append((score(claim, frames[claim.study], conv, patch), size, f"../{spec.name}/report.html"))
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
        t.add_row(f"{s.claim.id} ({size})", s.status, s.ours, "–" if s.p is None else f"{s.p:.2g}", s.power_text)
    return t


def blocks(card: Card, width: int = 80) -> str:
    """The scorecard as one block per claim, each line at most `width` characters: for logs and narrow terminals."""
    out = [title(card)]
    for s, size, _ in card.rows:
        out += ["", f"{s.claim.id} ({size}): {s.status}"]
        for label, text in (("ours", s.ours), ("test", f"p {'–' if s.p is None else f'{s.p:.2g}'}, power "
                                                       f"{s.power_text}"), ("why", s.why)):
            out.append(textwrap.fill(text, width, initial_indent=f"  {label}: ", subsequent_indent=" " * 8))
    return "\n".join(out)


def card_json(card: Card, paths: dict[str, Path]) -> str:
    """The scorecard as one JSON object: preset, date, studies, one entry per (claim, size), the files written."""
    def number(x: float | None) -> float | None:
        return None if x is None or math.isnan(x) else x

    rows = [{"claim": s.claim.id, "size": size, "statement": s.claim.statement, "status": s.status, "ours": s.ours,
             "test": s.test, "p": number(s.p), "power": number(s.power), "needed_per_model": s.needed,
             "why": s.why, "ran": s.ran, "report": link} for s, size, link in card.rows]
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
        env = jinja2.Environment(loader=jinja2.PackageLoader("robustbench_vit.analysis", "templates"),
                                 autoescape=True, undefined=jinja2.StrictUndefined)
        paths["html"] = out / "scorecard.html"
        paths["html"].write_text(env.get_template("scorecard.html.j2").render(card=card), encoding="utf-8")
    if "pdf" in formats:
        from robustbench_vit.analysis.pdf import write_scorecard_pdf

        paths["pdf"] = write_scorecard_pdf(card, out / "scorecard.pdf")
    return paths


def reproduce_command(*, preset: str, claims: str | None, run: RunOptions, yes: bool, out: str | None,
                      formats: str, stem: ModelSpec | None = None, overrides: dict | None = None,
                      dry_run: bool = False, as_json: bool = False) -> int:
    """`reproduce` (and `compare --claims` with a stem): plan and confirm, run what is missing, score the claims,
    write and print the scorecard (`dry_run`: print the plan only; `as_json`: the scorecard as JSON)."""
    from robustbench_vit.analysis.report import parse_formats
    from robustbench_vit.study.launch import run_study

    fmts = parse_formats(formats)
    chosen = load_claims([c.strip() for c in claims.split(",") if c.strip()] if claims else None)
    specs = load_studies(chosen, preset, overrides)
    models = None if stem is None else [ModelSpec.from_name(f"vit_{k}_{stem.size}") for k in "pc"] + [stem]
    if dry_run:
        return print_plan(list(specs.values()), run, models)
    c = cost(list(specs.values()), models)
    confirm(preset, c.trials, c.gpu_hours, yes=yes or preset == "default")
    for spec in specs.values():
        done = run_study(spec, run, models=models)
        print(f"{spec.name}: {done.done}/{done.total} trials finished; {done.ran} ran now in {done.seconds:.0f} s",
              file=sys.stderr)
    reports = Path(out) if out else Path("reports")
    card = scorecard(chosen, specs, run, preset=preset, reports=reports, stem=stem)
    folder = reports / (f"claims-{stem.name}" if stem else "reproduce")
    folder = folder.with_name(folder.name + ("" if preset == "default" else f"-{preset}") +
                              override_suffix(overrides or {}))
    print_card(card, write_card(card, folder, fmts), as_json)
    return 0
