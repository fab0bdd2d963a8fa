"""The stem zoo: published ViT stems, each adapted to the stem contract and registered by name.

Every stem maps B×C×H×W to B×D×H/p×W/p. The papers' stems reduce by 16 (ImageNet ViTs) or by 4 (hierarchical
models); here each reduces by the size's patch size p (4 for micro and tiny, 16 for 1gf and up), and each
docstring says how its kernel / stride sequence follows p. Like every stem, a zoo stem's trunk depth is chosen by
FLOP matching against the size's patchify model. Use one as `vit_<name>_<size>` (e.g. `vit_hmlp_micro`) in a
study's `models:`, or `compare --stem <name>`.
"""

from __future__ import annotations

import math

import torch
from timm.layers import LayerNorm2d
from torch import nn

from robustbench_vit.errors import UserError
from robustbench_vit.models.stems import Stem, register_stem


def halvings(stem: str, patch_size: int, fixed: int = 1) -> int:
    """k such that patch_size = fixed · 2^k (k ≥ 0); UserError naming the stem otherwise."""
    k = math.log2(patch_size / fixed) if patch_size % fixed == 0 else -1
    if k < 0 or k != int(k):
        allowed = f"{fixed}·2^k" if fixed > 1 else "a power of 2"
        raise UserError(f"{stem} stem: patch size {patch_size} is not {allowed}")
    return int(k)


def conv_norm(cin: int, cout: int, k: int, stride: int = 1, *, act: type[nn.Module] | None = None) -> list[nn.Module]:
    """k×k conv (padding k//2, no bias: BN follows) + BN (+ activation)."""
    layers = [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False), nn.BatchNorm2d(cout)]
    return layers + ([act()] if act else [])


def doubling_widths(embed_dim: int, n: int) -> list[int]:
    """n widths doubling up to embed_dim: D/2^(n-1), ..., D/2, D."""
    return [embed_dim >> (n - 1 - i) for i in range(n)]


