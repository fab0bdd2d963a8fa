"""The reproduction scorecard rendered: HTML (Jinja, `templates/scorecard.html.j2`), PDF (the report's A4 layout),
a table for a wide terminal, plain-text blocks for logs and narrow terminals, and one JSON object."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import jinja2
from matplotlib.backends.backend_pdf import PdfPages
from rich.table import Table

from markupsafe import Markup

from robustbench_vit.analysis.claims import Scorecard
from robustbench_vit.analysis.figure_data import claims_forest
from robustbench_vit.analysis.methods import GLOSSARY
from robustbench_vit.report.build import linked, svg
from robustbench_vit.report.figures import forest_figure
from robustbench_vit.report.pdf import Layout, _draw, _figure_page

ENV = jinja2.Environment(loader=jinja2.PackageLoader("robustbench_vit.report", "templates"), autoescape=True,
                         undefined=jinja2.StrictUndefined)


def title(card: Scorecard) -> str:
    """The scorecard's heading."""
    return f"Does the paper hold? (preset {card.preset}; the paper's numbers are in the HTML)"


def table(card: Scorecard) -> Table:
    """The scorecard as a table, for a wide terminal."""
    t = Table(title=title(card), show_lines=True)
    t.add_column("claim", no_wrap=True)
    t.add_column("status", no_wrap=True)
    for col in ("ours [95%]", "p", "power"):
        t.add_column(col, overflow="fold")
    for row in card.rows:
        s = row.score
        t.add_row(f"{s.claim.id} ({row.size})", s.status + (f"\n{s.look_text}" if s.look else ""), s.ours,
                  "–" if s.p is None else f"{s.p:.2g}", s.power_text)
    return t


def blocks(card: Scorecard, width: int = 80) -> str:
    """The scorecard as one block per claim, each line at most `width` characters: for logs and narrow terminals."""
    out = [title(card)]
    for row in card.rows:  # the headlines end the command's output (print_card)
        s = row.score
        out += ["", f"{s.claim.id} ({row.size}): {s.status}"]
        for label, text in (("ours", s.ours), ("test", f"p {'–' if s.p is None else f'{s.p:.2g}'}, power "
                                                       f"{s.power_text}"), ("why", s.why),
                            *((("looks", s.look_text),) if s.look else ())):
            out.append(textwrap.fill(text, width, initial_indent=f"  {label}: ", subsequent_indent=" " * 8))
    return "\n".join(out)


def _number(x: float | None) -> float | None:
    """A JSON number: None for a missing value or NaN."""
    return None if x is None or math.isnan(x) else x


def card_json(card: Scorecard, paths: dict[str, Path]) -> str:
    """The scorecard as one JSON object: preset, date, studies, one entry per (claim, size), the files written."""
    rows = [{"claim": s.claim.id, "size": row.size, "statement": s.claim.statement, "status": s.status,
             "headline": row.headline, "effect": _number(s.effect), "unit": s.unit or None,
             "low": _number(s.interval[0]) if s.interval else None,
             "high": _number(s.interval[1]) if s.interval else None, "ours": s.ours, "test": s.test, "p": _number(s.p), "power": _number(s.power), "needed_per_model": s.needed,
             "why": s.why, "ran": s.ran, "sequential": s.look.to_dict() if s.look else None, "report": row.report}
            for row in card.rows for s in (row.score,)]
    return json.dumps({"preset": card.preset, "generated": card.generated, "studies": card.studies, "claims": rows,
                       "files": {k: str(v) for k, v in paths.items()}}, indent=2)


def write_pdf(card: Scorecard, path: Path) -> Path:
    """The scorecard as a PDF: one record per claim, then the studies run."""
    layout = Layout()
    layout.line(f"Does the paper hold? (preset {card.preset})", "h1")
    layout.para(f"robustbench-vit reproduction scorecard · generated {card.generated} · Xiao et al., NeurIPS 2021 "
                "(arXiv 2106.14881)", "small")
    layout.para("Reproduced or contradicted only on a significant test (p < 0.05; robustness: decided beyond the "
                "margin); equivalent: equally robust within the margin; otherwise inconclusive, with the power at "
                "this size. A small-scale run is a proxy for the paper's ImageNet experiments.", "small")
    for row in card.rows:
        layout.para(row.headline, space=0.02)
    for row in card.rows:
        s = row.score
        layout.heading(f"{s.claim.id} ({row.size}): {s.status.upper()}")
        layout.para(s.claim.statement)
        for label, text in (("why", s.why), ("ours [95%]", s.ours), ("test", s.test), ("power", s.power_text),
                            ("paper", f"{s.claim.paper} ({s.claim.where}"
                                      f"{', read off a figure' if s.claim.from_figure else ''})"),
                            ("ran here", s.ran), ("study report", row.report)):
            layout.para(f"{label}: {text}", "small", space=0.02)
    layout.heading("Studies run")
    for name, text in card.studies.items():
        layout.para(f"{name}: {text}", "small")
    figure = forest_figure(claims_forest(card.rows), "Every claim at a glance")
    with PdfPages(path, metadata={"Title": "robustbench-vit scorecard", "Creator": "robustbench-vit"}) as pdf:
        _draw(layout.pages, pdf, 1)
        if figure:
            _figure_page(figure, 1, len(layout.pages) + 1, pdf)
    return path


def render_html(card: Scorecard) -> str:
    """scorecard.html: the claims' headlines and their forest plot on top, then the table, the studies, the terms."""
    figure = forest_figure(claims_forest(card.rows), "Every claim at a glance")
    return ENV.get_template("scorecard.html.j2").render(
        card=card, heads=linked([row.headline for row in card.rows]), figure=figure, glossary=GLOSSARY,
        forest=Markup(svg(figure, f"scorecard-{card.preset}")) if figure else "")


def write_scorecard(card: Scorecard, out: Path, formats: tuple[str, ...]) -> dict[str, Path]:
    """scorecard.html (each claim linked to its study report) and scorecard.pdf under `out`; format → path."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    if "html" in formats:
        paths["html"] = out / "scorecard.html"
        paths["html"].write_text(render_html(card), encoding="utf-8")
    if "pdf" in formats:
        paths["pdf"] = write_pdf(card, out / "scorecard.pdf")
    return paths
