"""Compare a user stem against the built-in baselines: validate, FLOP-match, run the paired trials, report."""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from robustbench_vit.analysis.frame import load_results
from robustbench_vit.analysis.noise import copy_of
from robustbench_vit.analysis.verdict import Verdict, analyse, headline_lines
from robustbench_vit.commands.common import (Launch, ScorecardRequest, as_json_or_text, print_plan, run_claims,
                                             terminal_width, write_leaderboard_of)
from robustbench_vit.commands.until import comparison_decider, run_until_decided
from robustbench_vit.errors import UserError
from robustbench_vit.models import Complexity, ModelSpec, get_stem, model_complexity, validate_stem
from robustbench_vit.models.stems import absolute_ref, zoo_names
from robustbench_vit.report.build import build_report, parse_formats
from robustbench_vit.store import mask_url
from robustbench_vit.study.files import load_spec
from robustbench_vit.study.launch import StudySummary, run_study
from robustbench_vit.study.options import RunOptions
from robustbench_vit.study.spec import StudySpec


@dataclass
class Contender:
    """The new stem's model and its complexity against both baselines."""

    spec: ModelSpec
    complexity: Complexity
    baselines: dict[str, Complexity]  # baseline name → complexity


def default_name(ref: str, size: str) -> str:
    """A model name from the stem's class name: `path.py:OverlapPatchStem` → `overlap_patch_stem_micro`.

    Acronyms stay whole: `GNStem` → `gn_stem_micro`; pass --name for anything else. A zoo stem gets its model name,
    `hmlp` → `vit_hmlp_micro` (the name a study's `models:` uses, so their trials are the same).
    """
    if ref in zoo_names():
        return f"vit_{ref}_{size}"
    cls = ref.rpartition(":")[2] or ref
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+", cls)
    return "_".join(w.lower() for w in words) + f"_{size}"


def contender(stem: str, *, size: str, name: str | None = None, options: dict | None = None) -> Contender:
    """Validate the stem at `size` and FLOP-match its trunk depth to the patchify baseline of that size."""
    ref = absolute_ref(stem)
    get_stem(ref)  # a clear error for a bad reference before anything else
    return checked(ModelSpec(name=name or default_name(ref, size), size=size, stem=ref, stem_options=options or {}))


def checked(spec: ModelSpec) -> Contender:
    """Validate a model's stem and FLOP-match its depth (unless the spec fixes one) against its size's baselines."""
    size = spec.size
    if spec.name in {f"vit_p_{size}", f"vit_c_{size}"}:
        raise UserError(f"--name {spec.name!r} is a baseline's name; choose another")
    validate_stem(spec)
    cx = model_complexity(spec)
    spec = spec.model_copy(update={"depth": cx.depth})
    base = {n: model_complexity(ModelSpec.from_name(n)) for n in (f"vit_p_{size}", f"vit_c_{size}")}
    return Contender(spec, cx, base)


def study_for(study: str, preset: str | None, size: str | None,
              overrides: dict | None = None) -> tuple[StudySpec, str]:
    """The study to compare on (with the --set `overrides`), and the model size (default: the size of the study's
    built-in models)."""
    spec = load_spec(study, preset, overrides)
    sizes = sorted({m.size for m in spec.models if m.stem in ("patchify", "conv")})
    size = size or (sizes[0] if sizes else None)
    if size is None:
        raise UserError(f"study {spec.name!r} has no built-in baseline to take a size from; pass --size")
    return spec, size


def contenders(stems: list[str], spec: StudySpec, *, size: str, name: str | None = None,
               options: dict | None = None) -> list[Contender]:
    """The stems to run, validated and FLOP-matched: each --stem, or without one the study's own (its models other
    than the baselines: a YAML's `stems:` and zoo models). --name / --options apply to a single --stem."""
    if len(stems) > 1 and (name or options):
        raise UserError("--name and --options apply to one --stem; with several, each stem gets its default name "
                        "(list stems with names and options in a study YAML's `stems:`)")
    if stems:
        news = [contender(s, size=size, name=name, options=options) for s in stems]
    else:
        news = [checked(m) for m in spec.models
                if m.name not in (f"vit_p_{size}", f"vit_c_{size}") and not m.is_reference]
        if not news:
            raise UserError(f"study {spec.name!r} lists no stems besides the baselines; give --stem (repeatable)")
    names = [n.spec.name for n in news]
    if len(set(names)) != len(names):
        raise UserError(f"--stem: two stems get the same model name ({', '.join(names)}); list each once")
    return news


