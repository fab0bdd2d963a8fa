"""The leaderboard: every stem found in a storage, ranked within each study against the same baselines, as a static
site (index.html and one page per stem, self-contained: no script, no network) and as CSV / JSON.

Each stem's row carries its verdicts against both baselines (the analysis layer's three-way decision, its 95%
interval and p, the noise floor), Holm-adjusted p over the stems of the study, params / GMACs / depth, best error,
did-not-train rate, and the paper's claims that the study tests, scored with the stem in ViT_C's place. Ranks: by the robustness difference against ViT_P; a stem's rank is 1 + the number of stems
whose interval lies wholly above its own, so stems whose order is not resolved share a rank, and its rank interval
runs to n − the number wholly below.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
from pathlib import Path

from robustbench_vit.analysis.claims import load_claims, score
from robustbench_vit.analysis.comparison import comparisons
from robustbench_vit.analysis.frame import load_results
from robustbench_vit.analysis.metrics import model_metrics
from robustbench_vit.analysis.noise import noise_floors, split_copies
from robustbench_vit.analysis.verdict import verdict
from robustbench_vit.errors import UserError, choices
from robustbench_vit.store import Results, stored_study_names

FORMATS = ("html", "csv", "json")
BASES = {"p": "vit_p_{}", "c": "vit_c_{}"}
COLUMNS = ("study", "rank", "rank_low", "rank_high", "model", "stem", "size", "depth", "params", "gmacs", "best_error",
           "did_not_train_rate", *(f"{k}_{f}" for k in BASES for f in ("outcome", "difference", "low", "high", "p",
                                                                         "p_holm")), "noise", "claims")


def holm(ps: list[float]) -> list[float]:
    """Holm's step-down adjustment of p-values (NaN stays NaN and is not counted)."""
    order = sorted((p, i) for i, p in enumerate(ps) if p == p)
    out, running = [float("nan")] * len(ps), 0.0
    for k, (p, i) in enumerate(order):
        running = max(running, min(1.0, (len(order) - k) * p))
        out[i] = running
    return out


def _rank(rows: list[dict]) -> None:
    """Ranks by the interval of the robustness difference against ViT_P (see the module docstring)."""
    n = len(rows)
    for r in rows:
        lo, hi = r["p_low"], r["p_high"]
        above = sum(o["p_low"] > hi for o in rows if o is not r)
        below = sum(o["p_high"] < lo for o in rows if o is not r)
        r.update(rank=1 + above, rank_low=1 + above, rank_high=n - below)
    rows.sort(key=lambda r: (r["rank"], -(r["p_difference"] if r["p_difference"] == r["p_difference"] else -9)))


def study_rows(study: str, results: Results) -> list[dict]:
    """One row per non-patchify model of `study` (its stems and ViT_C), ranked, with its verdicts and texts."""
    df = load_results(study, results)
    floors, (df, _) = noise_floors(df), split_copies(df)
    mm = model_metrics(df)
    x, cmp = mm.set_index("model"), {(c.model, c.baseline): c for c in comparisons(df)}
    sizes = df.groupby("model")["size"].first()
    rows = []
    for model in x.index:
        size = sizes[model]
        if model == BASES["p"].format(size):
            continue
        row = {"study": study, "model": model, "stem": x.at[model, "stem"], "size": size,
               "depth": int(x.at[model, "depth"]), "params": int(x.at[model, "params_count"]),
               "gmacs": float(x.at[model, "gmacs"]), "best_error": float(x.at[model, "best"]),
               "did_not_train_rate": float(x.at[model, "did_not_train_rate"]), "verdicts": {}, "noise": ""}
        for key, base in ((k, b.format(size)) for k, b in BASES.items()):
            c = cmp.get((model, base))
            v = verdict(c, mm, floors) if c else None
            d = c.decision if c else None
            row.update({f"{key}_outcome": v.outcome if v else "baseline",
                        f"{key}_p": v.p if v and v.p is not None else float("nan"),
                        **{f"{key}_{f}": getattr(d.difference, a) if d else float("nan")
                           for f, a in (("difference", "value"), ("low", "low"), ("high", "high"))}})
            row["verdicts"][base] = v.text if v else ""
            row["noise"] = row["noise"] or (v.noise if v else "")
        rows.append(row)
    claims = [c for c in load_claims() if c.study == study.split("-")[0]]  # a preset's study scores them too
    for r in rows:  # the paper's claims of this study, the stem in ViT_C's place (reproduce's scorecard, per stem)
        r["claims"] = "; ".join(f"{c.id}: {score(c, df, r['model'], BASES['p'].format(r['size'])).status}"
                                for c in claims)
    for key in BASES:
        stems = [r for r in rows if r[f"{key}_outcome"] != "baseline"]
        for r, p in zip(stems, holm([r[f"{key}_p"] for r in stems])):
            r[f"{key}_p_holm"] = p
    for r in rows:
        r.setdefault("c_p_holm", float("nan"))
    _rank(rows)
    return rows


STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:80em;color:#222}
table{border-collapse:collapse;font-size:.9em}th,td{border-bottom:1px solid #ddd;padding:.3em .6em;text-align:right}
th:nth-child(-n+3),td:nth-child(-n+3){text-align:left}.more{color:#075}.less{color:#a00}p.note{color:#555}"""


def _num(v: float, spec: str) -> str:
    """A number in `spec`, or a dash for NaN."""
    return "–" if v != v else f"{v:{spec}}"


def _versus(r: dict, key: str) -> str:
    """'more robust +0.27 [+0.06, +0.36], p 0.003 (Holm 0.026)' as an HTML cell."""
    out = r[f"{key}_outcome"]
    if out == "baseline":
        return "<td>baseline</td>"
    cls = {"more robust": "more", "less robust": "less"}.get(out, "")
    return (f'<td class="{cls}">{html.escape(out)} {_num(r[f"{key}_difference"], "+.2f")} '
            f'[{_num(r[f"{key}_low"], "+.2f")}, {_num(r[f"{key}_high"], "+.2f")}], p {_num(r[f"{key}_p"], ".2g")} '
            f'(Holm {_num(r[f"{key}_p_holm"], ".2g")})</td>')


def _page(title: str, body: str) -> str:
    """A self-contained HTML page."""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n")


def stem_page_name(r: dict) -> str:
    """The file of a stem's page: stems/STUDY--MODEL.html, characters other than letters, digits, . _ - as _."""
    return "stems/" + re.sub(r"[^A-Za-z0-9_.-]", "_", f"{r['study']}--{r['model']}") + ".html"


def _index(rows: list[dict], reports: dict[str, Path], out: Path) -> str:
    """index.html: one table per study, ranked."""
    parts = ['<p class="note">Ranked within each study by the robustness difference against ViT_P (Δ-EDF area, '
             "or its normalised form where peak errors are far apart); a rank is 1 + the stems whose 95% interval "
             "lies wholly above, so stems not resolved apart share it; [low–high] is the rank interval. Holm: p "
             "adjusted over the study's stems, against each baseline.</p>"]
    head = ("<tr><th>rank</th><th>model</th><th>stem</th><th>depth</th><th>params M</th><th>GMACs</th>"
            "<th>best %</th><th>did not train</th><th>vs ViT_P</th><th>vs ViT_C</th><th>paper's claims</th></tr>")
    for study in dict.fromkeys(r["study"] for r in rows):
        report = reports.get(study)
        link = (f' (<a href="{html.escape(_rel(report, out))}">report</a>)' if report and report.is_file() else
                f" (no report yet: <code>robustbench-vit report {html.escape(study)}</code>)")
        body = "".join(
            f"<tr><td>{r['rank']} [{r['rank_low']}–{r['rank_high']}]</td>"
            f'<td><a href="{html.escape(stem_page_name(r))}">{html.escape(r["model"])}</a></td><td>{html.escape(str(r["stem"]))}'
            f"</td><td>{r['depth']}</td><td>{r['params'] / 1e6:.3f}</td><td>{r['gmacs']:.4g}</td>"
            f"<td>{_num(r['best_error'], '.1f')}</td><td>{_num(100 * r['did_not_train_rate'], '.0f')}%</td>"
            f"{_versus(r, 'p')}{_versus(r, 'c')}<td>{html.escape(r['claims']) or '–'}</td></tr>"
            for r in rows if r["study"] == study)
        parts.append(f"<h2>{html.escape(study)}{link}</h2><table>{head}{body}</table>")
    return _page("robustbench-vit leaderboard", "".join(parts))


def _rel(path: Path, start: Path) -> str:
    """`path` relative to the folder `start` (for links between the site and the reports)."""
    return os.path.relpath(path.resolve(), start.resolve()).replace(os.sep, "/")


def _stem(r: dict) -> str:
    """A stem's page: its numbers and both verdicts in full."""
    facts = (f"<p>{html.escape(str(r['stem']))} at {r['size']}: depth {r['depth']}, {r['params'] / 1e6:.3f} M params, "
             f"{r['gmacs']:.4g} GMACs; best error {_num(r['best_error'], '.2f')}%, did not train "
             f"{_num(100 * r['did_not_train_rate'], '.0f')}%; rank {r['rank']} [{r['rank_low']}–{r['rank_high']}] in "
             f"{html.escape(r['study'])}.</p>")
    verdicts = "".join(f"<h2>vs {html.escape(b)}</h2><p>{html.escape(t)}</p>" for b, t in r["verdicts"].items() if t)
    claims = (f"<h2>The paper's claims, this stem in ViT_C's place</h2><p>{html.escape(r['claims'])}</p>"
              if r["claims"] else "")
    return _page(f"{r['model']} ({r['study']})",
                 facts + verdicts + claims + '<p><a href="../index.html">leaderboard</a></p>')


def write_leaderboard(rows: list[dict], out: Path, formats: list[str], reports: dict[str, Path]) -> dict[str, Path]:
    """Write the site (html, linking `reports`: study → its report.html), leaderboard.csv and leaderboard.json under
    `out`; returns format → path."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    if "html" in formats:
        (out / "stems").mkdir(exist_ok=True)
        for r in rows:
            (out / stem_page_name(r)).write_text(_stem(r))
        paths["html"] = out / "index.html"
        paths["html"].write_text(_index(rows, reports, out))
    flat = [{k: r[k] for k in COLUMNS} for r in rows]
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


def leaderboard_command(studies: list[str], results: Results, *, out: str | None = None, formats: str = "html", reports: str | dict[str, Path] = "reports") -> int:
    """`leaderboard`: rank every stem of the given studies (default: all in the storage), linking each study's report
    (`reports`: the folder holding STUDY/report.html, or study → report path); print where it went."""
    fmts = [f.strip() for f in formats.split(",") if f.strip()]
    bad = sorted(set(fmts) - set(FORMATS))
    if bad or not fmts:
        raise UserError(f"--format {formats!r}: allowed formats are {choices(FORMATS)}")
    names = studies or stored_study_names(results)
    if not names:
        where = results.storage or str(results.runs_dir)
        raise UserError(f"no studies in {where!r}; run `robustbench-vit compare` or `study run` first")
    rows = [r for s in names for r in study_rows(s, results)]
    if not rows:
        raise UserError(f"studies {', '.join(names)} hold no stem besides the patchify baseline")
    folder = Path(reports) if isinstance(reports, (str, Path)) else None
    links = {s: folder / s / "report.html" for s in names} if folder else dict(reports)
    out_dir = Path(out or (folder or Path("reports")) / "leaderboard")
    for fmt, path in write_leaderboard(rows, out_dir, fmts, links).items():
        print(f"leaderboard {fmt}: {path}")
    return 0
