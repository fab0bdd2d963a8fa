"""The stem zoo: every published stem builds at micro and tiny, gives the token grid, is FLOP-matched by the depth
rule, trains a real step on digits, and is listed with its citation by `stems`."""

import json

import pytest
import torch

from robustbench_vit.cli import main
from robustbench_vit.data import load_dataset
from robustbench_vit.errors import UserError
from robustbench_vit.models import ModelSpec, build_model, get_stem, model_complexity, size_info, validate_stem
from robustbench_vit.models.complexity import _measure, patchify_gmacs
from robustbench_vit.models.stems import zoo_names

ZOO = zoo_names()


def test_the_zoo_has_six_published_stems_besides_the_baselines():
    assert len(ZOO) >= 6 and not {"patchify", "conv"} & set(ZOO)
    for name in ZOO:
        cls = get_stem(name)
        assert cls.citation and any(str(y) in cls.citation for y in range(2019, 2026)), name
        assert "Adapted" in cls.__doc__, name  # says how its kernels / strides follow the patch size


@pytest.mark.parametrize("size", ["micro", "tiny"])
@pytest.mark.parametrize("stem", ZOO)
def test_zoo_stem_builds_gives_the_grid_and_is_flop_matched(stem, size):
    spec = ModelSpec.from_name(f"vit_{stem}_{size}")
    assert spec.stem == stem
    validate_stem(spec)  # builds, maps a batch to B×D×H/p×W/p, trainable, finite
    info = size_info(size)
    stem_module = get_stem(stem)(info.in_chans, info.embed_dim, info.patch_size)
    side = info.img_size // info.patch_size
    x = torch.randn(2, info.in_chans, info.img_size, info.img_size)
    assert stem_module(x).shape == (2, info.embed_dim, side, side)

    c = model_complexity(spec)
    nc, target = info.num_classes, patchify_gmacs(size)
    off = {d: abs(_measure(spec, d, nc)[1] - target) for d in range(1, info.depth + 4)}
    assert off[c.depth] == min(off.values())  # the rule: the depth whose FLOPs are nearest patchify's
    block = _measure(spec, c.depth + 1, nc)[1] - _measure(spec, c.depth, nc)[1]
    assert abs(c.gmacs - target) <= block / 2 + 1e-12  # so within half a block of FLOPs
    assert abs(c.flop_ratio - 1) < 0.13
    m = build_model(spec, depth=c.depth)
    assert len(m.blocks) == c.depth and m(x).shape == (2, nc)


@pytest.fixture(scope="module")
def digits_batch():
    data = load_dataset("digits")
    return data.train_x[:32], data.train_y[:32]


@pytest.mark.parametrize("stem", ZOO)
def test_zoo_stem_trains_one_real_step_on_digits(stem, digits_batch):
    torch.manual_seed(0)
    spec = ModelSpec.from_name(f"vit_{stem}_micro")
    model = build_model(spec, depth=model_complexity(spec).depth).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = digits_batch
    before = [p.detach().clone() for p in model.patch_embed.parameters()]
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and loss.item() == pytest.approx(2.3026, abs=1e-3)  # zero head: ln 10
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    # the zero head passes no gradient back on the first step; the stem moves on the second
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.patch_embed.parameters()))


def test_patch_sizes_a_stem_cannot_take_are_one_line_errors():
    with pytest.raises(UserError, match="hmlp stem: patch size 6 is not 4·2\\^k"):
        get_stem("hmlp")(3, 64, 6)
    with pytest.raises(UserError, match="levit stem: patch size 12 is not 2·2\\^k"):
        get_stem("levit")(3, 64, 12)
    with pytest.raises(UserError, match="unknown model 'vit_nope_micro'.*STEM one of ceit, efficientformer"):
        ModelSpec.from_name("vit_nope_micro")
    with pytest.raises(UserError, match="unknown model 'vit_hmlp_huge'"):
        ModelSpec.from_name("vit_hmlp_huge")


def test_stems_command_lists_the_zoo_with_citations(capsys):
    assert main(["stems"]) == 0
    out = capsys.readouterr().out
    assert "stems at micro" in out and max(len(ln) for ln in out.splitlines()) <= 80
    for name in ["patchify", "conv", *ZOO]:
        assert any(ln.startswith(f"{name} ") for ln in out.splitlines()), name
    assert "Touvron et al. 2022" in out and "Graham et al. 2021" in out
    assert main(["stems", "--json", "--size", "tiny"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len([r for r in rows if r["stem"] in ZOO]) >= 6
    by = {r["stem"]: r for r in rows}
    assert by["hmlp"]["model"] == "vit_hmlp_tiny" and by["patchify"]["depth"] == 9
    assert all(r["citation"] and r["params"] > 0 and r["gmacs"] > 0 for r in rows)
    assert main(["stems", "--size", "huge"]) == 2
    assert "unknown model size 'huge'" in capsys.readouterr().err