def models_of(news: list[Contender], spec: StudySpec) -> list[ModelSpec]:
    """Both baselines, the study's CNN references of their size, then every new stem's model (all of one size)."""
    size = news[0].spec.size
    refs = [m for m in spec.models if m.is_reference and m.size == size]
    return [ModelSpec.from_name(n) for n in news[0].baselines] + refs + [n.spec for n in news]


def run_contender(spec: StudySpec, new: Contender | list[Contender], run: RunOptions, *,
                  progress: bool = True) -> StudySummary:
    """Run both baselines and the new stem(s) on the study's points in one launch; stored trials are reused."""
    return run_study(spec, run, models=models_of(new if isinstance(new, list) else [new], spec), progress=progress)


def compare_stem(stem: str, *, study: str = "lr_wd_stability", preset: str | None = None, size: str | None = None,
                 name: str | None = None, options: dict | None = None, run: RunOptions = RunOptions(),
                 progress: bool = True) -> tuple[Contender, StudySummary]:
    """Validate and FLOP-match `stem` (with stem `options`), then run it on exactly the baselines' trial points
    as `run` says (no report)."""
    spec, size = study_for(study, preset, size)
    new = contender(stem, size=size, name=name, options=options)
    return new, run_contender(spec, new, run, progress=progress)


def parse_options(text: str | None) -> dict:
    """--options JSON as a dict (one clear error otherwise)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"--options {text!r}: not valid JSON ({e.msg}); e.g. '{{\"kernel_size\": 5}}'") from e
    if not isinstance(value, dict):
        raise UserError(f"--options {text!r}: expected a JSON object of stem options")
    return value


def summary_table(new: Contender, *more: Contender) -> Table:
    """Params, GMACs and FLOP ratios of the new stem(s) and both baselines (fits 80 columns)."""
    what = f"{new.spec.name} ({Path(new.spec.stem).name})" if not more else f"{1 + len(more)} stems"
    t = Table(title=f"{what}: FLOP-matched against the {new.spec.size} "
                    f"baselines", caption="FLOPs/P, FLOPs/C: FLOP ratio to the patchify (P) and conv-stem (C) baseline")
    for col in ("model", "depth", "params M", "GMACs", "FLOPs/P", "FLOPs/C"):
        t.add_column(col, justify="left" if col == "model" else "right", no_wrap=True)
    p, c = new.baselines.values()  # patchify first, then conv
    for name, x in [*new.baselines.items(), *((n.spec.name, n.complexity) for n in (new, *more))]:
        t.add_row(name, str(x.depth), f"{x.params / 1e6:.3f}", f"{x.gmacs:.4g}",
                  f"{x.gmacs / p.gmacs:.3f}", f"{x.gmacs / c.gmacs:.3f}")
    return t


def stem_verdicts(spec: StudySpec, run: RunOptions, news: list[Contender], command: str | None) -> list[Verdict]:
    """Each new stem's verdict against each baseline and the CNN reference; says first what failed (`command`:
    the compare that ran them, which an undecided headline gives with --until-decided)."""
    df = load_results(spec.name, run.results)
    names = [n.spec.name for n in news]
    keep = {*(m.name for m in models_of(news, spec)), *names}
    df = df[df["model"].map(lambda m: m in keep or copy_of(m) in keep)]  # A/A copies give the noise floor
    failed = int((df["status"] == "failed").sum())
    if failed:  # no result: left out of every verdict until re-run
        print(f"incomplete: {failed} trial{'s' if failed > 1 else ''} failed without a result and "
              f"{'are' if failed > 1 else 'is'} left out; run the same compare again to re-run "
              f"{'them' if failed > 1 else 'it'}")
    return [v for v in analyse(df, command).verdicts if v.model in names]


def again(request: CompareRequest) -> str | None:
    """The compare that ran these stems, to repeat with --until-decided (None where --set changed the study:
    the generic advice then)."""
    if request.launch.overrides:
        return None
    stems = " ".join(f"--stem {s}" for s in request.stems)
    return " ".join(x for x in ("compare", stems, f"--study {request.study}",
                                f"--preset {request.preset}" if request.preset else "") if x)


@dataclass(frozen=True)
class CompareRequest:
    """`compare`: the stems (none: the study's own), the study to compare on (its preset and --set) and the size, a
    single stem's name and options (JSON), how it launches (`launch.until`: look by look until each stem's verdicts
    are decided or the budget is spent), where the report goes; `claims` ("" for all, or ids): score one stem on
    the paper's claims instead."""

    stems: tuple[str, ...] = ()
    study: str = "lr_wd_stability"
    preset: str | None = None
    size: str | None = None
    name: str | None = None
    options: str | None = None
    launch: Launch = field(default_factory=Launch)
    out: str | None = None
    formats: str = "html"
    claims: str | None = None
    as_json: bool = False


