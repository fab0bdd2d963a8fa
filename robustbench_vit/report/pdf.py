"""The report as a paginated PDF through matplotlib's PdfPages: A4 text pages, one page per figure.

Pure Python (no system packages); text is embedded as TrueType (pdf.fonttype 42), so it can be extracted.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from robustbench_vit.analysis.summary import Table
from robustbench_vit.report.figures import STYLE, FigureItem

PAGE_W, PAGE_H, MARGIN = 8.27, 11.69, 0.7  # A4, inches
STYLES = {"h1": (17, "bold", "sans-serif"), "h2": (13, "bold", "sans-serif"), "p": (9.5, "normal", "sans-serif"),
          "mono": (7.2, "normal", "monospace"), "small": (8.5, "normal", "sans-serif")}
CHAR_W = {"sans-serif": 0.55, "monospace": 0.6}  # average glyph width in em (DejaVu)


class Layout:
    """Flows lines of styled text down A4 pages; pages are lists of (y, text, style) until rendered."""

    def __init__(self) -> None:
        """Start with no pages."""
        self.pages: list[list[tuple[float, str, str]]] = []
        self.y = 0.0

    def _chars(self, style: str) -> int:
        """How many characters of a style fit on one line."""
        size, _, family = STYLES[style]
        return int((PAGE_W - 2 * MARGIN) * 72 / (size * CHAR_W[family]))

    def page(self) -> None:
        """Start a new page."""
        self.pages.append([])
        self.y = PAGE_H - MARGIN

    def line(self, text: str, style: str = "p") -> None:
        """One line of text (a new page when this one is full)."""
        h = STYLES[style][0] * 1.45 / 72
        if not self.pages or self.y - h < MARGIN:
            self.page()
        self.y -= h
        self.pages[-1].append((self.y, text, style))

    def para(self, text: str, style: str = "p", space: float = 0.08) -> None:
        """A wrapped paragraph followed by a little space."""
        for ln in textwrap.wrap(text, self._chars(style)) or [""]:
            self.line(ln, style)
        self.y -= space

    def heading(self, text: str, level: str = "h2") -> None:
        """A heading, kept with at least a few lines of what follows."""
        if self.pages and self.y - 1.0 < MARGIN:
            self.page()
        self.y -= 0.12
        self.line(text, level)
        self.y -= 0.05

    def table(self, t: Table) -> None:
        """A table in monospace columns, or as one record per row when too wide for the page."""
        if not t.rows:
            return
        widths = [max(len(str(r[i])) for r in [t.headers, *t.rows]) for i in range(len(t.headers))]
        if sum(widths) + 2 * len(widths) <= self._chars("mono"):
            for r in [t.headers, ["-" * w for w in widths], *t.rows]:
                self.line("  ".join(str(c).ljust(w) for c, w in zip(r, widths)), "mono")
        else:
            for r in t.rows:
                for h, c in zip(t.headers, r):
                    if c:
                        self.para(f"{h}: {c}", "mono", space=0)
                self.y -= 0.1
        self.y -= 0.1


def _text_part(layout: Layout, c, toc: list[tuple[str, int]] | None, first: bool) -> list[tuple[str, int]]:
    """Lay out the report's text; returns (section, page) of each section for the table of contents."""
    marks = []

    def section(name: str) -> None:
        """A section heading, remembering its page."""
        layout.heading(name)
        marks.append((name, len(layout.pages)))

    if first:
        layout.line(f"Study {c.study}" + (" (partial)" if c.partial else ""), "h1")
        layout.para(f"robustbench-vit robustness report · generated {c.generated}"
                    + (f" · {c.description}" if c.description else ""), "small")
        if c.partial:
            layout.para("PARTIAL: this study is still running or incomplete; the report shows what is done.")
        section("Verdict")
        for v in c.verdicts:
            layout.para(f"{v.title}: {v.short}", space=0.04)
            for line in (v.headline, *v.evidence, *v.caveats):
                layout.para(f"  · {line}", "small", space=0.02)
            layout.y -= 0.1
        if c.summary:
            layout.para(f"Figure 1 ({c.summary.title}) shows each comparison's effect with its 95% interval, the "
                        "margin and the noise floor.", "small")
        for n in c.notes:
            layout.para(n, "small")
        layout.heading("Contents")
        for name, page in toc or []:
            layout.line(f"{name}  ·  page {page}", "small")
        section("Metrics per model")
        layout.table(c.metrics)
        section("Comparisons against baselines")
        if c.comparisons.rows:
            layout.table(c.comparisons)
            layout.para("All columns:", "small", space=0.02)
            layout.table(c.details)
        else:
            layout.para("Unavailable: a comparison needs at least two models, one of them a baseline.")
        section("Hyperparameter importances")
        layout.table(c.importance)
        if c.importance.rows:
            layout.para("fANOVA (Optuna): share of the error's variance each hyperparameter explains alone; "
                        "interactions: the rest. Trials that did not train count at the cap.", "small")
        layout.para(c.importance_note, "small")
    else:
        section("Trials by status")
        layout.table(c.status)
        layout.para("Failed trials:" if c.failed.rows else "Failed trials: none.")
        layout.table(c.failed)
        section("Study spec")
        for ln in c.spec_yaml.splitlines():
            layout.para(ln, "mono", space=0)
        section("Provenance")
        for k, v in c.provenance:
            layout.para(f"{k}: {v}", "small", space=0.04)
        section("Methods")
        for m in c.methods:
            layout.para(f"· {m}", "small", space=0.06)
    return marks


