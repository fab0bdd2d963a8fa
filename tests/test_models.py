"""Models: the paper's parameter and FLOP counts, FLOP matching, the stem contract, user stems."""

import json

import pytest
import torch

from robustbench_vit.cli import main
from robustbench_vit.errors import UserError
from robustbench_vit.models import (ModelSpec, build_model, builtin_model_names, get_stem, matched_depth,
                                    model_complexity, validate_stem)

# The paper's Table (pycls vitconfigs): params in millions; GMACs include the attention matmuls.
PAPER = {"vit_p_1gf": (4.83, 1.08, 12), "vit_c_1gf": (4.57, 1.08, 11), "vit_p_4gf": (18.5, 3.91, 12),
         "vit_c_4gf": (17.8, 3.97, 11), "vit_p_18gf": (86.6, 17.6, 12), "vit_c_18gf": (81.6, 17.7, 11),
         "vit_p_36gf": (178, 36.0, 14), "vit_c_36gf": (168, 35.0, 13)}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_sizes_match_params_flops_and_depth(name):
    params_m, gmacs, depth = PAPER[name]
    c = model_complexity(ModelSpec.from_name(name))
    assert c.params / 1e6 == pytest.approx(params_m, rel=0.01)
    assert c.gmacs == pytest.approx(gmacs, rel=0.02)
    assert c.depth == depth


@pytest.mark.parametrize("size", ["micro", "tiny", "1gf", "4gf", "18gf", "36gf"])
def test_conv_twin_is_flop_matched_within_5_percent(size):
    c = model_complexity(ModelSpec.from_name(f"vit_c_{size}"))
    assert abs(c.flop_ratio - 1) < 0.05


def test_flop_count_includes_attention_matmuls():
    # micro: 17 tokens of width 64; q·kᵀ and attn·v are 2 × 17 × 17 × 64 MACs per block, 4 blocks.
    spec = ModelSpec.from_name("vit_p_micro")
    with_attn = model_complexity(spec).gmacs
    attn = 4 * 2 * 17 * 17 * 64 / 1e9
    qkv_proj_mlp = 4 * 17 * (64 * 192 + 64 * 64 + 2 * 64 * 128) / 1e9
    stem = 16 * 1 * 16 * 64 / 1e9
    head = 64 * 10 / 1e9
    assert with_attn == pytest.approx(attn + qkv_proj_mlp + stem + head, rel=1e-6)


@pytest.mark.parametrize("name", ["vit_p_micro", "vit_c_micro", "vit_p_tiny", "vit_c_tiny"])
def test_forward_shapes_and_init(name):
    spec = ModelSpec.from_name(name)
    m = build_model(spec, depth=matched_depth(spec))
    img, ch = (16, 1) if "micro" in name else (32, 3)
    out = m(torch.randn(3, ch, img, img))
    assert out.shape == (3, 10)
    assert torch.count_nonzero(m.head.weight) == 0  # zero-initialised head
    assert 0.015 < m.pos_embed.std().item() < 0.025  # N(0, 0.02)
    assert all(isinstance(b.norm1, torch.nn.LayerNorm) and b.norm1.eps == 1e-6 for b in m.blocks)


def test_conv_stem_layout():
    spec = ModelSpec.from_name("vit_c_1gf")
    stem = build_model(spec, depth=matched_depth(spec)).patch_embed.stem.stem
    convs = [m for m in stem if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [24, 48, 96, 192, 192]
    assert [c.kernel_size for c in convs] == [(3, 3)] * 4 + [(1, 1)]
    assert [c.bias is None for c in convs] == [True] * 4 + [False]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in stem) == 4


def test_build_model_takes_its_depth_from_the_spec_or_the_caller():
    """No FLOP matching inside build_model: the baseline and specs with a depth build alone, matched ones need it."""
    assert len(build_model(ModelSpec.from_name("vit_p_micro")).blocks) == 4
    assert len(build_model(ModelSpec(name="c3", size="micro", stem="conv", depth=3)).blocks) == 3
    with pytest.raises(ValueError, match="matched_depth"):
        build_model(ModelSpec.from_name("vit_c_micro"))