class ZooStem(Stem):
    """A stem whose layers are one Sequential; `citation` says where it is published."""

    def __init__(self, layers: list[nn.Module]):
        """Hold the layers."""
        super().__init__()
        self.stem = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B×C×H×W → B×D×H/p×W/p."""
        return self.stem(x)


@register_stem("hmlp")
class HMLPStem(ZooStem):
    """hMLP: patches merged hierarchically, each stage a patch-wise linear map with BN + GELU.

    Paper (p = 16): 4×4/s4 conv to D/4 + BN + GELU, 2×2/s2 conv D/4 → D/4 + BN + GELU, 2×2/s2 conv to D + BN.
    Adapted: the first conv is (p/4)×(p/4)/s(p/4) and the two 2×2/s2 merges stay, so p = 4 starts with a 1×1 conv
    (a per-pixel linear map) and p = 16 is the paper's stem exactly. Needs p = 4·2^k.
    """

    citation = "Touvron et al. 2022, Three things everyone should know about Vision Transformers (ECCV)"

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int):
        """Three patch-wise convs: (p/4)² to D/4, 2² to D/4, 2² to D; BN after each, GELU between."""
        halvings("hmlp", patch_size, 4)
        q, w = patch_size // 4, embed_dim // 4
        super().__init__([nn.Conv2d(in_chans, w, q, stride=q), nn.BatchNorm2d(w), nn.GELU(),
                          nn.Conv2d(w, w, 2, stride=2), nn.BatchNorm2d(w), nn.GELU(),
                          nn.Conv2d(w, embed_dim, 2, stride=2), nn.BatchNorm2d(embed_dim)])


@register_stem("levit")
class LeViTStem(ZooStem):
    """LeViT's stem: 3×3/s2 convs with BN, Hardswish between, widths doubling up to D.

    Paper (p = 16): four 3×3/s2 convs of widths D/8, D/4, D/2, D. Adapted: log2(p) convs of widths D/2^(n-1) … D,
    so p = 4 has two (D/2, D) and p = 16 is the paper's stem. Needs p = 2·2^k.
    """

    citation = "Graham et al. 2021, LeViT: a Vision Transformer in ConvNet's Clothing for Faster Inference (ICCV)"

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int):
        """log2(p) × [3×3/s2 conv + BN], Hardswish after all but the last."""
        layers, c = [], in_chans
        for w in doubling_widths(embed_dim, 1 + halvings("levit", patch_size, 2)):
            layers += conv_norm(c, w, 3, 2, act=nn.Hardswish)
            c = w
        super().__init__(layers[:-1])  # no activation after the last conv


@register_stem("pvtv2")
class PVTv2Stem(ZooStem):
    """PVTv2's overlapping patch embedding: one conv whose kernel overlaps its neighbours, then LayerNorm.

    Paper (stage 1, reduction 4): 7×7/s4 conv (padding 3) + LayerNorm. Adapted: kernel 2p−1, stride p, padding p−1
    (the paper's kernel-to-stride rule), so p = 4 is the paper's 7×7/s4 and p = 16 is 31×31/s16.
    """

    citation = "Wang et al. 2022, PVT v2: Improved Baselines with Pyramid Vision Transformer (CVMJ)"

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int):
        """(2p−1)×(2p−1)/s p conv with bias, LayerNorm over channels."""
        k = 2 * patch_size - 1
        super().__init__([nn.Conv2d(in_chans, embed_dim, k, stride=patch_size, padding=patch_size - 1),
                          LayerNorm2d(embed_dim)])


@register_stem("swin")
class SwinStem(ZooStem):
    """Swin / ConvNeXt: non-overlapping patchify followed by LayerNorm.

    Papers (reduction 4): 4×4/s4 conv + LayerNorm (Swin's patch embedding with patch_norm, ConvNeXt's stem).
    Adapted: p×p/s p conv + LayerNorm, so p = 4 is the papers' stem; it differs from patchify by the norm alone.
    """

    citation = ("Liu et al. 2021, Swin Transformer (ICCV); Liu et al. 2022, A ConvNet for the 2020s (ConvNeXt, "
                "CVPR)")

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int):
        """p×p/s p conv with bias, LayerNorm over channels (eps 1e-6)."""
        super().__init__([nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size), LayerNorm2d(embed_dim)])


@register_stem("ceit")
class CeiTStem(ZooStem):
    """CeiT's Image-to-Tokens: a conv + BN + max-pool reducing by 4, then patchify on its features.

    Paper (p = 16): 7×7/s2 conv to 32 channels + BN + 3×3/s2 max-pool, then a 4×4/s4 patch conv to D. Adapted: the
    conv and pool stay, the patch conv is (p/4)×(p/4)/s(p/4), so p = 16 is the paper's and p = 4 ends with a 1×1
    conv. Needs p = 4·2^k.
    """

    citation = "Yuan et al. 2021, Incorporating Convolution Designs into Visual Transformers (CeiT, ICCV)"

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int, width: int = 32):
        """7×7/s2 conv to `width` (32) + BN + 3×3/s2 max-pool, (p/4)×(p/4)/s(p/4) conv to D."""
        halvings("ceit", patch_size, 4)
        q = patch_size // 4
        super().__init__([nn.Conv2d(in_chans, width, 7, stride=2, padding=3), nn.BatchNorm2d(width),
                          nn.MaxPool2d(3, stride=2, padding=1), nn.Conv2d(width, embed_dim, q, stride=q)])


@register_stem("efficientformer")
class EfficientFormerStem(ZooStem):
    """EfficientFormer's stem: two 3×3/s2 convs with BN + ReLU; then its 3×3/s2 conv + BN downsamplers.

    Paper (reduction 4): 3×3/s2 conv to C/2 + BN + ReLU, 3×3/s2 conv to C + BN + ReLU (C: the first stage's width,
    here D). Adapted: for p > 4, log2(p/4) more 3×3/s2 conv + BN (EfficientFormer's "Embedding" between stages),
    with widths doubling up to D over all log2(p) convs (p = 4: D/2, D, the paper's stem; p = 16: D/8, D/4, then
    D/2, D). Needs p = 4·2^k.
    """

    citation = "Li et al. 2022, EfficientFormer: Vision Transformers at MobileNet Speed (NeurIPS)"

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int):
        """Two conv + BN + ReLU, then log2(p/4) conv + BN, all 3×3/s2."""
        n = 2 + halvings("efficientformer", patch_size, 4)
        layers, c = [], in_chans
        for i, w in enumerate(doubling_widths(embed_dim, n)):
            layers += conv_norm(c, w, 3, 2, act=nn.ReLU if i < 2 else None)
            c = w
        super().__init__(layers)


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3×3 conv + BN, ReLU between and after the residual sum (1×1 shortcut if needed)."""

    def __init__(self, cin: int, cout: int, stride: int):
        """3×3/s conv + BN + ReLU, 3×3 conv + BN; the shortcut is 1×1/s conv + BN when the shape changes."""
        super().__init__()
        self.body = nn.Sequential(*conv_norm(cin, cout, 3, stride, act=nn.ReLU), *conv_norm(cout, cout, 3))
        self.short = (nn.Identity() if stride == 1 and cin == cout
                      else nn.Sequential(*conv_norm(cin, cout, 1, stride)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """relu(body(x) + shortcut(x))."""
        return torch.relu(self.body(x) + self.short(x))


@register_stem("hybrid")
class HybridStem(ZooStem):
    """A small ResNet-style hybrid: ResNet's root and basic blocks, then a 1×1 projection to tokens.

    Paper (ViT hybrids, p = 16): a ResNet-50's root (7×7/s2 conv + BN + ReLU + 3×3/s2 max-pool) and stages to
    1/16, then 1×1 patches projected to D. Adapted, and small: the root (width D/2^(n-1), n = log2 p), then log2(p/4)
    stride-2 basic blocks doubling the width (p = 4: one stride-1 block instead), then a 1×1 conv to D; so p = 4:
    root D/2, one block D/2; p = 16: root D/8, blocks D/4, D/2. Needs p = 4·2^k.
    """

    citation = "Dosovitskiy et al. 2021, An Image is Worth 16x16 Words (ViT hybrid, ICLR)"

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int):
        """Root, basic blocks, 1×1 conv with bias to D."""
        widths = doubling_widths(embed_dim, 2 + halvings("hybrid", patch_size, 4))[:-1]
        layers = [*conv_norm(in_chans, widths[0], 7, 2, act=nn.ReLU), nn.MaxPool2d(3, stride=2, padding=1)]
        strided = [(a, b, 2) for a, b in zip(widths, widths[1:])]
        layers += [BasicBlock(a, b, s) for a, b, s in strided or [(widths[0], widths[0], 1)]]
        super().__init__([*layers, nn.Conv2d(widths[-1], embed_dim, 1)])
