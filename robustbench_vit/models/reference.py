"""Reference models beside the ViTs: RegNetY at the paper's configs (timm's RegNet) and any timm model by name.

The paper plots RegNetY next to ViT_P and ViT_C "as a reference point for good stability" (Xiao et al. 2021, §5).
These are CNNs, so nothing is FLOP-matched: `models` shows each one's FLOP ratio to the size's ViT_P. Weights are
never pretrained or downloaded; `in_chans` and `num_classes` are the data's (the size's input, checked against it).
"""

from __future__ import annotations

from dataclasses import dataclass

import timm
from timm.models.regnet import RegNet, RegNetCfg, RegStage, adjust_widths_groups_comp
from torch import nn

from robustbench_vit.errors import UserError
from robustbench_vit.models.sizes import SIZES, size_info

TIMM_PREFIX = "timm:"
REGNETY = "regnety"  # the `reference` of a spec built from REGNETY_CONFIGS at its size
LIST_TIMM = "python -c 'import timm; print(timm.list_models())'"  # how to see the names timm knows


@dataclass(frozen=True)
class RegNetY:
    """One RegNetY: pycls's AnyNet form (explicit per-stage depths and widths) or its RegNet form (depth, w0, wa,
    wm: timm generates the widths). SE ratio 0.25 of the block's input width and bottleneck ratio 1, as pycls."""

    name: str  # the paper's name of the model (pycls config)
    group_width: int
    depths: tuple[int, ...] = ()  # AnyNet: blocks per stage
    widths: tuple[int, ...] = ()  # AnyNet: output width per stage
    regnet: tuple[int, int, float, float] | None = None  # RegNet: (depth, w0, wa, wm)
    stem_width: int = 32
    source: str = ""  # where the config comes from


# pycls `vitconfigs` branch, configs/vitconv_baselines/regnety/ (the paper's RegNetY-1/4/16/32GF), one per ViT size:
# the 18GF and 36GF ViTs sit beside RegNetY-16GF and -32GF in the paper's Table 2. The paper trains them at 232,
# 240, 256 and 268 px (TRAIN.IM_SIZE), where their GF are 1.0 / 4.0 / 16 / 32; at the sizes' 224 px they are less.
# micro and tiny: pycls's RegNetY-200MF (DDS: depths 1,1,4,7, widths 24,56,152,368, group width 8) with widths times
# m and depths times k, m in 1/4..3 by 1/8 and k in {1/2, 1}, the pair whose GMACs at the size's input come nearest
# vit_p_<size>'s (benchmarks/bench_runtime.py --search prints the grid): micro m=1/4, k=1/2 (0.77×, 136k params);
# tiny m=5/2, k=1 (0.96×, 16.5M params).
_PYCLS = "pycls vitconfigs configs/vitconv_baselines/regnety/"
REGNETY_CONFIGS: dict[str, RegNetY] = {
    "micro": RegNetY("RegNetY-micro", 8, (1, 1, 2, 4), (8, 16, 40, 96), stem_width=8,
                     source="RegNetY-200MF scaled to vit_p_micro's GMACs"),
    "tiny": RegNetY("RegNetY-tiny", 8, (1, 1, 4, 7), (64, 144, 384, 920), stem_width=80,
                    source="RegNetY-200MF scaled to vit_p_tiny's GMACs"),
    "1gf": RegNetY("RegNetY-1.0GF", 4, (1, 4, 10, 3), (40, 120, 328, 904), source=_PYCLS + "RegNetY-1.0GF"),
    "4gf": RegNetY("RegNetY-4.0GF", 32, regnet=(26, 88, 30.3, 2.404), source=_PYCLS + "RegNetY-4.0GF"),
    "18gf": RegNetY("RegNetY-16GF", 56, (2, 7, 18, 2), (168, 336, 896, 2128), source=_PYCLS + "RegNetY-16GF"),
    "36gf": RegNetY("RegNetY-32GF", 72, (2, 7, 20, 2), (216, 432, 1152, 2808), source=_PYCLS + "RegNetY-32GF"),
}
# The paper's names where they differ from the size's: regnety_16gf is the RegNetY of size 18gf, regnety_32gf of 36gf.
PAPER_NAMES = {"18gf": "regnety_16gf", "36gf": "regnety_32gf"}


def regnety_name(size: str) -> str:
    """The listed name of a size's RegNetY: regnety_<size>, or the paper's name (regnety_16gf for 18gf)."""
    return PAPER_NAMES.get(size, f"regnety_{size}")


