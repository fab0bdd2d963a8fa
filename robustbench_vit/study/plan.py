"""Paired designs: the hyperparameter points every model gets, drawn with Optuna's samplers and the study seed."""

from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from pydantic import ValidationError

from robustbench_vit.errors import UserError
from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.store import quiet_optuna
from robustbench_vit.study.spec import Dim, StudySpec
from robustbench_vit.train.config import TrialConfig


@dataclass(frozen=True)
class Point:
    """One design point: its index (shared by all models), parameter values and their Optuna distributions."""

    index: int
    params: dict[str, Any]  # empty for tpe slots: the sampler fills them when the trial starts
    distributions: dict[str, BaseDistribution] = field(default_factory=dict)


def distribution(dim: Dim, stratum: str | None = None) -> BaseDistribution:
    """The Optuna distribution of a dim (its range for `stratum` where it has one)."""
    if dim.choices is not None:
        return CategoricalDistribution(dim.choices)
    if dim.values is not None:
        low, high = min(dim.values), max(dim.values)
        integer = all(isinstance(v, int) for v in dim.values)
    else:
        low, high = dim.ranges.get(stratum, (dim.low, dim.high)) if stratum is not None else (dim.low, dim.high)
        integer = dim.integer
    if integer:
        return IntDistribution(int(math.ceil(low)), int(high), log=dim.log)
    return FloatDistribution(float(low), float(high), log=dim.log)


def grid_values(dim: Dim, dist: BaseDistribution) -> list[Any]:
    """The grid values of a dim: its choices, its values, or `num` (log-)evenly spaced values, 3 significant digits."""
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    if dim.values is not None:
        return list(dim.values)
    space = np.geomspace if dist.log else np.linspace
    raw = space(dist.low, dist.high, dim.num) if dim.num > 1 else [dist.low]
    if isinstance(dist, IntDistribution):
        return sorted({int(round(v)) for v in raw})
    return [min(max(float(f"{v:.3g}"), dist.low), dist.high) for v in raw]


def suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Any:
    """Ask `trial` for `name` from `dist` (returns the fixed value for enqueued trials)."""
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log, step=dist.step)
    return trial.suggest_categorical(name, dist.choices)


def sample_points(space: dict[str, BaseDistribution], kind: str, n: int, *, seed: int,
                  grid: dict[str, list[Any]] | None = None) -> list[dict[str, Any]]:
    """Draw `n` points (all of `grid` for grids) in a throw-away in-memory Optuna study seeded with `seed`."""
    with quiet_optuna():
        if kind == "grid":
            sampler: optuna.samplers.BaseSampler = optuna.samplers.GridSampler(grid, seed=seed)
            n = math.prod(len(v) for v in grid.values())
        elif kind == "random":
            sampler = optuna.samplers.RandomSampler(seed=seed)
        elif kind == "quasirandom":
            sampler = optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed,
                                                 warn_independent_sampling=False)
        else:
            raise ValueError(f"no paired sampler for design kind {kind!r}")
        study = optuna.create_study(sampler=sampler)
        if kind == "quasirandom":  # fixes QMC's search space up front, so that point 0 is a Sobol point too
            corner = {k: _low(d) for k, d in space.items()}
            study.add_trial(optuna.trial.create_trial(params=corner, distributions=space, value=0.0))
        out: list[dict[str, Any]] = []
        study.optimize(lambda trial: out.append({k: suggest(trial, k, d) for k, d in space.items()}) or 0.0,
                       n_trials=n)
    return out


def _low(d: BaseDistribution) -> Any:
    """The lowest value of a distribution (its first choice for categoricals)."""
    return d.choices[0] if isinstance(d, CategoricalDistribution) else d.low


def _high(d: BaseDistribution) -> Any:
    """The highest value of a distribution (its last choice for categoricals)."""
    return d.choices[-1] if isinstance(d, CategoricalDistribution) else d.high


