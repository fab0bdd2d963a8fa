"""Seeds on real runs (DESIGN.md §1.2): each setting its own seed, each model its own init stream.

A stem that wraps a baseline and draws a few random numbers before building shares a shifted random stream with
it when both start from one seed: their initial weights are then nearly the same numbers, and the paired test's
two results at a setting are not exchangeable. With an init seed per (setting, model) they are independent draws.
"""

from __future__ import annotations

import numpy as np

from robustbench_vit.data import load_dataset
from robustbench_vit.models import model_complexity
from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.models.vit import build_model
from robustbench_vit.study.plan import init_seed, plan, trial_config
from robustbench_vit.study.spec import parse_spec
from robustbench_vit.train.checkpoint import seed_all

DRAWING_STEM = '''
import torch
from robustbench_vit.models.stems import ConvStem


class DrawingConv(ConvStem):
    """The micro conv stem again, built after a few random draws (as a stem wrapping a baseline may make)."""

    def __init__(self, in_chans, embed_dim, patch_size):
        torch.rand(7)
        super().__init__(in_chans, embed_dim, patch_size, widths=(16, 32), strides=(2, 2))
'''


def _initial_values(spec: ModelSpec, seed: int, depth: int) -> np.ndarray:
    """Every initial parameter value of the model built from `seed` (zeros and ones left out: they are no draws)."""
    seed_all(seed)
    v = np.concatenate([p.detach().flatten().numpy() for p in build_model(spec, 10, depth=depth).parameters()])
    return v[(v != 0) & (v != 1)]


def _shared(a: np.ndarray, b: np.ndarray) -> float:
    """The share of a's values that occur exactly among b's (independent draws share almost none)."""
    return float(np.isin(a, b).mean())


def test_a_copy_that_draws_first_is_exchangeable_with_its_baseline(tmp_path):
    """Old rule (one seed for both): 99% of the copy's initial values are the baseline's own; new rule: no more
    than two inits of one model share by chance."""
    (tmp_path / "drawing.py").write_text(DRAWING_STEM)
    base = ModelSpec.from_name("vit_c_micro")
    copy = ModelSpec(name="my_conv", size="micro", stem=f"{tmp_path / 'drawing.py'}:DrawingConv")
    depth = model_complexity(base).depth
    assert model_complexity(copy).depth == depth
    s = 12345
    old = _shared(_initial_values(copy, s, depth), _initial_values(base, s, depth))
    new = _shared(_initial_values(copy, init_seed(s, copy.name), depth),
                  _initial_values(base, init_seed(s, base.name), depth))
    chance = _shared(_initial_values(base, s + 1, depth), _initial_values(base, s, depth))
    assert old > 0.9
    assert new < 0.05 and new < 3 * chance + 0.01


def test_models_of_a_setting_share_data_order_not_initial_weights():
    """Two models at one setting: the same batches in the same order (common random numbers), other weights."""
    spec = parse_spec({"models": ["vit_p_micro", "vit_c_micro"], "space": {"lr": {"values": [1e-3]}},
                       "design": {"kind": "grid", "seeds": 2}, "train": {"batch_size": 32}}, "t.yaml")
    p = plan(spec)[0]
    a, b = (trial_config(spec, m, p.params, point=0, replicate=1) for m in spec.models)
    assert a.seed == b.seed and a.init_seed != b.init_seed
    data = load_dataset("digits")
    loaders = [data.train_loader(c.batch_size, c.seed, c.augment) for c in (a, b)]
    for loader in loaders:
        loader.set_epoch(2)
    (xa, ya), (xb, yb) = (next(iter(loader)) for loader in loaders)
    assert (ya == yb).all() and (xa == xb).all()
    other = trial_config(spec, spec.models[0], p.params, point=0, replicate=0)
    assert other.seed != a.seed  # another replicate: another draw at the same point
