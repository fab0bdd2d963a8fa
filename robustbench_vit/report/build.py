"""Build a study's report: one self-contained HTML file (inline SVG, no network) and a paginated PDF."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import jinja2
import matplotlib.pyplot as plt
import pandas as pd
import yaml
from markupsafe import Markup, escape

from robustbench_vit.analysis import metrics as M
from robustbench_vit.analysis.decisions import record_lines, stored_records
from robustbench_vit.analysis.figure_data import forest_info
from robustbench_vit.analysis.frame import STATUSES, StudyData, load_study_data, model_order
from robustbench_vit.analysis.importance import NOTE as IMPORTANCE_NOTE
from robustbench_vit.analysis.importance import importance_table, importances
from robustbench_vit.analysis.methods import GLOSSARY, methods
from robustbench_vit.analysis.summary import Table, comparison_details_table, comparisons_table, metrics_table, notes
from robustbench_vit.analysis.verdict import Verdict, analyse, rerun
from robustbench_vit.errors import UserError
from robustbench_vit.provenance import git_commit, package_versions
from robustbench_vit.report.figures import STYLE, FigureItem, forest_figure, make_figures
from robustbench_vit.report.pdf import write_pdf
from robustbench_vit.store import Results

FORMATS = ("html", "pdf")
VERSIONS = ("robustbench-vit", "torch", "timm", "optuna", "numpy", "pandas", "scipy", "matplotlib", "seaborn")


@dataclass
class ReportContent:
    """Everything a report shows, independent of the output format."""

    study: str
    description: str
    partial: bool
    verdicts: list[Verdict]
    notes: list[str]
    metrics: Table
    comparisons: Table
    figures: list[FigureItem]
    status: Table
    failed: Table
    spec_yaml: str
    provenance: list[tuple[str, str]]
    methods: list[str] = field(default_factory=methods)
    generated: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    importance: Table = field(default_factory=lambda: Table([], []))  # hyperparameter importances per model
    importance_note: str = ""  # what they do not mean, or why the study has none
    summary: FigureItem | None = None  # the forest plot of every comparison, at the top
    details: Table = field(default_factory=lambda: Table([], []))  # the comparisons' other columns

    @property
    def all_figures(self) -> list[FigureItem]:
        """The summary figure (where there is one), then the study's figures: what the PDF draws, in order."""
        return ([self.summary] if self.summary else []) + self.figures


def _status_table(df: pd.DataFrame) -> Table:
    """Trial counts by model and status."""
    counts = df.groupby(["model", "status"]).size().unstack(fill_value=0).reindex(columns=STATUSES, fill_value=0)
    rows = [[m, *map(str, counts.loc[m]), str(int(counts.loc[m].sum()))] for m in model_order(counts.index)]
    return Table(["model", *STATUSES, "total"], rows)


def _failed_table(df: pd.DataFrame) -> Table:
    """Every failed trial and the message it left."""
    cols = [c for c in ("model", "point", "seed", "lr", "weight_decay", "attempts", "message") if c in df]
    rows = [[str(v) if pd.notna(v) else "–" for v in r] for r in df[df["status"] == "failed"][cols].itertuples(
        index=False)]
    return Table(cols, rows)


def _provenance(data: StudyData) -> list[tuple[str, str]]:
    """Where the numbers come from: code, packages, storage, hosts and dates."""
    df = data.frame
    fin = M.results(df)

    def values(col: str) -> str:
        """Distinct values of a column with their counts."""
        if col not in fin or fin[col].dropna().empty:
            return "–"
        return ", ".join(f"{k} ({v})" for k, v in fin[col].dropna().astype(str).value_counts().items())

    start, end = df.get("datetime_start"), df.get("datetime_complete")
    stems = [(f"stem source of {name}", f"{src['file']} (sha256 {src['sha256'][:12]})")
             for name, m in data.models.items() if (src := m.get("stem_source"))]
    return [("report made with commit", git_commit() or "unknown"),
            ("package versions", ", ".join(f"{k} {v}" for k, v in package_versions(VERSIONS).items() if v)),
            *stems,
            ("storage", ", ".join(data.storages)),
            ("preset", str(data.preset or "default")),
            ("trials run with commit", values("commit")),
            ("hosts", values("host")),
            ("first trial started", str(start.min()) if start is not None and start.notna().any() else "–"),
            ("last trial finished", str(end.max()) if end is not None and end.notna().any() else "–")]


def _spec_text(spec: dict, preset: str | None) -> str:
    """The stored (resolved) study spec as YAML, without the presets that were not what ran."""
    if not spec:
        return "(not stored)"
    shown = {k: v for k, v in spec.items() if k != "presets"}
    note = f"# resolved spec (preset: {preset or 'default'}); the file's other presets are not shown\n"
    return note + yaml.safe_dump(shown, sort_keys=False, allow_unicode=True)


def _command(data: StudyData) -> str | None:
    """The `study run` that runs a study's models on (None where a compared model is not in its stored spec, as a
    stem `compare` added: an undecided headline then says to re-run with --until-decided)."""
    spec = data.spec or {}
    listed = {m.get("name") if isinstance(m, dict) else m for m in [*spec.get("models", []), *spec.get("stems", [])]}
    return rerun(data.name, data.preset) if set(data.frame.get("model", ())) <= listed else None