def _on_claims(request: CompareRequest) -> int:
    """`compare --claims`: the paper's claims, this stem in ViT_C's place (a scorecard)."""
    r = request
    if len(r.stems) != 1:
        raise UserError("--claims scores one stem in ViT_C's place; give exactly one --stem")
    _, size = study_for("lr_wd_stability", r.preset, r.size, r.launch.overrides)
    new = contender(r.stems[0], size=size, name=r.name, options=parse_options(r.options))
    Console(stderr=True).print(summary_table(new))
    return run_claims(ScorecardRequest(preset=r.preset or "default", claims=r.claims or None, launch=r.launch,
                                       out=r.out, formats=r.formats, stem=new.spec, as_json=r.as_json))


def _run(spec: StudySpec, news: list[Contender], request: CompareRequest, console: Console) -> None:
    """Run the baselines and the new stems (look by look with --until-decided) and say what ran and where."""
    run, until = request.launch.run, request.launch.until
    if until is not None:
        names = {n.spec.name for n in news}
        seq = run_until_decided(spec, run, until, comparison_decider(lambda model, baseline: model in names),
                                models=models_of(news, spec))
        console.print(f"{seq.ran} trials ran now; results: {mask_url(run.results.url(spec.name))}", soft_wrap=True)
    else:
        summary = run_contender(spec, news, run)
        console.print(f"{summary.ran} trials ran now; {summary.done}/{summary.total} finished; results: "
                      f"{mask_url(summary.storage)}", soft_wrap=True)


def compare_command(request: CompareRequest) -> int:
    """`compare`: print the FLOP-matched summary, run the missing trials, write the report, print each stem's
    headlines (several stems: their leaderboard beside the report). With `claims`: score one stem on the paper's
    claims instead. `as_json`: the files and verdicts as one JSON object on stdout, everything else on stderr."""
    if request.claims is not None:  # the paper's claims, this stem in ViT_C's place
        return _on_claims(request)
    return as_json_or_text(lambda: _compare(request), request.as_json)


def _compare(request: CompareRequest) -> tuple[int, dict]:
    """Run and report the comparison; (exit code, the study, stems, files and verdicts as JSON values)."""
    r, launch = request, request.launch
    spec, size = study_for(r.study, r.preset, r.size, launch.overrides)
    fmts = parse_formats(r.formats)  # checked before hours of trials, not after
    news = contenders(list(r.stems), spec, size=size, name=r.name, options=parse_options(r.options))
    console = Console(stderr=True)
    console.print(summary_table(*news))
    found = {"study": spec.name, "stems": [n.spec.name for n in news]}
    if launch.dry_run:
        return print_plan([spec], launch.run, models_of(news, spec), until=launch.until), found | {"dry_run": True}
    _run(spec, news, r, console)
    paths = build_report(spec.name, launch.run.results, out_dir=r.out, formats=fmts)
    for fmt, path in paths.items():
        print(f"{fmt}: {path}")
    if len(news) > 1:  # several stems: their leaderboard beside the report
        report = next(iter(paths.values()))
        write_leaderboard_of([spec.name], launch.run.results, report.parent / "leaderboard", formats=["html"],
                             reports={spec.name: report.with_suffix(".html")})
    verdicts = stem_verdicts(spec, launch.run, news, again(r))
    if launch.until is None:  # a sequential run printed its decisions, each at the level its look spent
        print("\n".join(headline_lines(verdicts, terminal_width())))
    return 0, found | {"files": {fmt: str(path) for fmt, path in paths.items()},
                       "verdicts": [v.to_dict() for v in verdicts]}


def main(args: argparse.Namespace) -> int:
    """`compare` from its parsed flags."""
    return compare_command(CompareRequest(stems=tuple(args.stem or ()), study=args.study, preset=args.preset,
                                          size=args.size, name=args.name, options=args.options,
                                          launch=Launch.of(args), out=args.out, formats=args.format,
                                          claims=args.claims, as_json=args.json))
