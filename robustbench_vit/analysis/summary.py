"""Metrics and comparisons in words and tables: the verdict, the caveats and the rows both report formats show."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from robustbench_vit.analysis.metrics import DELTA_WINDOW, FINISHED

SMALL_N = 20  # below this many finished trials per model a significant result is still flagged as indicative


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


def _get(r, key):
    """A value of a metrics row, None where the column does not exist."""
    return r[key] if key in r else None


def _range(r, suffix: str) -> str:
    """Width of the good lr range in decades, with the range itself."""
    lo, hi = _get(r, f"good_lr_low{suffix}"), _get(r, f"good_lr_high{suffix}")
    text = fmt(_get(r, f"good_lr_decades{suffix}"))
    return text + (f" [{10 ** lo:.2g}, {10 ** hi:.2g}]" if lo is not None and not math.isnan(lo) else "")


METRIC_ROWS = [  # (label, function of a metrics row → cell text)
    ("stem", lambda r: str(_get(r, "stem") or "–")),
    ("depth · params (M) · GMACs", lambda r: f"{fmt(_get(r, 'depth'), '.0f')} · "
     f"{fmt(_get(r, 'params_count') and r['params_count'] / 1e6, '.2f')} · {fmt(_get(r, 'gmacs'), '.3g')}"),
    ("finished trials", lambda r: str(r["trials"])),
    ("complete / diverged / failed", lambda r: f"{r['complete']} / {r['diverged']} / {r['failed']}"),
    ("running / pending", lambda r: f"{r['running']} / {r['pending']}"),
    ("best error (%)", lambda r: fmt(_get(r, "best"))),
    ("median error (%)", lambda r: fmt(_get(r, "median"))),
    ("mean error (%)", lambda r: fmt(_get(r, "mean"))),
    ("divergence rate", lambda r: fmt(_get(r, "divergence_rate"), "%")),
    (f"Δ-EDF area over 0–{DELTA_WINDOW:g} points (↑ robust)", lambda r: fmt(_get(r, "delta_auc"), ".3f")),
    ("rank by Δ-EDF area (1 = most robust)", lambda r: fmt(_get(r, "rank"), ".0f")),
    ("within 1 / 2 / 5 points of best", lambda r: " / ".join(fmt(_get(r, f"within_{k}"), "%") for k in (1, 2, 5))),
    ("expected best of 5 random trials (%)", lambda r: f"{fmt(_get(r, 'expected_best'))} ± "
     f"{fmt(_get(r, 'expected_best_std'))}"),
    *[row for sfx, name in (("", ""), ("_adamw", " · AdamW"), ("_sgd", " · SGD")) for row in (
        (f"LR sensitivity{name} (points, ↓ robust)", lambda r, s=sfx: fmt(_get(r, f"lr_sensitivity{s}"))),
        (f"good lr range{name} (decades, ↑ robust)", lambda r, s=sfx: _range(r, s)),
        (f"good wd range{name} (decades)", lambda r, s=sfx: fmt(_get(r, f"good_wd_decades{s}"))))],
    ("best AdamW error (%)", lambda r: fmt(_get(r, "best_adamw"))),
    ("best SGD error (%)", lambda r: fmt(_get(r, "best_sgd"))),
    ("optimizer gap, best SGD − best AdamW (points)", lambda r: fmt(_get(r, "optimizer_gap"), "+.2f")),
]


def metrics_table(mm: pd.DataFrame) -> Table:
    """Metrics as rows, models as columns; rows empty for every model are left out."""
    rows = []
    for label, cell in METRIC_ROWS:
        cells = [cell(r) for _, r in mm.iterrows()]
        if any(c.strip("–/ ±·[]") for c in cells) and not (label.startswith("running") and set(cells) == {"0 / 0"}):
            rows.append([label, *cells])
    return Table(["metric", *mm["model"]], rows)


def comparisons_table(cmp: pd.DataFrame) -> Table:
    """One row per (model, baseline) pair with the KS tests and the paired counts."""
    headers = ["model vs baseline", "trials", "Δ-EDF area", "KS D (Δ)", "p (Δ)", "KS D (abs.)", "p (abs.)",
               "critical D (5%)", "Δ-EDF above", "paired better / worse / tie", "sign-test p"]
    rows = []
    for _, r in cmp.iterrows():
        if "ks_d" not in r or pd.isna(r.get("ks_d")):
            rows.append([f"{r['model']} vs {r['baseline']}", f"{r['n_model']} vs {r['n_baseline']}"]
                        + ["unavailable (needs ≥ 2 finished trials each)"] + [""] * (len(headers) - 3))
            continue
        rows.append([f"{r['model']} vs {r['baseline']}", f"{r['n_model']} vs {r['n_baseline']}",
                     f"{r['auc_model']:.3f} vs {r['auc_baseline']:.3f}", fmt(r["ks_d"]), fmt(r["ks_p"], ".2g"),
                     fmt(r["ks_d_abs"]), fmt(r["ks_p_abs"], ".2g"), fmt(r["critical_d"]), str(r["above"]),
                     f"{r['wins']} / {r['losses']} / {r['ties']}", fmt(r["sign_p"], ".2g")])
    return Table(headers, rows)


def verdict(r: pd.Series, mm: pd.DataFrame) -> tuple[str, str]:
    """(title, one paragraph in plain words) for a (model, baseline) comparison, with the numbers behind it."""
    m, b = r["model"], r["baseline"]
    title = f"{m} vs {b}"
    if "ks_d" not in r or pd.isna(r.get("ks_d")):
        return title, (f"Comparison unavailable: it needs at least 2 finished trials per model "
                       f"(have {r['n_model']} and {r['n_baseline']}).")
    x = mm.set_index("model")
    lead, other = (m, b) if r["auc_model"] >= r["auc_baseline"] else (b, m)
    sig = r["ks_p"] < 0.05
    above = {lead: f"its Δerror EDF lies above {other}'s over the whole 0–{DELTA_WINDOW:g} point window",
             other: f"yet {other}'s Δerror EDF lies above over the whole 0–{DELTA_WINDOW:g} point window",
             "crossing": f"the Δerror EDFs cross within 0–{DELTA_WINDOW:g} points (neither dominates)",
             "equal": "the Δerror EDFs are identical"}[r["above"]]
    if sig and r["above"] == lead:  # "more robust" only when significant and the lead's EDF dominates
        claim = f"{lead} is more robust than {other}: {above}"
    elif sig:  # the head (before the colon) is what `compare` prints
        why = {"crossing": "the EDFs cross", other: f"the EDFs do not favour {lead}"}.get(r["above"],
                                                                                         "neither EDF dominates")
        detail = (f"neither Δerror EDF lies above the other over the whole 0–{DELTA_WINDOW:g} point window"
                  if r["above"] == "crossing" else above.removeprefix("yet "))
        claim = f"The Δerror distributions of {lead} and {other} differ significantly, but {why}: {detail}"
    else:
        claim = f"{lead} is ahead of {other} on robustness, but not significantly: {above}"
    text = (f"{claim}. Δ-EDF area {x.at[lead, 'delta_auc']:.2f} vs {x.at[other, 'delta_auc']:.2f}; "
            f"within 2 points of their best {fmt(x.at[lead, 'within_2'], '%')} vs {fmt(x.at[other, 'within_2'], '%')}"
            f" of trials; diverged {fmt(x.at[lead, 'divergence_rate'], '%')} vs "
            f"{fmt(x.at[other, 'divergence_rate'], '%')} ({lead} vs {other}). KS test on Δerror: D = {r['ks_d']:.2f}, "
            f"p = {r['ks_p']:.2g} (5% critical D ≈ {r['critical_d']:.2f} for {r['n_model']} vs {r['n_baseline']} "
            f"trials): {'significant' if sig else 'not significant'} at the 5% level.")
    text += " " + _absolute(r)
    n = min(r["n_model"], r["n_baseline"])
    if not sig:
        text += (f" Caution: with {r['n_model']} vs {r['n_baseline']} trials a Δerror-EDF difference of this size "
                 f"(D = {r['ks_d']:.2f}) is within sampling noise; about {r['needed']} trials per model would be "
                 "needed to detect it at 5%.")
    elif n < SMALL_N:
        text += f" Caution: only {n} trials per model — treat this as indicative."
    return title, text


def _absolute(r: pd.Series) -> str:
    """The absolute-error side of a comparison: best errors and the paired (same settings) sign test."""
    m, b = r["model"], r["baseline"]
    best = f"best error {m} {r['best_model']:.2f}% vs {b} {r['best_baseline']:.2f}%"
    if not r["matched"]:
        return f"In absolute error: {best} (no identical settings to pair)."
    w, lo, p = r["wins"], r["losses"], r["sign_p"]
    first, second, k, j = (m, b, w, lo) if w >= lo else (b, m, lo, w)
    sig = "significant" if p < 0.05 else "not significant"
    return (f"In absolute error, {first} beats {second} at {k} of {r['matched']} identical settings ({j} the other "
            f"way, {r['ties']} tied; sign test p = {p:.2g}, {sig}); {best}.")


def verdicts(mm: pd.DataFrame, cmp: pd.DataFrame) -> list[tuple[str, str]]:
    """The verdicts as (title, paragraph), one per comparison, or why there is nothing to compare."""
    if len(mm) < 2:
        only = mm["model"].iloc[0] if len(mm) else "none"
        return [("Comparisons unavailable", f"Only one model in this study ({only}): comparisons against a "
                 "baseline are unavailable; the metrics and figures below describe it alone.")]
    if cmp.empty:
        return [("Comparisons unavailable", "No baseline (vit_p_* or vit_c_*) of the same size as another model "
                 "in this study to compare against (models are compared only within one size).")]
    return [verdict(r, mm) for _, r in cmp.iterrows()]


def notes(df: pd.DataFrame) -> list[str]:
    """How the numbers were made: partial studies, capped trials, failures."""
    counts = df["status"].value_counts()
    done = int(sum(counts.get(s, 0) for s in FINISHED))
    out = []
    waiting = int(counts.get("running", 0) + counts.get("pending", 0))
    if waiting:
        out.append(f"Partial study: {done} of {done + waiting} trials finished ({int(counts.get('running', 0))} "
                   f"running, {int(counts.get('pending', 0))} pending). Everything below covers finished trials only.")
    out.append(f"Diverged trials ({int(counts.get('diverged', 0))}) count at 100% error in every metric and figure "
               "(they are part of the distribution, unlike in Optuna's plot_edf). Failed trials "
               f"({int(counts.get('failed', 0))}: crashed or killed without a result) are counted the same way, "
               "at 100%, and listed with their messages in the section on failed trials.")
    return out
