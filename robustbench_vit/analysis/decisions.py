"""Sequential decisions as stored with a study: each decision's looks (the levels they spent) and, once taken, at
which look — written by `commands.until` (a `--until-decided` run), read back by it and by reports."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Union

from robustbench_vit.analysis.claims import ClaimStatus
from robustbench_vit.analysis.comparison import RobustnessOutcome
from robustbench_vit.analysis.sequential import Look
from robustbench_vit.store import Results, study_attrs

ATTR = "sequential "  # Optuna user-attr prefix of a decision's stored looks (the key follows)

DecisionStatus = Union[RobustnessOutcome, ClaimStatus]  # a comparison's outcome, or a claim's status


@dataclass(frozen=True)
class Decided:
    """A taken decision: what it says, at which look (1-based), the settings per model and the trials it rests on,
    and the statistic behind it (with its interval and p at the look's level)."""

    status: DecisionStatus
    look: int
    n: int
    trials: int
    detail: str = ""

    def to_dict(self) -> dict:
        """The stored JSON object: {"status", "look", "n", "trials", "detail"}, in the order stored since the first
        --until-decided run."""
        return {"status": self.status, "look": self.look, "n": self.n, "trials": self.trials, "detail": self.detail}

    @classmethod
    def from_dict(cls, raw: Mapping) -> Decided:
        """A taken decision from `to_dict`'s output."""
        return cls(raw["status"], int(raw["look"]), int(raw["n"]), int(raw["trials"]), raw.get("detail", ""))


@dataclass
class Record:
    """A decision's stored state: its looks (levels spent) and, once taken, at which look."""

    looks: list[Look] = field(default_factory=list)
    decided: Decided | None = None

    def to_json(self) -> str:
        """The record as stored in the study's user attrs."""
        decided = self.decided.to_dict() if self.decided else None
        return json.dumps({"looks": [lk.to_dict() for lk in self.looks], "decided": decided})

    @classmethod
    def from_json(cls, text: str) -> Record:
        """A record from `to_json`'s output."""
        raw = json.loads(text)
        decided = raw.get("decided")
        return cls([Look.from_dict(x) for x in raw["looks"]], Decided.from_dict(decided) if decided else None)


def decisions_of(attrs: Mapping[str, str]) -> dict[str, Record]:
    """The decisions stored in an Optuna study's user attrs (ATTR + key)."""
    return {k[len(ATTR):]: Record.from_json(v) for k, v in attrs.items() if k.startswith(ATTR)}


def stored_records(study: str, results: Results) -> dict[str, Record]:
    """Every sequential decision stored for a study (on any of its model studies; {} when it never ran
    --until-decided or is not stored)."""
    try:
        out: dict[str, Record] = {}
        for attrs in study_attrs(study, results):
            out |= decisions_of(attrs)
        return out
    except Exception:  # noqa: BLE001 — a report of a study without stored looks has nothing to add
        return {}


def record_lines(records: dict[str, Record]) -> list[str]:
    """One sentence per stored sequential decision: what it decided at which look, or where it was left."""
    out = []
    for key, rec in sorted(records.items()):
        if not rec.looks:
            continue
        if rec.decided:
            d, lk = rec.decided, rec.looks[rec.decided.look - 1]
            out.append(f"Sequential (--until-decided): {key}: {d.status} at look {d.look} of {len(rec.looks)}, "
                       f"{d.n} settings per model ({d.trials} trials), level α_k = {lk.level:.2g}"
                       + (f" — {d.detail}" if d.detail else "") + ". Tables below analyse every stored "
                       "trial at the fixed 5%; this decision is the one whose error rate holds under its looks.")
        else:
            lk = rec.looks[-1]
            out.append(f"Sequential (--until-decided): {key}: undecided after {len(rec.looks)} look(s), the last at "
                       f"{lk.n} settings per model; α spent {lk.spent:.3g} of 0.05 (a larger --budget continues).")
    return out
