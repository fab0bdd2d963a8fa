"""`--until-decided`: run a study look by look until every decision it asks for is taken, or the budget is spent.

A look is the design grown to its first n settings per model (`plan.extended`: grids add replicates, random and
quasirandom designs extend their sequence), every trial of those settings run (stored ones count, nothing runs
twice), then analysed: each pending decision (a comparison's more robust / less robust / equivalent, or a claim's
reproduced / contradicted / equivalent) is taken at the level the look spends (`analysis.sequential`: alpha
spending over the budget, repeated confidence intervals; the error rates hold however often it looks). A taken
decision is kept; the rest go on to the next look, n + look-every, until none is left or the budget is spent.

Looks and decisions are stored in the study's storage (a user attr per decision on the first model's Optuna
study): running again trains nothing when everything is decided, and a larger budget continues from the last
look, spending only the α that is left.
"""

from __future__ import annotations

import math
import re
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field

import optuna
import pandas as pd

from robustbench_vit.analysis.comparison import DECIDED, comparisons
from robustbench_vit.analysis.decisions import ATTR, Decided, DecisionStatus, Record, decisions_of
from robustbench_vit.analysis.frame import load_results
from robustbench_vit.analysis.metrics import pairs
from robustbench_vit.analysis.sequential import Look, next_look
from robustbench_vit.errors import UserError
from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.study.estimate import GPU_TFLOPS, cost, cpu_time, duration
from robustbench_vit.study.launch import run_study
from robustbench_vit.study.options import RunOptions
from robustbench_vit.study.plan import extended, slots, step, trial_count
from robustbench_vit.study.queue import open_studies
from robustbench_vit.study.spec import StudySpec

BUDGET_FACTOR = 4  # default budget: this many times the study's fixed design
NOTHING_SPENT = "this look spends no α (under 8 settings per model, or none left)"
LOOK_EVERY = 8  # default settings per model between looks (rounded up to the design's step; grids: one replicate)


@dataclass(frozen=True)
class Budget:
    """The most a run may use: trials over the run's models (stored ones count), or GPU-hours by FLOPs."""

    trials: int | None = None
    gpu_hours: float | None = None

    @classmethod
    def parse(cls, text: str | None) -> Budget:
        """'200' (trials), '200 trials', '3.5gpuh' / '3.5 gpu-hours' / '3.5h' (GPU-hours); None: the default."""
        if text is None:
            return cls()
        t = text.strip().lower().replace(" ", "")
        if m := re.fullmatch(r"(\d+)(trials?)?", t):
            if int(m[1]) > 0:
                return cls(trials=int(m[1]))
        elif m := re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)(h|gpuh|gpu-?hours?)", t):
            if float(m[1]) > 0:
                return cls(gpu_hours=float(m[1]))
        raise UserError(f"--budget {text!r}: expected trials (e.g. 200) or GPU-hours (e.g. 3.5gpuh), above 0")

    def settings(self, spec: StudySpec, models: list[ModelSpec]) -> int:
        """The budget in settings per model, whole design steps (the default: the study's `budget`, else
        BUDGET_FACTOR × the fixed design)."""
        g = step(spec)
        if self.trials is not None:
            n = self.trials // len(models)
        elif self.gpu_hours is not None:
            per_step = cost([extended(spec, g)], models).gpu_hours  # one step of settings, every model
            n = int(self.gpu_hours / per_step) * g if per_step > 0 else 0
        else:
            n = spec.budget or BUDGET_FACTOR * trial_count(spec)
        return n // g * g

    def text(self, settings: int, models: int) -> str:
        """The budget as given, in words."""
        if self.gpu_hours is not None:
            return f"{self.gpu_hours:g} GPU-hours ({settings} settings per model)"
        return f"{settings * models} trials ({settings} settings per model)"


