"""The noise floor: how much copies of one model differ on a study's own settings (DESIGN.md §1.2, "A/A before A/B").

Copies are models named `<model>_aa<k>` (made by `robustbench-vit calibrate`): the same architecture, each trial
from its own init seed, the same points and data order. Where a design has several replicates (seeds) per point,
the replicates of one model are copies too, at fewer settings each, and cost nothing extra. Every pair of copies
is compared exactly as a model with its baseline (`comparison.compare`): the share of pairs the decision separates
("more" or "less robust") is the A/A rate, and the largest |difference| of each headline statistic over the pairs
is its measured noise floor. Without copies, the permutation null gives the floor expected between exchangeable
copies (its 95% quantile of |Δ-area difference|).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

import pandas as pd

from robustbench_vit.analysis import inference as I
from robustbench_vit.analysis.comparison import Comparison, compare
from robustbench_vit.analysis.metrics import results

COPY = re.compile(r"^(?P<of>.+)_aa(?P<k>\d+)$")  # names ending in _aa<k> are reserved for A/A copies
STATISTICS = {"area": ("Δ-EDF area", "+.3f", 1.0), "within_2": ("share within 2 points of best", "+.0f", 100.0),
              "best": ("best error", "+.2f", 1.0), "did_not_train": ("did-not-train rate", "+.0f", 100.0)}


def copy_name(model: str, k: int) -> str:
    """The name of the k-th A/A copy of `model`."""
    return f"{model}_aa{k}"


def copy_of(name: str) -> str | None:
    """The model a copy's name copies, or None for a model that is not a copy."""
    m = COPY.match(name)
    return m["of"] if m else None


def split_copies(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the study's own trials, the A/A copies' trials): copies of a model in the study never enter its comparisons."""
    models = set(df["model"]) if len(df) else set()
    is_copy = df["model"].map(lambda m: copy_of(m) in models) if len(df) else pd.Series(dtype=bool)
    main, copies = df[~is_copy], df[is_copy]
    main.attrs, copies.attrs = dict(df.attrs), dict(df.attrs)
    return main, copies


@dataclass(frozen=True)
class NoiseFloor:
    """How far apart copies of `model` come out on this study's settings."""

    model: str
    source: str  # "copies" (calibrate), "replicates" (a design's seeds) or "permutation null" (expected)
    copies: int  # models (or replicates) compared, the original included
    settings: int  # settings per compared pair
    pairs: tuple[Comparison, ...] = ()
    floors: dict[str, float] = field(default_factory=dict)  # statistic → largest |difference| over the pairs

    @property
    def separated(self) -> int:
        """Pairs of copies the three-way decision called more or less robust."""
        return sum(c.outcome in ("more robust", "less robust") for c in self.pairs)

    @property
    def rate(self) -> tuple[float, float, float]:
        """The A/A rate (separated / pairs) with its Wilson 95% interval (NaN without pairs)."""
        n = len(self.pairs)
        lo, hi = I.wilson(self.separated, n)
        return (self.separated / n if n else float("nan"), lo, hi)

    def text(self, statistic: str = "area") -> str:
        """'copies of vit_c_micro differ by up to ±0.13 in Δ-EDF area at 32 settings (3 copies, measured)'."""
        what, spec, scale = STATISTICS[statistic]
        v = self.floors.get(statistic)
        if v is None:
            return ""
        value = f"±{abs(v) * scale:{spec.lstrip('+')}}"
        how = {"copies": f"{self.copies} independent copies, {len(self.pairs)} pairs, measured",
               "replicates": f"{self.copies} replicates of its design, measured",
               "permutation null": "expected from the permutation null; `robustbench-vit calibrate` measures it"}
        return (f"copies of {self.model} differ by up to {value} in {what} at {self.settings} settings "
                f"({how[self.source]})")


def _pairs(frames: dict[str, pd.DataFrame]) -> tuple[Comparison, ...]:
    """Every pair of copies compared as model and baseline, on their common settings."""
    return tuple(compare(a, b, frames[a], frames[b], margins=None, seed=i)
                 for i, (a, b) in enumerate(itertools.combinations(sorted(frames), 2)))


def _floor(model: str, source: str, frames: dict[str, pd.DataFrame]) -> NoiseFloor | None:
    """The measured floor of a set of copies (None with fewer than 2 copies holding results)."""
    frames = {k: v for k, v in frames.items() if len(v) >= 2}
    if len(frames) < 2:
        return None
    pairs = _pairs(frames)
    tested = [c for c in pairs if c.robustness is not None]
    if not tested:
        return None
    floors = {"area": max(abs(c.robustness.difference.value) for c in tested),
              **{k: max(abs(c.differences[k].value) for c in tested) for k in ("within_2", "best", "did_not_train")}}
    return NoiseFloor(model, source, len(frames), min(c.n_tested for c in tested), pairs, floors)


def noise_floors(df: pd.DataFrame) -> dict[str, NoiseFloor]:
    """The measured noise floor per model: from its A/A copies in the storage, else from its design's replicates."""
    res = results(df)
    out: dict[str, NoiseFloor] = {}
    for model in sorted(set(res["model"]) if len(res) else ()):
        if copy_of(model) in set(res["model"]):
            continue
        copies = {m: g for m, g in res.groupby("model") if m == model or copy_of(m) == model}
        floor = _floor(model, "copies", copies) if len(copies) > 1 else None
        g = res[res["model"] == model]
        if floor is None and "seed" in g and g["seed"].nunique() > 1:  # replicates: compared at the same points
            reps = {f"{model} replicate {r}": x.assign(seed=0) for r, x in g.groupby("seed")}
            floor = _floor(model, "replicates", reps)
        if floor is not None:
            out[model] = floor
    return out


def expected_floor(c: Comparison) -> NoiseFloor | None:
    """The floor expected between exchangeable copies at this comparison's settings (its permutation null)."""
    if c.robustness is None or not c.robustness.test.floor:
        return None
    return NoiseFloor(c.baseline, "permutation null", 2, c.n_tested, floors={"area": c.robustness.test.floor[0]})


def floor_for(c: Comparison, floors: dict[str, NoiseFloor] | None) -> NoiseFloor | None:
    """The floor a comparison is read against: the measured one of its baseline (or model), else the expected."""
    return (floors or {}).get(c.baseline) or (floors or {}).get(c.model) or expected_floor(c)
