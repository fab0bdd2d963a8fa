"""Metrics and comparisons as tables of text cells, and the notes on how the numbers were made."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from robustbench_vit.analysis.inference import MAX_N
from robustbench_vit.analysis.metrics import DELTA_WINDOW, PEAK_POINTS, PEAK_SHARE, RESULTS, WITHIN, is_adaptive

if TYPE_CHECKING:
    from robustbench_vit.analysis.comparison import Comparison


@dataclass
class Table:
    """A table as text cells: a header row and body rows."""

    headers: list[str]
    rows: list[list[str]]


def fmt(v, spec: str = ".2f") -> str:
    """A number formatted with `spec` ('%' for a percentage of a fraction); '–' for missing values."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if spec == "%":
        return f"{100 * v:.0f}%"
    return format(v, spec)


MINUS = "\u2212"  # headlines print negative numbers with a true minus sign
TERMINAL = 100  # the widest a terminal summary line gets (narrower terminals wrap to their width)
LINE = 100  # a comparison's or a claim's line in a terminal: at most this many characters (wrapped at 80 columns)


def decimals(low: float, high: float, scale: float = 1.0) -> int:
    """Decimals an interval supports: two significant digits of its half-width (0 to 3)."""
    half = abs(high - low) * scale / 2
    if not half or half != half:
        return 2
    return max(0, min(3, 1 - math.floor(math.log10(half))))


def signed(v: float, places: int) -> str:
    """A signed number with `places` decimals and a true minus sign."""
    return f"{v:+.{places}f}".replace("-", MINUS)


def rounded(value: float, low: float, high: float, scale: float = 1.0) -> str:
    """'+0.32 [+0.15, +0.49]': an effect and its 95% interval, rounded to what the interval supports."""
    k = decimals(low, high, scale)
    return f"{signed(value * scale, k)} [{signed(low * scale, k)}, {signed(high * scale, k)}]"


def fitted(lines: Sequence[str]) -> str:
    """The first of `lines` (fullest first) that fits in LINE characters; the last where none does."""
    return next((line for line in lines if len(line) <= LINE), lines[-1])


def with_next(lines: list[str], command: str | None, needed: Sequence[int], what: str) -> list[str]:
    """`lines`, then, where some left out their command (`command` not None), one `next:` line with it and the most
    settings per model any of them needs (`what` they would decide)."""
    if command is None:
        return lines
    most = max(needed, default=None)
    return [*lines, f"next: {command}" + (f" (about {most} settings per model would decide {what})" if most else "")]


def terminal_lines(lines: Sequence[str], width: int = TERMINAL) -> list[str]:
    """Headlines for a terminal, one each, wrapped at min(width, TERMINAL) columns with a hanging indent, broken at
    spaces only (a number or a name stays whole)."""
    width = max(40, min(width, TERMINAL))
    return [part for line in lines for part in textwrap.wrap(line, width, subsequent_indent="    ",
                                                              break_long_words=False, break_on_hyphens=False)]


def _get(r, key):
    """A value of a metrics row, None where the column does not exist."""
    return r[key] if key in r else None


def _where(r, name: str, suffix: str) -> str:
    """Where the best value of lr / wd lies (pycls bootstrap, 95%): [low, high] and its width in decades."""
    lo, hi = _get(r, f"good_{name}_low{suffix}"), _get(r, f"good_{name}_high{suffix}")
    if lo is None or math.isnan(lo):
        return "–"
    return f"[{10 ** lo:.2g}, {10 ** hi:.2g}] ({hi - lo:.2f} dec.)"


def _learned(r) -> str:
    """'yes', or 'no' with why, for the row of a model."""
    return "yes" if r["learned"] else "no: did not learn in this range" if r["trials"] else "–"


FAR = "†"  # marks a Δ-based value of a model whose best is far from its size's best: not comparable as robustness


def _far(r, text: str) -> str:
    """A Δ-based cell, marked where the model's best is far worse than the best model's of its size."""
    return f"{text} {FAR}" if _get(r, "peak_far") is True and text != "–" else text


def _lr_sensitivity(r, suffix: str, normalised: bool = False) -> str:
    """LR sensitivity (raw or normalised), or why it is n/a (it needs a 1-D lr sweep)."""
    v = _get(r, f"lr_sensitivity{suffix}{'_normalised' if normalised else ''}")
    if v is not None and not math.isnan(v):
        return fmt(v) if normalised else _far(r, fmt(v))
    if r["trials"] and r["learned"] and _get(r, f"good_lr_low{suffix}") is not None:
        return "n/a (no 1-D lr sweep)"
    return "–"


def _step(r) -> str:
    """The measured training step (median over the trials' warm steps, at the study's batch size) and its device."""
    v = _get(r, "step_seconds")
    return "–" if v is None or v != v else f"{1000 * v:.3g} ms · {_get(r, 'device') or 'device not stored'}"