@dataclass(frozen=True)
class Until:
    """`--until-decided` and its budget and look schedule."""

    budget: Budget = Budget()
    look_every: int | None = None  # settings per model between looks (None: LOOK_EVERY, or a grid's replicate)

    def every(self, spec: StudySpec) -> int:
        """Settings per model between looks, rounded up to whole design steps."""
        g = step(spec)
        k = self.look_every or (g if spec.design.kind == "grid" else LOOK_EVERY)
        if k < 1:
            raise UserError(f"--look-every {k}: expected a number of settings per model, at least 1")
        return math.ceil(k / g) * g


@dataclass(frozen=True)
class Outcome:
    """One decision at one look: its key, what it says, whether it is taken, and the numbers behind it."""

    key: str  # e.g. "vit_c_micro vs vit_p_micro", or "claim adamw_lr_wd (micro)"
    status: DecisionStatus  # e.g. "more robust", "equivalent", "inconclusive", "reproduced"
    decided: bool
    detail: str = ""  # the statistic with its interval and p at the look's level
    trials: int = 0  # trials the decision rests on


Decider = Callable[[pd.DataFrame, Callable[[str], "Look | None"]], list[Outcome]]
"""(the look's results, the level of each still-pending decision (None: taken earlier, skip it)) → outcomes"""


@dataclass
class Sequential:
    """What a `--until-decided` run did: its looks, why it stopped, and every decision's state."""

    study: str
    budget: int  # settings per model
    every: int
    reason: str = ""  # "decided", "budget spent", "failed trials"
    looks: list[tuple[int, int, list[Outcome]]] = field(default_factory=list)  # (n, trials, outcomes) per look
    records: dict[str, Record] = field(default_factory=dict)  # every decision stored with the study
    keys: set[str] = field(default_factory=set)  # the decisions this run asks for (its decider looked at)
    ran: int = 0  # trials trained by this run
    trials: int = 0  # trials the run's last look rests on (stored ones included)

    @property
    def decided(self) -> dict[str, Decided]:
        """Each taken decision of this run, by key."""
        return {k: r.decided for k, r in self.records.items() if r.decided and k in self.keys}

    def pending(self) -> list[str]:
        """The decisions of this run not taken (others stored with the study, e.g. by another command, wait)."""
        return sorted(k for k in self.keys if not (k in self.records and self.records[k].decided))


def _state(study: optuna.Study) -> dict[str, Record]:
    """The stored decisions of a study (user attrs ATTR + key)."""
    return decisions_of(study.user_attrs)


def _first_slots(spec: StudySpec, n: int) -> set[tuple[int, int]]:
    """The (point, seed) of the first n settings."""
    return slots(extended(spec, n))


def look_frame(df: pd.DataFrame, spec: StudySpec, n: int, models: list[str]) -> pd.DataFrame:
    """The rows of `models` at the first n settings (the look's data; later settings stored by a bigger run wait)."""
    keep = _first_slots(spec, n)
    inside = [(int(p), int(s)) in keep for p, s in zip(df["point"], df["seed"])]
    out = df[pd.Series(inside, index=df.index) & df["model"].isin(models)].copy()
    out.attrs = dict(df.attrs)
    return out


def _wrap(text: str, indent: str = "  ") -> str:
    """One printed line of a look, wrapped at 80 columns."""
    return textwrap.fill(text, 80, initial_indent=indent, subsequent_indent=indent + "  ")


