"""timm embed layers as stems, unchanged: timm.layers.PatchEmbed (patchify again) and a small class of the same
contract, from a file, a study YAML's `stems:` and the entry-point group."""

import pytest
import torch
from timm.layers import PatchEmbed

from robustbench_vit.cli import main
from robustbench_vit.commands.compare import contender
from robustbench_vit.data import load_dataset
from robustbench_vit.errors import UserError
from robustbench_vit.models import ModelSpec, build_model, matched_depth, model_complexity, validate_stem
from robustbench_vit.models.stems import follows_timm_contract, get_stem
from robustbench_vit.study.checks import check_stems
from robustbench_vit.study.files import load_spec

# timm's contract in an older, smaller form: no bias / dynamic_img_pad / device / dtype arguments, no feat_ratio.
TIMM_STYLE = '''
import torch
from torch import nn

class TokenConvEmbed(nn.Module):
    """A k×k conv to 8 channels, then p×p patches to D, flattened to tokens and LayerNormed."""
    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=768, kernel=3):
        super().__init__()
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.pre = nn.Conv2d(in_chans, 8, kernel, padding=kernel // 2)
        self.proj = nn.Conv2d(8, embed_dim, patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim)
    def forward(self, x):
        return self.norm(self.proj(torch.relu(self.pre(x))).flatten(2).transpose(1, 2))

class MapOut(TokenConvEmbed):
    def forward(self, x):
        return self.proj(self.pre(x))

class NoNumPatches(TokenConvEmbed):
    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=768):
        super().__init__(img_size, patch_size, in_chans, embed_dim)
        del self.num_patches
'''

STUDY = """\
description: a study with two stems, 2 lr points, 2 epochs
models: [vit_p_micro, vit_c_micro]
stems:
  - {name: tok_micro, path: "emb.py:TokenConvEmbed", options: {kernel: 5}}
  - {name: lev_micro, path: levit}
dataset: digits
train: {epochs: 2, batch_size: 128, weight_decay: 0.05, threads: 1}
space:
  lr: {values: [1.0e-3, 3.0e-3]}
design: {kind: grid, seeds: 1}
"""


@pytest.fixture
def emb(tmp_path):
    (tmp_path / "emb.py").write_text(TIMM_STYLE)
    return tmp_path / "emb.py"


def test_timm_patch_embed_is_patchify_again():
    assert follows_timm_contract(PatchEmbed) and not follows_timm_contract(get_stem("patchify"))
    spec = ModelSpec(name="pe_micro", size="micro", stem="timm.layers:PatchEmbed")
    validate_stem(spec)
    c, p = model_complexity(spec), model_complexity(ModelSpec.from_name("vit_p_micro"))
    assert (c.params, c.gmacs, c.depth) == (p.params, p.gmacs, 4)
    model = build_model(spec, depth=c.depth)
    assert type(model.patch_embed) is PatchEmbed  # timm's class itself, built by timm's own call
    base = build_model(ModelSpec.from_name("vit_p_micro"))
    state = {k.replace("patch_embed.stem.proj.", "patch_embed.proj."): v for k, v in base.state_dict().items()}
    model.load_state_dict(state)
    torch.nn.init.normal_(model.head.weight), model.head.bias.data.zero_()
    base.head.weight.data.copy_(model.head.weight)
    x = load_dataset("digits").train_x[:8]
    assert torch.allclose(model.eval()(x), base.eval()(x), atol=1e-6)  # same weights, same logits: patchify
    assert contender("timm.layers:PatchEmbed", size="micro").spec.name == "patch_embed_micro"


def test_a_small_timm_contract_class_from_a_file_a_study_and_an_entry_point(emb, tmp_path, monkeypatch):
    spec = ModelSpec(name="tok_micro", size="micro", stem=f"{emb}:TokenConvEmbed", stem_options={"kernel": 5})
    validate_stem(spec)
    c = model_complexity(spec)
    assert abs(c.flop_ratio - 1) < 0.13
    model = build_model(spec, depth=c.depth)
    assert type(model.patch_embed).__name__ == "TokenConvEmbed" and model.patch_embed.pre.kernel_size == (5, 5)
    data = load_dataset("digits")
    loss = torch.nn.functional.cross_entropy(model(data.train_x[:16]), data.train_y[:16])
    loss.backward()
    assert torch.isfinite(loss) and model.patch_embed.pre.weight.grad is not None

    study = tmp_path / "s.yaml"
    study.write_text(STUDY)
    loaded = load_spec(str(study))
    assert [m.name for m in loaded.models] == ["vit_p_micro", "vit_c_micro", "tok_micro", "lev_micro"]
    check_stems(loaded.models, 10)  # what a study runs before anything is written

    info = tmp_path / "emb_pkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: emb-pkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[robustbench_vit.stems]\ntok = emb:TokenConvEmbed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = ModelSpec(name="tok_ep_micro", size="micro", stem="tok")
    validate_stem(ep)
    assert build_model(ep, depth=matched_depth(ep))(torch.randn(1, 1, 16, 16)).shape == (1, 10)


def test_timm_contract_mistakes_are_one_line_and_nothing_is_written(emb, tmp_path, capsys):
    study = tmp_path / "s.yaml"
    study.write_text(STUDY)
    runs = tmp_path / "runs"
    for cls, msg in [("MapOut", "output shape (2, 64, 4, 4), expected B×N×embed_dim tokens = (2, 16, 64)"),
                     ("NoNumPatches", "num_patches is 'missing', expected (H/p)·(W/p) = 16")]:
        assert main(["compare", "--stem", f"{emb}:{cls}", "--study", str(study), "--runs-dir", str(runs)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "timm embed layer" in err and msg in err, err
    with pytest.raises(UserError, match="building it failed: TypeError"):
        validate_stem(ModelSpec(name="x", size="micro", stem="timm.layers:PatchEmbed",
                                stem_options={"norm_layer": "LayerNorm"}))
    assert not runs.exists()