METRIC_ROWS = [  # (label, function of a metrics row → cell text); no label implies a direction it does not measure
    ("stem", lambda r: str(_get(r, "stem") or "–")),
    ("depth · params (M) · GMACs", lambda r: f"{fmt(_get(r, 'depth'), '.0f')} · "
     f"{fmt(_get(r, 'params_count') and r['params_count'] / 1e6, '.2f')} · {fmt(_get(r, 'gmacs'), '.3g')}"),
    ("activations (M, conv and matmul outputs per image)",
     lambda r: fmt(_get(r, "activations") and r["activations"] / 1e6, ".3g")),
    ("training step, median of warm steps (ms) · device", _step),
    ("results (complete + at chance + diverged)", lambda r: str(r["trials"])),
    ("complete / at chance / diverged", lambda r: f"{r['complete']} / {r['collapsed']} / {r['diverged']}"),
    ("failed (no result, left out)", lambda r: str(r["failed"])),
    ("running / pending", lambda r: f"{r['running']} / {r['pending']}"),
    ("learned in this range", _learned),
    ("best error (%)", lambda r: fmt(_get(r, "best_final"))),
    ("median error (%)", lambda r: fmt(_get(r, "median"))),
    ("did not train, with 95% interval", lambda r: f"{fmt(_get(r, 'did_not_train_rate'), '%')} "
     f"[{fmt(_get(r, 'did_not_train_low'), '%')}, {fmt(_get(r, 'did_not_train_high'), '%')}]"),
    (f"Δ-EDF area over 0–{DELTA_WINDOW:g} points (↑ robust)", lambda r: _far(r, fmt(_get(r, "delta_auc"), ".3f"))),
    ("normalised robustness: share of the attainable improvement kept (↑ robust)",
     lambda r: fmt(_get(r, "retained"), ".3f")),
    ("rank by Δ-EDF area (1 = most robust)", lambda r: fmt(_get(r, "rank"), ".0f")),
    ("within 1 / 2 / 5 points of best",
     lambda r: _far(r, " / ".join(fmt(_get(r, f"within_{k}"), "%") for k in (1, 2, 5)))),
    ("expected best of 5 random trials (%)", lambda r: f"{fmt(_get(r, 'expected_best'))} ± "
     f"{fmt(_get(r, 'expected_best_std'))}"),
    ("search: trials until within 1 point of its best", lambda r: fmt(_get(r, "trials_to_best"), ".0f")),
    *[row for sfx, name in (("", ""), ("_adamw", " · AdamW"), ("_sgd", " · SGD")) for row in (
        (f"LR sensitivity{name} (points, ↓ robust)", lambda r, s=sfx: _lr_sensitivity(r, s)),
        (f"LR sensitivity{name}, normalised: share of the attainable improvement lost (↓ robust)",
         lambda r, s=sfx: _lr_sensitivity(r, s, normalised=True)),
        (f"where the best lr lies{name} (95%)", lambda r, s=sfx: _where(r, "lr", s)),
        (f"where the best wd lies{name} (95%)", lambda r, s=sfx: _where(r, "wd", s)))],
    ("best AdamW error (%)", lambda r: fmt(_get(r, "best_adamw"))),
    ("best SGD error (%)", lambda r: fmt(_get(r, "best_sgd"))),
    ("optimizer gap, best SGD − best AdamW (points, ↓ robust)", lambda r: fmt(_get(r, "optimizer_gap"), "+.2f")),
]


def metrics_table(mm: pd.DataFrame) -> Table:
    """Metrics as rows, models as columns; rows empty for every model are left out."""
    rows = []
    for label, cell in METRIC_ROWS:
        cells = [cell(r) for _, r in mm.iterrows()]
        if any(c.strip("–/ ±·[],%") for c in cells) and not (label.startswith("running") and set(cells) == {"0 / 0"}):
            rows.append([label, *cells])
    return Table(["metric", *mm["model"]], rows)


def _decision_cell(c: Comparison) -> str:
    """The decision of a comparison's row: its outcome and margin, or why there is none."""
    d = c.decision
    if d is None:
        return "adaptive design: no robustness test" if c.design == "adaptive" else "unavailable (needs ≥ 2 results each)"
    if not c.learned:
        return "not comparable (did not learn)"
    return f"{c.outcome} (±{d.margin:g}{', normalised: peak error confounds Δ' if c.confounded else ''})"


def _interval(c: Comparison, key: str, scale: float = 1.0) -> str:
    """A secondary difference with its 95% interval, rounded to what the interval supports."""
    iv = c.differences[key]
    return rounded(iv.value, iv.low, iv.high, scale)