def regnety_names() -> list[str]:
    """Every RegNetY name, in size order."""
    return [regnety_name(s) for s in SIZES]


def parse_reference(name: str) -> tuple[str, str] | None:
    """(size, reference) of a reference name: `regnety_4gf` → ("4gf", "regnety"), `regnety_16gf` → ("18gf",
    "regnety"), `timm:resnet18` → ("", "timm:resnet18") (its size comes from the study or --size); None for other
    names. An unknown timm model is one UserError saying how to list the names timm knows."""
    if name.startswith(TIMM_PREFIX):
        arch = name.removeprefix(TIMM_PREFIX)
        if not timm.is_model(arch):
            raise UserError(f"unknown timm model {arch!r} (from {name!r}); list the names with {LIST_TIMM}")
        return "", name
    head, _, size = name.rpartition("_")
    by_paper = {v: k for k, v in PAPER_NAMES.items()}
    if head == REGNETY and (size in SIZES or f"{head}_{size}" in by_paper):
        return by_paper.get(name, size), REGNETY
    return None


class AnyNetY(RegNet):
    """timm's RegNet (its stem, SE bottleneck blocks, stages and head) with the stages given explicitly, as pycls's
    AnyNet configs give them (timm's RegNetCfg only generates them from w0 / wa / wm) and with their strides."""

    def __init__(self, cfg: RegNetCfg, anynet: tuple[tuple[int, ...], ...], **kwargs):
        """`anynet` is (depths, widths, strides) per stage; the rest is RegNet's."""
        self.anynet = anynet  # read by _get_stage_args while RegNet.__init__ builds the stages
        super().__init__(cfg, **kwargs)

    def _get_stage_args(self, cfg: RegNetCfg, default_stride: int = 2, output_stride: int = 32,
                        drop_path_rate: float = 0.0):
        """The stages' arguments from `anynet`, widths made compatible with the group width as timm does."""
        depths, widths, strides = self.anynet
        ratios = [cfg.bottle_ratio] * len(depths)
        widths, groups = adjust_widths_groups_comp(list(widths), ratios, [cfg.group_size] * len(depths))
        per_stage = [dict(out_chs=w, stride=s, dilation=1, depth=d, bottle_ratio=r, group_size=g,
                          drop_path_rates=[0.0] * d) for w, s, d, r, g in zip(widths, strides, depths, ratios, groups)]
        common = dict(downsample=cfg.downsample, se_ratio=cfg.se_ratio, linear_out=cfg.linear_out,
                      act_layer=cfg.act_layer, norm_layer=cfg.norm_layer)
        return per_stage, common


def stage_strides(img_size: int) -> tuple[int, ...]:
    """Each stage halves the map while it stays at least 4×4 after the stem's stride 2: 2,2,2,2 at 224 px (7×7 at the
    end, as pycls), 2,2,1,1 at 32 px and 2,1,1,1 at 16 px (4×4), so small images keep a map to pool."""
    out, side = [], img_size // 2
    for _ in range(4):
        stride = 2 if side // 2 >= 4 else 1
        side //= stride
        out.append(stride)
    return tuple(out)


def build_regnety(size: str, num_classes: int) -> RegNet:
    """The size's RegNetY, untrained, for the size's input channels."""
    c, info = REGNETY_CONFIGS[size], size_info(size)
    common = dict(group_size=c.group_width, se_ratio=0.25, stem_width=c.stem_width)
    if c.regnet is not None:
        depth, w0, wa, wm = c.regnet
        return RegNet(RegNetCfg(depth=depth, w0=w0, wa=wa, wm=wm, **common), in_chans=info.in_chans,
                      num_classes=num_classes)
    return AnyNetY(RegNetCfg(**common), (c.depths, c.widths, stage_strides(info.img_size)), in_chans=info.in_chans,
                   num_classes=num_classes)


def build_reference(reference: str, size: str, num_classes: int) -> nn.Module:
    """A reference model: the size's RegNetY, or `timm:NAME` from timm.create_model (never pretrained)."""
    if reference == REGNETY:
        return build_regnety(size, num_classes)
    info = size_info(size)
    return timm.create_model(reference.removeprefix(TIMM_PREFIX), pretrained=False, in_chans=info.in_chans,
                             num_classes=num_classes)


def reference_blocks(model: nn.Module) -> int:
    """A RegNet's residual blocks (its depth as pycls counts it); 0 for other references (no trunk depth)."""
    return sum(len(list(m.children())) for m in model.modules() if isinstance(m, RegStage))