def run_until_decided(spec: StudySpec, run: RunOptions, until: Until, decide: Decider, *,
                      models: list[ModelSpec] | None = None, out=None) -> Sequential:
    """Run `spec` (for `models`) look by look until `decide` takes every decision or the budget is spent.

    Prints each look (its size, the level it spends, what each pending decision says) and why it stopped.
    """
    models, out = models or spec.models, out or sys.stderr
    names = [m.name for m in models]
    budget, every = until.budget.settings(spec, models), until.every(spec)
    if budget < every:
        raise UserError(f"--budget {until.budget.text(budget, len(models))}: below one look of {every} settings "
                        f"per model ({every * len(models)} trials); give at least that")
    url = run.results.url(spec.name)
    home = open_studies(spec, url, models)[names[0]]  # where the decisions' looks are stored
    seq = Sequential(spec.name, budget, every, records=_state(home))
    if _all_decided(seq, decide, load_results(spec.name, run.results), names):
        n = budget + 1  # everything was decided by an earlier run: look at nothing, train nothing
        seq.reason = "decided"
    else:  # continue after this run's last look (a decision that has none, e.g. a new stem's, starts it over)
        done = [seq.records[k].looks[-1].n for k in seq.pending() if k in seq.records and seq.records[k].looks]
        n = (max(done) // every + 1) * every if done else every
    print(f"{spec.name}: until decided, a look every {every} settings per model, budget "
          f"{until.budget.text(budget, len(models))}", file=out)
    while n <= budget:
        summary = run_study(spec, run, models=models, settings=n, progress=True)
        seq.ran += summary.ran
        df = look_frame(load_results(spec.name, run.results), spec, n, names)
        failed = int((df["status"] == "failed").sum())
        if failed:
            seq.reason = "failed trials"
            print(f"stopped at {n} settings per model: {failed} trial(s) failed without a result; run the same "
                  f"command again to re-run them", file=out)
            break
        _analyse(seq, df, n, decide=decide, home=home, ran=summary.ran, out=out)
        if not seq.pending():
            seq.reason = "decided"
            break
        if n >= budget:
            seq.reason = "budget spent"
            break
        n = min(n + every, budget)
    if not seq.reason:
        seq.reason = "budget spent"
    print(stop_line(seq, len(models)), file=out)
    return seq


def _all_decided(seq: Sequential, decide: Decider, df: pd.DataFrame, names: list[str]) -> bool:
    """Whether every decision the run asks for was taken by an earlier run: each model has stored results (a new
    stem's decisions appear only then) and every decision the decider would look at is stored as taken. The
    decisions it would look at become the run's (`seq.keys`)."""
    if "model" not in df or not len(df):
        return False
    decide(df[df["model"].isin(names)], lambda key: seq.keys.add(key))  # records the keys; decides nothing
    have = set(df["model"]) >= set(names)
    return have and bool(seq.keys) and not seq.pending()


def _analyse(seq: Sequential, df: pd.DataFrame, n: int, *, decide: Decider, home: optuna.Study, ran: int,
             out) -> None:
    """One look: each pending decision at the level this look spends for it, stored and printed."""
    levels: dict[str, Look] = {}

    def level(key: str) -> Look | None:
        rec = seq.records.setdefault(key, Record())
        if rec.decided:
            return None
        levels[key] = levels.get(key) or next_look(rec.looks, n, seq.budget)
        return levels[key]

    outcomes = decide(df, level)
    seq.keys |= set(levels)
    seq.trials = len(df)
    for o in outcomes:
        rec = seq.records[o.key]
        rec.looks.append(levels[o.key])
        if o.decided:
            rec.decided = Decided(o.status, len(rec.looks), n, o.trials, o.detail)
        home.set_user_attr(ATTR + o.key, rec.to_json())
    seq.looks.append((n, len(df), outcomes))
    lv = next(iter(levels.values()), None)
    spent = f"; level {lv.level:.2g} (α spent {lv.spent:.3g} of 0.05)" if lv else ""
    number = max((len(seq.records[o.key].looks) for o in outcomes), default=len(seq.looks))
    print(f"look {number}: {n} settings per model, {len(df)} trials ({ran} ran now){spent}", file=out)
    for o in outcomes:
        print(_wrap(f"{o.key}: {o.status}" + (f" — {o.detail}" if o.detail else "")), file=out)


def stop_line(seq: Sequential, models: int) -> str:
    """Why the run stopped, and what it used."""
    stored = max((d.trials for d in seq.decided.values()), default=0)
    used = f"{seq.trials} trials used" if seq.trials else f"{stored} stored trials used" if stored else "no trials"
    if seq.reason == "decided":
        where = sorted({d.look for d in seq.decided.values()})
        looks = f"look {where[-1]}" if where else "an earlier run"
        return textwrap.fill(f"{seq.study}: stopped — every decision taken (the last at {looks}); {used}, "
                             f"{seq.ran} ran now", 80)
    if seq.reason == "budget spent":
        left = ", ".join(seq.pending()) or "none"
        return textwrap.fill(f"{seq.study}: stopped — budget spent ({seq.budget * models} trials, {seq.budget} "
                             f"settings per model); {used}; undecided: {left}; a larger --budget continues", 80)
    return f"{seq.study}: stopped — {seq.reason}; {used}"


def comparison_decider(wanted: Callable[[str, str], bool] = lambda model, baseline: True) -> Decider:
    """Decisions on the robustness comparisons (every model against its baselines, `wanted` ones only): taken
    when more robust, less robust or equivalent within the margin (or different with crossing Δ-EDFs)."""
    def decide(df: pd.DataFrame, level: Callable[[str], Look | None]) -> list[Outcome]:
        sizes = df.dropna(subset=["size"]).groupby("model")["size"].first().to_dict() if "size" in df else {}
        out = []
        for model, baseline in pairs(df["model"], sizes):
            key = f"{model} vs {baseline}"
            if not wanted(model, baseline) or (look := level(key)) is None:
                continue
            if look.level <= 0:  # nothing left to spend: this look decides nothing
                out.append(Outcome(key, "inconclusive", False, NOTHING_SPENT))
                continue
            two = df[df["model"].isin([model, baseline])]
            two.attrs = dict(df.attrs)
            c = next(iter(comparisons(two, alpha=look.level)))
            d = c.decision
            detail = (f"{'normalised' if c.confounded else 'area'} {d.difference.text('+.3f')}, p {d.p:.2g}"
                      if d is not None else "")
            if not c.learned:  # a model that did not train has no robustness to decide (DESIGN.md §1.1)
                out.append(Outcome(key, "inconclusive", False, "a model has no trial that trained yet"))
                continue
            out.append(Outcome(key, c.outcome, c.outcome in DECIDED or c.outcome == "differ, EDFs cross", detail,
                               c.n_model + c.n_baseline))
        return out

    return decide


def until_flags(until: Until | None) -> str:
    """The --until-decided flags to repeat in a follow-up command ("" without them)."""
    if until is None:
        return ""
    b = until.budget
    budget = f" --budget {b.trials}" if b.trials else f" --budget {b.gpu_hours:g}gpuh" if b.gpu_hours else ""
    return f" --until-decided{budget}" + (f" --look-every {until.look_every}" if until.look_every else "")


def until_lines(specs: list[StudySpec], models: list[ModelSpec] | None, until: Until, *, workers: int,
                on_gpu: bool) -> list[str]:
    """What --dry-run prints for --until-decided: per study the look schedule and the budget, and its cost."""
    lines = []
    for spec in specs:
        ms = models or spec.models
        budget, every = until.budget.settings(spec, ms), until.every(spec)
        grown = extended(spec, budget)
        c = cost([grown], ms)
        where = (f"about {c.gpu_hours:,.2f} GPU-hours at {GPU_TFLOPS:.0f} TFLOP/s" if on_gpu else
                 f"about {duration(cpu_time([grown], ms, workers=workers).seconds)} on this CPU")
        lines.append(textwrap.fill(f"{spec.name} --until-decided: a look every {every} settings per model, at most "
                                   f"{budget} settings per model = {c.trials} trials ({where} if the budget is "
                                   f"spent); it stops at the first look that decides every comparison", 80))
    return lines