def comparisons_table(cmp: list[Comparison]) -> Table:
    """One row per (model, baseline) pair, in seven columns that fit a screen: the decision, the decided effect with
    its interval and p, and the best-error and did-not-train differences (the rest: `comparison_details_table`)."""
    headers = ["model vs baseline", "n", "decision", "effect [95%]", "p", "best error diff. [95%]",
               "did not train, diff. [95%]"]
    rows = []
    for c in cmp:
        d = c.decision
        head = [f"{c.model} vs {c.baseline}", f"{c.n_model} vs {c.n_baseline}", _decision_cell(c)]
        if d is None:
            rows.append(head + [""] * (len(headers) - 3))
            continue
        iv, unit = d.difference, "Δ-EDF area" if d.statistic == "area" else "normalised"
        rows.append(head + [f"{unit} {rounded(iv.value, iv.low, iv.high)}", fmt(d.p, ".2g"),
                            _interval(c, "best"), _interval(c, "did_not_train", 100)])
    return Table(headers, rows)


def comparison_details_table(cmp: list[Comparison]) -> Table:
    """Everything else a comparison measured, one row per pair: design, both statistics at full precision, KS, the
    within-k differences, power, the settings that would decide, and the paired sign test."""
    headers = ["model vs baseline", "design", "Δ-EDF area", "area difference [95%]", "area test p", "KS D · p",
               "normalised diff. [95%]", "within 1 / 2 / 5 pts, diff. [95%]", "did not train, diff. [95%]",
               "best error diff. [95%]", "power to decide", "n to decide", "paired better / worse / tie",
               "sign-test p"]
    rows = []
    for c in cmp:
        d, area = c.decision, c.robustness
        head = [f"{c.model} vs {c.baseline}", c.design]
        if d is None or area is None:
            rows.append(head + [""] * (len(headers) - 2))
            continue
        rows.append(head + [f"{area.model_value:.3f} vs {area.baseline_value:.3f}", area.difference.text("+.3f"),
                            fmt(area.p, ".2g"), f"{c.ks_d:.2f} · {c.ks_p:.2g}", c.normalised.difference.text("+.3f"),
                            " · ".join(c.differences[f"within_{k}"].text("+.0f", 100) for k in WITHIN),
                            c.differences["did_not_train"].text("+.0f", 100), c.differences["best"].text("+.2f"),
                            fmt(d.power, "%"), f"{d.needed}" if d.needed is not None else f"> {MAX_N}",
                            f"{c.wins} / {c.losses} / {c.ties}", fmt(c.sign_p, ".2g")])
    return Table(headers, rows)


def notes(df: pd.DataFrame, mm: pd.DataFrame | None = None) -> list[str]:
    """How the numbers were made: partial studies, capped trials, failures, peak-error marks, adaptive designs."""
    counts = df["status"].value_counts()
    done = int(sum(counts.get(s, 0) for s in RESULTS))
    out = []
    waiting = int(counts.get("running", 0) + counts.get("pending", 0))
    if waiting:
        out.append(f"Partial study: {done} of {done + waiting + int(counts.get('failed', 0))} trials have a result "
                   f"({int(counts.get('running', 0))} running, {int(counts.get('pending', 0))} pending). "
                   "Everything below covers results only.")
    failed = int(counts.get("failed", 0))
    if failed:
        out.append(f"Incomplete study: {failed} trial{'s' if failed > 1 else ''} failed (crashed, killed or out of "
                   "memory) and left no result. Failed trials are not part of any metric, figure or test; they are "
                   "listed with their messages under Trials by status. Run `study run` again to re-run them.")
    if mm is not None and "peak_far" in mm and mm["peak_far"].any():
        out.append(f"{FAR} Δ measured from a best far worse than the best model's of its size (more than "
                   f"{PEAK_POINTS:g} points, or more than {PEAK_SHARE:.0%} of the way to chance): such a model is "
                   "small in Δ because it is bad everywhere, so its Δ-based values are not robustness and it gets no "
                   "rank; read the normalised rows.")
    stopped = int(df["stopped_early"].fillna(False).astype(bool).sum()) if "stopped_early" in df else 0
    early = (f", {stopped} of them stopped early by the hopeless-trial rule: at chance at every epoch until "
             "stopped; PRUNED in Optuna") if stopped else ""
    out.append(f"Did not train: diverged ({int(counts.get('diverged', 0))}) and at chance "
               f"({int(counts.get('collapsed', 0))}{early}) trials count at 100% error in every metric and figure "
               "(they are part of the distribution, unlike in Optuna's plot_edf).")
    if is_adaptive(df):
        out.append("Adaptive (TPE) design: each model's trials follow its own search, so they are neither paired "
                   "nor a random sample of the space. No error EDF, robustness test or random-budget curve is "
                   "shown; the study answers which best error each search found and how fast.")
    return out