def collect(data: StudyData) -> ReportContent:
    """Metrics, comparisons, verdicts, figures and provenance of a study's data."""
    a = analyse(data.frame, _command(data))
    df, mm, cmp = a.frame, a.metrics, a.comparisons
    spec = data.spec or {}
    done = len(df) and df["status"].isin(M.RESULTS).any()
    imp = importances(df, spec) if done else None
    return ReportContent(
        study=data.name, description=str(spec.get("description", "")),
        partial=bool(df["status"].isin(["running", "pending"]).any()) if len(df) else True,
        verdicts=a.verdicts, notes=notes(df, mm) if len(df) else [], metrics=metrics_table(mm),
        comparisons=comparisons_table(cmp), details=comparison_details_table(cmp),
        summary=forest_figure(forest_info(cmp, a.floors)) if done else None,
        figures=make_figures(df) if len(df) else [], status=_status_table(df) if len(df) else Table([], []),
        failed=_failed_table(df) if len(df) else Table([], []),
        spec_yaml=_spec_text(spec, data.preset),
        provenance=_provenance(data),
        importance=importance_table(imp) if imp else Table([], []),
        importance_note=(imp.reason or IMPORTANCE_NOTE) if imp else "No trial has a result yet.")


def svg(item: FigureItem, salt: str) -> str:
    """A figure as an inline <svg> element (no XML header, ids unique per figure, no date)."""
    buf = io.StringIO()
    with plt.rc_context({**STYLE, "svg.hashsalt": salt}):
        item.figure.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return re.sub(r"^<svg ", f'<svg id="svg-{item.id}" role="img" ', text[text.index("<svg "):], count=1)


TERMS = re.compile("|".join(re.escape(t.term) for t in GLOSSARY))
ENV = jinja2.Environment(loader=jinja2.PackageLoader("robustbench_vit.report", "templates"), autoescape=True,
                         undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _terms(text: str, seen: set[str]) -> Markup:
    """Plain text as HTML, each glossary term linked to its definition, its first use (not in `seen`) glossed."""
    by, parts, last = {t.term: t for t in GLOSSARY}, [], 0
    for m in TERMS.finditer(text):
        t = by[m.group(0)]
        gloss = Markup(' <span class="gloss">({})</span>').format(t.gloss) if t.term not in seen else ""
        seen.add(t.term)
        parts += [escape(text[last:m.start()]), Markup('<a class="term" href="#{}">{}</a>{}').format(
            t.anchor, t.term, gloss)]
        last = m.end()
    return Markup("").join([*parts, escape(text[last:])])


def _code(command: str) -> Markup:
    """A command as <code>, each word kept whole (a line breaks only between its words, never inside
    `--until-decided`)."""
    return Markup("<code>{}</code>").format(Markup(" ").join(Markup('<span class="nw">{}</span>').format(w)
                                                             for w in command.split(" ")))


def linked(texts: Sequence[str]) -> list[Markup]:
    """Headlines as HTML: `command` spans as <code>, each glossary term linked to its definition in the Methods
    (or the page's terms), the first use over all of `texts` followed by its plain-words gloss."""
    seen: set[str] = set()
    out = []
    for text in texts:
        pieces = text.split("`")
        out.append(Markup("").join(_code(p) if i % 2 else _terms(p, seen) for i, p in enumerate(pieces)))
    return out


def render_html(content: ReportContent) -> str:
    """The report as one self-contained HTML page (autoescaped template; only our own SVG is inserted raw)."""
    svgs = {f.id: Markup(svg(f, f"{content.study}-{f.id}")) for f in content.all_figures}
    heads = linked([v.short for v in content.verdicts])
    return ENV.get_template("report.html.j2").render(c=content, svgs=svgs, heads=heads, glossary=GLOSSARY,
                                                     window=M.DELTA_WINDOW)


def parse_formats(formats: str | Sequence[str]) -> tuple[str, ...]:
    """Report formats from `--format html,pdf` (or a sequence); one UserError line for an unknown or empty one."""
    given = formats.split(",") if isinstance(formats, str) else formats
    out = tuple(f.strip() for f in given if f.strip())
    bad = sorted(set(out) - set(FORMATS))
    if bad or not out:
        raise UserError(f"--format {','.join(out)!r}: unknown format {bad[0] if bad else '(none)'!r}; "
                        f"allowed formats are {', '.join(FORMATS)} (comma-separated)")
    return out


def write_report(study: str, results: Results | None = None, *, out_dir: str | Path | None = None,
                 formats=("html",)) -> tuple[ReportContent, dict[str, Path]]:
    """Write `report.html` / `report.pdf` for a study (default folder reports/<study>/); returns what the report
    shows (its verdicts, for a terminal's headlines) and format → path."""
    formats = parse_formats(formats)
    results = results or Results()
    content = collect(load_study_data(study, results))
    if not isinstance(results.storage, tuple):  # a --until-decided run: its decisions and their looks
        records = stored_records(study, results)
        looks = max((r.looks for r in records.values()), key=len, default=[])
        content.notes = record_lines(records) + content.notes
        content.methods = methods(looks) if looks else content.methods
    out = Path(out_dir) if out_dir is not None else Path("reports") / study
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    if "html" in formats:
        paths["html"] = out / "report.html"
        paths["html"].write_text(render_html(content), encoding="utf-8")
    if "pdf" in formats:
        paths["pdf"] = write_pdf(content, out / "report.pdf")
    return content, paths


def build_report(study: str, results: Results | None = None, *, out_dir: str | Path | None = None,
                 formats=("html",)) -> dict[str, Path]:
    """Write `report.html` / `report.pdf` for a study (default folder reports/<study>/); returns format → path."""
    return write_report(study, results, out_dir=out_dir, formats=formats)[1]
