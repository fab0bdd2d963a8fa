"""The trunk: timm's VisionTransformer with a stem plugged in through its `embed_layer` hook (or a reference model)."""

from __future__ import annotations

from functools import partial

import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from robustbench_vit.errors import UserError
from robustbench_vit.models.reference import build_reference
from robustbench_vit.models.sizes import size_info
from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.models.stems import follows_timm_contract, get_stem, timm_embed_layer


class StemEmbed(nn.Module):
    """Adapter from the stem contract (B×D×h×w map) to timm's patch-embed interface (B×N×D tokens)."""

    def __init__(self, stem_cls, stem_options, *, img_size, patch_size, in_chans, embed_dim, **_timm_kwargs):
        """Build the stem; timm's other patch-embed arguments (bias, dynamic padding) do not apply to stems."""
        super().__init__()
        self.img_size = (img_size, img_size)
        self.patch_size = (patch_size, patch_size)
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.stem = stem_cls(in_chans=in_chans, embed_dim=embed_dim, patch_size=patch_size, **stem_options)

    def feat_ratio(self, as_scalar: bool = True):
        """Spatial reduction of the stem, as timm's PatchEmbed reports it."""
        return self.patch_size[0] if as_scalar else self.patch_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the stem and flatten its map to tokens."""
        return self.stem(x).flatten(2).transpose(1, 2)


def stem_options(spec: ModelSpec) -> dict:
    """The stem's options: the size's conv widths/strides for the built-in conv stem, else the spec's."""
    if spec.stem == "conv" and not spec.stem_options:
        info = size_info(spec.size)
        return {"widths": list(info.conv_widths), "strides": list(info.conv_strides)}
    return dict(spec.stem_options)


def embed_layer(spec: ModelSpec):
    """What timm's VisionTransformer builds its `patch_embed` with: a timm embed layer as it is, else StemEmbed."""
    cls = get_stem(spec.stem)
    if follows_timm_contract(cls):
        return timm_embed_layer(cls, stem_options(spec))
    return partial(StemEmbed, cls, stem_options(spec))


def own_depth(spec: ModelSpec) -> int:
    """The depth a spec fixes by itself: its own, else the size's for the baseline (others need matched_depth)."""
    if spec.depth is not None:
        return spec.depth
    if spec.is_reference:
        return 0  # no trunk of ours: the reference's depth is its architecture's, and build_model ignores this
    if spec.is_plain_patchify:
        return size_info(spec.size).depth
    raise ValueError(f"model {spec.name!r}: its depth is FLOP-matched; pass depth=matched_depth(spec) "
                     f"(robustbench_vit.models) or model_complexity(spec).depth")


def build_model(spec: ModelSpec, num_classes: int | None = None, depth: int | None = None) -> nn.Module:
    """Build the ViT for a spec at `depth` (default: `own_depth`; FLOP-matched specs need theirs passed), or the
    spec's reference model (which ignores `depth`)."""
    info = size_info(spec.size)
    if spec.is_reference:
        return build_reference(spec.reference, spec.size, num_classes or info.num_classes)
    if depth is None:
        depth = own_depth(spec)
    if depth < 1:
        raise UserError(f"model {spec.name!r}: depth must be >= 1, got {depth}")
    model = VisionTransformer(
        img_size=info.img_size, patch_size=info.patch_size, in_chans=info.in_chans,
        num_classes=num_classes or info.num_classes, embed_dim=info.embed_dim, depth=depth,
        num_heads=info.num_heads, mlp_ratio=info.mlp_dim / info.embed_dim, qkv_bias=True,
        class_token=True, global_pool="token", norm_layer=partial(nn.LayerNorm, eps=1e-6),
        embed_layer=embed_layer(spec),
    )
    nn.init.normal_(model.pos_embed, std=0.02)
    nn.init.zeros_(model.head.weight)
    nn.init.zeros_(model.head.bias)
    return model