def _draw(pages: list[list[tuple[float, str, str]]], pdf: PdfPages, first_number: int) -> None:
    """Render laid-out text pages with page numbers."""
    for k, ops in enumerate(pages):
        fig = Figure(figsize=(PAGE_W, PAGE_H))
        for y, text, style in ops:
            size, weight, family = STYLES[style]
            fig.text(MARGIN / PAGE_W, y / PAGE_H, text, fontsize=size, weight=weight, family=family, va="bottom")
        fig.text(0.5, 0.35 / PAGE_H, str(first_number + k), ha="center", fontsize=8, color="0.4")
        pdf.savefig(fig)


def _figure_page(item: FigureItem, number: int, page: int, pdf: PdfPages) -> None:
    """One figure on its own page, its title and caption above it (the figure is restored afterwards).

    Both go above so that legends placed outside at the bottom of a figure keep their place.
    """
    fig = item.figure
    w, h = fig.get_size_inches()
    caption = textwrap.wrap(item.caption, int(w * 72 / (8.5 * 0.55)))
    top, bottom = 0.55 + 0.16 * len(caption), 0.3
    big_h = h + top + bottom
    engine = fig.get_layout_engine()
    fig.set_size_inches(w, big_h)
    engine.set(rect=(0, bottom / big_h, 1, h / big_h))
    added = [fig.text(0.02, 1 - 0.15 / big_h, f"Figure {number}. {item.title}", va="top", fontsize=12,
                      weight="bold"),
             fig.text(0.02, 1 - 0.45 / big_h, "\n".join(caption), va="top", fontsize=8.5, color="0.2"),
             fig.text(0.98, 1 - 0.15 / big_h, str(page), ha="right", va="top", fontsize=8, color="0.4")]
    try:
        pdf.savefig(fig)
    finally:
        for t in added:
            t.remove()
        fig.set_size_inches(w, h)
        engine.set(rect=(0, 0, 1, 1))


def write_pdf(c, path: Path) -> Path:
    """Write the report content as a PDF: verdict, metrics and comparisons, figures, then the rest."""
    tail = Layout()
    marks_b = _text_part(tail, c, None, first=False)
    figures = c.all_figures
    n_toc = len(_text_part(Layout(), c, [], first=True)) + len(figures) + len(marks_b)
    pass1 = Layout()  # the contents have a fixed number of lines, so placeholders give the final pagination
    marks_a = _text_part(pass1, c, [("", 0)] * n_toc, first=True)
    n_a, n_f = len(pass1.pages), len(figures)
    toc = (marks_a + [(f"Figure {i}. {f.title}", n_a + i) for i, f in enumerate(figures, 1)]
           + [(name, page + n_a + n_f) for name, page in marks_b])
    head = Layout()
    _text_part(head, c, toc, first=True)
    with plt.rc_context(STYLE), PdfPages(path, metadata={"Title": f"robustbench-vit report: {c.study}",
                                                         "Creator": "robustbench-vit"}) as pdf:
        _draw(head.pages, pdf, 1)
        for i, item in enumerate(figures, 1):
            _figure_page(item, i, len(head.pages) + i, pdf)
        _draw(tail.pages, pdf, len(head.pages) + n_f + 1)
    return path