def plan(spec: StudySpec) -> list[Point]:
    """The design points every model gets (stratified designs interleave their strata); checks each config."""
    d = spec.design
    if d.kind == "tpe":
        space = {k: distribution(dim) for k, dim in spec.space.items()}
        points = [Point(i, {}, space) for i in range(d.points)]
        for corner in ({k: _low(v) for k, v in space.items()}, {k: _high(v) for k, v in space.items()}):
            _check(spec, -1, corner)
        return points
    strata = list(spec.space[d.stratify].choices) if d.stratify else [None]
    blocks = []
    for stratum in strata:
        dims = {k: dim for k, dim in spec.space.items() if k != d.stratify}
        space = {k: distribution(dim, None if stratum is None else str(stratum)) for k, dim in dims.items()}
        grid = {k: grid_values(dims[k], dist) for k, dist in space.items()} if d.kind == "grid" else None
        drawn = sample_points(space, d.kind, d.points or 0, seed=d.seed, grid=grid)
        if stratum is not None:
            space = {d.stratify: distribution(spec.space[d.stratify]), **space}
            drawn = [{d.stratify: stratum, **p} for p in drawn]
        blocks.append([(p, space) for p in drawn])
    interleaved = [x for row in itertools.zip_longest(*blocks) for x in row if x is not None]
    points = [Point(i, params, space) for i, (params, space) in enumerate(interleaved)]
    for p in points:
        _check(spec, p.index, p.params)
    return points


def trial_count(spec: StudySpec) -> int:
    """Planned trials per model."""
    return len(plan(spec)) * len(spec.design.seed_list)


def step(spec: StudySpec) -> int:
    """The fewest settings per model a design grows by (`extended`): one whole grid (a replicate) for grids; for
    random and quasirandom designs one point per stratum, times the replicates."""
    if spec.design.kind == "grid":
        return len(plan(spec))
    strata = len(spec.space[spec.design.stratify].choices) if spec.design.stratify else 1
    return strata * len(spec.design.seed_list)


def extended(spec: StudySpec, settings: int) -> StudySpec:
    """The spec with its design grown to the first `settings` settings per model (rounded up to a `step`): a grid
    gets more replicates, a random or quasirandom design more points per stratum. Both sequences extend: the
    settings of the smaller design are the first of the larger one (same points, replicates and seeds), so the
    trials stored for them count. Only the plan grows: the stored spec (and its fingerprint) stays the study's."""
    d = spec.design
    if d.kind == "tpe":
        raise UserError(f"{spec.source}: an adaptive (tpe) design has no fixed sequence of settings to extend; "
                        f"--until-decided needs design kind grid, random or quasirandom")
    k = max(1, math.ceil(settings / step(spec)))
    if d.kind == "grid":
        seeds = d.seed_list
        more = list(range(max(seeds) + 1, max(seeds) + 1 + k - len(seeds))) if k > len(seeds) else []
        grown = d.model_copy(update={"seeds": seeds[:k] + more})
    else:
        grown = d.model_copy(update={"points": k})
    return spec.model_copy(update={"design": grown})


def slots(spec: StudySpec) -> set[tuple[int, int]]:
    """The (point, seed) of every planned setting."""
    return {(p.index, s) for p in plan(spec) for s in spec.design.seed_list}


def _check(spec: StudySpec, index: int, params: dict[str, Any]) -> None:
    """Raise a one-line UserError if `params` does not make a valid TrialConfig."""
    try:
        trial_config(spec, spec.models[0], params, point=max(index, 0), replicate=spec.design.seed_list[0])
    except ValidationError as e:
        err = e.errors()[0]
        field_ = ".".join(str(x) for x in err["loc"])
        what = f"point {index} {params}" if index >= 0 else f"the search space edge {params}"
        raise UserError(f"{spec.source}: {what} gives an invalid training setting {field_!r}: {err['msg']}") from None


def _mix(*parts: Any) -> int:
    """A 31-bit seed hashed from `parts` (stable across processes and machines, unlike hash())."""
    digest = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 2**31


def setting_seed(design_seed: int, point: int, replicate: int) -> int:
    """The seed of one setting (design point × replicate): its data order and augmentation, shared by its models."""
    return _mix("setting", design_seed, point, replicate)


def init_seed(setting: int, model: str) -> int:
    """A model's init seed at one setting: independent across models and settings (no overlapping RNG streams)."""
    return _mix("init", setting, model)


def trial_config(spec: StudySpec, model: ModelSpec, params: dict[str, Any], *, point: int, replicate: int,
                 **overrides: Any) -> TrialConfig:
    """The TrialConfig of one (model, point, replicate): the study's data and fixed settings, the point's values,
    the setting's seed and the model's own init seed (DESIGN.md §1.2)."""
    seed = setting_seed(spec.design.seed, point, replicate)
    settings = {**spec.train, **params, **overrides}
    factors = spec.factors(model.name, str(settings.get("optimizer", TrialConfig.model_fields["optimizer"].default)))
    settings |= {k: settings[k] * f for k, f in factors.items() if k in params}  # the point mapped into its range
    return TrialConfig(model=model, dataset=spec.dataset, data_root=spec.data_root, **settings, seed=seed,
                       init_seed=init_seed(seed, model.name))
