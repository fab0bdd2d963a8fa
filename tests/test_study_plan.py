"""Paired designs: grid / random / quasirandom / stratified points from Optuna's samplers, reproducible from the seed."""

from __future__ import annotations

import math

import pytest
import torch

from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.study.estimate import (MAX_TIMED_STEP_S, TRAIN_IMAGES, TRIAL_OVERHEAD_S, VAL_IMAGES, cpu_text,
                                            cpu_time)
from robustbench_vit.study.plan import init_seed, plan, setting_seed, trial_config, trial_count
from robustbench_vit.study.spec import parse_spec

MODELS = ["vit_p_micro", "vit_c_micro"]


def spec_of(space: dict, design: dict, **extra):
    """A StudySpec from plain dicts."""
    return parse_spec({"models": MODELS, "space": space, "design": design, **extra}, "test.yaml")


def test_grid_is_log_spaced_and_complete():
    """A log grid: `num` values, 3 significant digits, endpoints exact; grid products enumerate every pair once."""
    pts = plan(spec_of({"lr": {"low": 1e-4, "high": 1.0, "log": True, "num": 5}}, {"kind": "grid"}))
    assert sorted(p.params["lr"] for p in pts) == [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    assert [p.index for p in pts] == list(range(5))
    two = plan(spec_of({"lr": {"low": 1e-3, "high": 1e-1, "log": True, "num": 3},
                        "epochs": {"values": [2, 4]}}, {"kind": "grid"}))
    assert sorted((p.params["lr"], p.params["epochs"]) for p in two) == sorted(
        (lr, ep) for lr in (1e-3, 1e-2, 1e-1) for ep in (2, 4))
    assert {type(p.params["epochs"]) for p in two} == {int}


@pytest.mark.parametrize("kind", ["random", "quasirandom"])
def test_random_designs_are_seeded_in_range_and_spread(kind):
    """Same seed, same points; another seed, other points; all inside the log range; QMC point 0 is no corner."""
    space = {"lr": {"low": 1e-4, "high": 1e-1, "log": True}, "weight_decay": {"low": 1e-3, "high": 1.0, "log": True}}
    a = plan(spec_of(space, {"kind": kind, "points": 16, "seed": 3}))
    b = plan(spec_of(space, {"kind": kind, "points": 16, "seed": 3}))
    c = plan(spec_of(space, {"kind": kind, "points": 16, "seed": 4}))
    assert [p.params for p in a] == [p.params for p in b] != [p.params for p in c]
    lrs = [p.params["lr"] for p in a]
    assert all(1e-4 <= v <= 1e-1 for v in lrs) and len(set(lrs)) == 16
    assert a[0].params["lr"] != 1e-4 and a[0].params["weight_decay"] != 1e-3
    # log-uniform: about half the points below the geometric middle of the range
    assert 4 <= sum(math.log10(v) < -2.5 for v in lrs) <= 12
    if kind == "quasirandom":  # Sobol: each quarter of the log range holds exactly 4 of 16 points
        quarters = [int((math.log10(v) + 4) / 0.75) for v in lrs]
        assert sorted(quarters.count(q) for q in range(4)) == [4, 4, 4, 4]


def test_stratified_optimizers_get_their_own_ranges():
    """optimizer_stability's design: `points` per optimizer, each inside its own lr/wd range, interleaved."""
    spec = spec_of({"optimizer": {"choices": ["adamw", "sgd"]},
                    "lr": {"low": 1e-4, "high": 1e-2, "log": True, "ranges": {"sgd": [1e-2, 1.0]}},
                    "weight_decay": {"low": 1e-3, "high": 1.0, "log": True, "ranges": {"sgd": [1e-5, 1e-3]}}},
                   {"kind": "random", "points": 5, "stratify": "optimizer"})
    pts = plan(spec)
    assert [p.params["optimizer"] for p in pts] == ["adamw", "sgd"] * 5
    for p in pts:
        lo, hi = (1e-4, 1e-2) if p.params["optimizer"] == "adamw" else (1e-2, 1.0)
        assert lo <= p.params["lr"] <= hi and p.distributions["lr"].low == lo
    assert trial_count(spec) == 10


def test_seeds_multiply_points_and_configs_are_complete():
    """Seed replicates multiply the points; a trial config carries data, fixed settings, the point and the seed."""
    spec = spec_of({"lr": {"values": [0.001, 0.01]}}, {"kind": "grid", "seeds": [7, 8, 9]},
                   train={"epochs": 3, "weight_decay": 0.2})
    assert trial_count(spec) == 6
    cfg = trial_config(spec, spec.models[1], plan(spec)[0].params, point=0, replicate=8)
    assert (cfg.model.name, cfg.dataset, cfg.epochs, cfg.weight_decay) == ("vit_c_micro", "digits", 3, 0.2)
    assert cfg.seed == setting_seed(spec.design.seed, 0, 8) and cfg.init_seed == init_seed(cfg.seed, "vit_c_micro")
    assert cfg.lr in (0.001, 0.01)


def test_every_setting_has_its_own_seed_and_every_model_its_own_init():
    """Settings (point × replicate) get distinct seeds; the models of one setting share it (data order) but draw
    their initial weights from seeds of their own."""
    spec = spec_of({"lr": {"low": 1e-4, "high": 1e-1, "log": True}}, {"kind": "random", "points": 16, "seeds": 2})
    configs = {(m.name, p.index, r): trial_config(spec, m, p.params, point=p.index, replicate=r)
               for m in spec.models for p in plan(spec) for r in spec.design.seed_list}
    p_seeds = {k[1:]: c.seed for k, c in configs.items() if k[0] == "vit_p_micro"}
    c_seeds = {k[1:]: c.seed for k, c in configs.items() if k[0] == "vit_c_micro"}
    assert p_seeds == c_seeds and len(set(p_seeds.values())) == 32  # shared within a setting, distinct across
    inits = [c.init_seed for c in configs.values()]
    assert len(set(inits)) == 64 and not set(inits) & set(p_seeds.values())
    again = trial_config(spec, spec.models[0], plan(spec)[3].params, point=3, replicate=1)
    assert again == configs[("vit_p_micro", 3, 1)]  # a pure function of the design: stable across processes
    assert setting_seed(1, 3, 1) != setting_seed(0, 3, 1)  # the design seed roots them


def test_tpe_slots_are_empty_and_bounded():
    """tpe plans `points` slots whose params the sampler fills later; the space edges are checked up front."""
    pts = plan(spec_of({"lr": {"low": 1e-4, "high": 1e-1, "log": True}}, {"kind": "tpe", "points": 4}))
    assert [(p.index, p.params) for p in pts] == [(i, {}) for i in range(4)]
    assert pts[0].distributions["lr"].log


def test_the_cpu_estimate_rests_on_each_models_step_timed_here():
    """--dry-run's CPU time: each model's training step is timed on this CPU (a RegNetY's grouped convs cost more per
    FLOP than a ViT's matmuls, which a FLOP rate cannot see), and the estimate is that step times the plan's steps;
    a model too large to time on a CPU falls back to the FLOP rate, untimed."""
    spec = spec_of({"lr": {"values": [1e-3, 1e-2]}}, {"kind": "grid", "seeds": 1}, reference="regnety",
                   train={"epochs": 2, "threads": 1})
    threads = torch.get_num_threads()
    t = cpu_time([spec], workers=2)
    assert torch.get_num_threads() == threads  # the timing leaves the process's threads as they were
    assert set(t.steps) == {(m, 64) for m in ("vit_p_micro", "vit_c_micro", "regnety_micro")}
    assert all(0 < s < MAX_TIMED_STEP_S for s in t.steps.values())
    per_epoch = math.ceil(TRAIN_IMAGES["digits"] / 64) + math.ceil(VAL_IMAGES["digits"] / 64) / 3
    expected = sum(2 * 2 * per_epoch * s + 2 * TRIAL_OVERHEAD_S for s in t.steps.values()) / 2
    assert t.seconds == pytest.approx(expected)
    text = cpu_text(t, 2)
    assert text.startswith("about ") and "on this CPU with 2 worker(s) (one training step at batch 64, timed here " \
        "just now: vit_p_micro " in text and "regnety_micro " in text
    big = cpu_time([spec], [ModelSpec.from_name("vit_p_1gf")], workers=1)  # 1GF at batch 64: ~17 s a step by FLOPs
    assert big.steps == {} and big.seconds > 2 * 2 * per_epoch * MAX_TIMED_STEP_S
