"""The leaderboard as files: a static site (index.html and one page per stem, rendered from the Jinja templates
`leaderboard_*.html.j2`; self-contained: no script, no network), leaderboard.csv and leaderboard.json."""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import jinja2
from markupsafe import Markup

from robustbench_vit.analysis.figure_data import forest_info
from robustbench_vit.analysis.frame import load_results
from robustbench_vit.analysis.leaderboard import COLUMNS, LeaderboardRow
from robustbench_vit.analysis.methods import GLOSSARY
from robustbench_vit.analysis.verdict import analyse
from robustbench_vit.errors import UserError, choices
from robustbench_vit.report.build import linked, svg
from robustbench_vit.report.figures import forest_figure
from robustbench_vit.store import Results

FORMATS = ("html", "csv", "json")


def number(value: float, spec: str) -> str:
    """A number in the format `spec`, or a dash for NaN (the templates' `num` filter)."""
    return "–" if value != value else f"{value:{spec}}"


ENV = jinja2.Environment(loader=jinja2.PackageLoader("robustbench_vit.report", "templates"), autoescape=True,
                         undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                         keep_trailing_newline=True)
ENV.filters["num"] = number


@dataclass(frozen=True)
class StudyTable:
    """One study's table on the index: its name, the link to its report (None: not written yet), its ranked rows."""

    name: str
    report: str | None
    rows: list[LeaderboardRow]


@dataclass(frozen=True)
class Glance:
    """A study at a glance, on top of the leaderboard: every comparison's headline and their forest plot (SVG)."""

    study: str
    headlines: list[Markup]
    forest: Markup


def glances(studies: list[str], results: Results) -> dict[str, Glance]:
    """Each study's headlines and forest plot: every stem against each baseline of its size."""
    out = {}
    for study in studies:
        a = analyse(load_results(study, results))  # the generic next step: its preset is not at hand
        figure = forest_figure(forest_info(a.comparisons, a.floors), f"{study} at a glance")
        forest = Markup(svg(figure, f"leaderboard-{study}")) if figure else Markup("")
        out[study] = Glance(study, linked([f"{v.title}: {v.short}" for v in a.verdicts]), forest)
    return out


def parse_formats(formats: str) -> list[str]:
    """The leaderboard formats of `--format html,csv,json`; one UserError line for an unknown or empty one."""
    fmts = [f.strip() for f in formats.split(",") if f.strip()]
    if set(fmts) - set(FORMATS) or not fmts:
        raise UserError(f"--format {formats!r}: allowed formats are {choices(FORMATS)}")
    return fmts


def stem_page_name(row: LeaderboardRow) -> str:
    """The file of a stem's page: stems/STUDY--MODEL.html, characters other than letters, digits, . _ - as _."""
    return "stems/" + re.sub(r"[^A-Za-z0-9_.-]", "_", f"{row.study}--{row.model}") + ".html"


def _rel(path: Path, start: Path) -> str:
    """`path` relative to the folder `start` (for links between the site and the reports)."""
    return os.path.relpath(path.resolve(), start.resolve()).replace(os.sep, "/")


def render_index(rows: list[LeaderboardRow], reports: dict[str, Path], out: Path,
                 glance: dict[str, Glance] | None = None) -> str:
    """index.html: per study its headlines and forest plot (`glance`), then its table, ranked, linking its report
    where it is written."""
    tables = []
    for study in dict.fromkeys(r.study for r in rows):
        report = reports.get(study)
        link = _rel(report, out) if report and report.is_file() else None
        tables.append(StudyTable(study, link, [r for r in rows if r.study == study]))
    return ENV.get_template("leaderboard_index.html.j2").render(title="robustbench-vit leaderboard", studies=tables,
                                                                page=stem_page_name, glance=glance or {},
                                                                glossary=GLOSSARY)


def render_stem(row: LeaderboardRow) -> str:
    """A stem's page: its numbers and both verdicts in full."""
    return ENV.get_template("leaderboard_stem.html.j2").render(title=f"{row.model} ({row.study})", r=row)


def write_leaderboard(rows: list[LeaderboardRow], out: Path, formats: list[str],
                      reports: dict[str, Path], *, glance: dict[str, Glance] | None = None) -> dict[str, Path]:
    """Write the site (html, linking `reports`: study → its report.html; `glance`: each study's headlines and forest
    plot on top), leaderboard.csv and leaderboard.json under `out`; returns format → path."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    if "html" in formats:
        (out / "stems").mkdir(exist_ok=True)
        for r in rows:
            (out / stem_page_name(r)).write_text(render_stem(r))
        paths["html"] = out / "index.html"
        paths["html"].write_text(render_index(rows, reports, out, glance))
    flat = [r.flat() for r in rows]
    if "csv" in formats:
        paths["csv"] = out / "leaderboard.csv"
        with paths["csv"].open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows(flat)
    if "json" in formats:
        paths["json"] = out / "leaderboard.json"
        paths["json"].write_text(json.dumps([{k: (None if v != v else v) for k, v in r.items()} for r in flat],
                                            indent=2))
    return paths