def test_models_json_lists_every_pair_and_its_regnety(capsys):
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows if r["name"].startswith("vit_")] == builtin_model_names()
    assert [r["name"] for r in rows if r["name"].startswith("regnety_")] == [
        "regnety_micro", "regnety_tiny", "regnety_1gf", "regnety_4gf", "regnety_16gf", "regnety_32gf"]
    assert set(rows[0]) == {"name", "stem", "size", "reference", "depth", "params", "gmacs", "flop_ratio",
                            "activations", "img_size"}
    by = {r["name"]: r for r in rows}
    assert by["vit_c_1gf"]["depth"] == 11 and by["vit_p_1gf"]["img_size"] == 224
    assert by["regnety_16gf"]["size"] == "18gf" and by["regnety_16gf"]["reference"] == "RegNetY-16GF"
    assert all(r["activations"] > 0 for r in rows)


def test_unknown_model_and_stem_are_clear_errors():
    with pytest.raises(UserError, match="unknown model 'vit_x_micro'.*vit_p_micro"):
        ModelSpec.from_name("vit_x_micro")
    with pytest.raises(UserError, match="unknown stem 'nope'.*conv, .*patchify"):
        get_stem("nope")


USER_STEMS = '''
import torch
from torch import nn

class Overlap(nn.Module):
    def __init__(self, in_chans, embed_dim, patch_size, kernel=7):
        super().__init__()
        self.conv = nn.Conv2d(in_chans, embed_dim, kernel, stride=patch_size, padding=kernel // 2)
    def forward(self, x):
        return self.conv(x)

class WrongShape(Overlap):
    def forward(self, x):
        return self.conv(x)[:, :, :1]

class NoParams(nn.Module):
    def __init__(self, in_chans, embed_dim, patch_size):
        super().__init__()
        self.embed_dim, self.p = embed_dim, patch_size
    def forward(self, x):
        b, _, h, w = x.shape
        return torch.zeros(b, self.embed_dim, h // self.p, w // self.p)

class NaN(Overlap):
    def forward(self, x):
        return self.conv(x) * float("nan")
'''


def test_user_stem_from_file_is_validated_and_flop_matched(tmp_path):
    f = tmp_path / "my_stems.py"
    f.write_text(USER_STEMS)
    spec = ModelSpec(name="overlap_micro", size="micro", stem=f"{f}:Overlap", stem_options={"kernel": 5})
    validate_stem(spec)
    c = model_complexity(spec)
    assert abs(c.flop_ratio - 1) < 0.1
    assert build_model(spec, depth=c.depth)(torch.randn(2, 1, 16, 16)).shape == (2, 10)
    for cls, msg in [("WrongShape", "output shape"), ("NoParams", "no trainable parameters"),
                     ("NaN", "non-finite"), ("Missing", "no torch.nn.Module class named 'Missing'")]:
        with pytest.raises(UserError, match=msg):
            validate_stem(ModelSpec(name="x", size="micro", stem=f"{f}:{cls}"))
    with pytest.raises(UserError, match="does not exist"):
        get_stem(f"{tmp_path}/absent.py:Overlap")


def test_stem_from_an_installed_package_entry_point(tmp_path, monkeypatch):
    # A real (tiny) installed distribution: a module plus a dist-info folder declaring the entry point.
    (tmp_path / "my_stem_pkg.py").write_text(USER_STEMS)
    info = tmp_path / "my_stem_pkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-stem-pkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[robustbench_vit.stems]\noverlap = my_stem_pkg:Overlap\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from robustbench_vit.models import stem_names

    assert "overlap" in stem_names()
    spec = ModelSpec(name="overlap_micro", size="micro", stem="overlap")
    validate_stem(spec)
    assert build_model(spec, depth=matched_depth(spec))(torch.randn(1, 1, 16, 16)).shape == (1, 10)


def test_stem_that_needs_real_tensors_is_counted_on_the_cpu(tmp_path):
    # .item() and a CPU constant cannot run on the meta device: counting falls back to a real CPU forward.
    (tmp_path / "real.py").write_text(
        "import torch\n"
        "class NeedsData(torch.nn.Module):\n"
        "    def __init__(self, in_chans, embed_dim, patch_size):\n"
        "        super().__init__()\n"
        "        self.proj = torch.nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)\n"
        "        self.scale = torch.tensor(0.5)\n"
        "    def forward(self, x):\n"
        "        return self.proj(x) * self.scale * (1.0 if x.abs().max().item() >= 0 else 0.0)\n")
    spec = ModelSpec(name="real_micro", size="micro", stem=f"{tmp_path / 'real.py'}:NeedsData")
    validate_stem(spec)
    c = model_complexity(spec)
    assert c.gmacs == pytest.approx(model_complexity(ModelSpec.from_name("vit_p_micro")).gmacs, rel=1e-6)
