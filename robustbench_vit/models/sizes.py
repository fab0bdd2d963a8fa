"""Named model sizes (pycls's ViT configs plus CIFAR and CPU sizes) and built-in model names."""

from __future__ import annotations

from dataclasses import dataclass

from robustbench_vit.errors import UserError, choices
from robustbench_vit.models.stems import zoo_names


@dataclass(frozen=True)
class Size:
    """One named size: the input, the trunk (dim / heads / mlp / patchify depth) and the conv stem's defaults."""

    img_size: int  # input side in pixels (square images)
    in_chans: int  # input channels
    num_classes: int  # classes of the head unless the dataset says otherwise
    patch_size: int  # p: every stem reduces the image by p, so the token grid is (img_size/p)²
    embed_dim: int  # trunk width D
    num_heads: int  # attention heads per block
    mlp_dim: int  # hidden width of each block's MLP
    depth: int  # the patchify model's blocks; the conv twin's depth is FLOP-matched, not listed
    conv_widths: tuple[int, ...]  # the conv stem's 3×3 conv widths (its default option)
    conv_strides: tuple[int, ...]  # the conv stem's strides, multiplying to patch_size (its default option)


# dim / heads / mlp / patchify depth from the paper (pycls vitconfigs); conv-stem widths and strides
# are the stem's default options. The conv twin's depth is not listed: FLOP matching decides it.
SIZES: dict[str, Size] = {
    "micro": Size(img_size=16, in_chans=1, num_classes=10, patch_size=4, embed_dim=64, num_heads=2,
                  mlp_dim=128, depth=4, conv_widths=(16, 32), conv_strides=(2, 2)),
    "tiny": Size(img_size=32, in_chans=3, num_classes=10, patch_size=4, embed_dim=192, num_heads=3,
                 mlp_dim=576, depth=9, conv_widths=(48, 96), conv_strides=(2, 2)),
    "1gf": Size(img_size=224, in_chans=3, num_classes=1000, patch_size=16, embed_dim=192, num_heads=3,
                mlp_dim=576, depth=12, conv_widths=(24, 48, 96, 192), conv_strides=(2, 2, 2, 2)),
    "4gf": Size(img_size=224, in_chans=3, num_classes=1000, patch_size=16, embed_dim=384, num_heads=6,
                mlp_dim=1152, depth=12, conv_widths=(48, 96, 192, 384), conv_strides=(2, 2, 2, 2)),
    "18gf": Size(img_size=224, in_chans=3, num_classes=1000, patch_size=16, embed_dim=768, num_heads=12,
                 mlp_dim=3072, depth=12, conv_widths=(64, 128, 128, 256, 256, 512),
                 conv_strides=(2, 2, 1, 2, 1, 2)),
    "36gf": Size(img_size=224, in_chans=3, num_classes=1000, patch_size=16, embed_dim=1024, num_heads=16,
                 mlp_dim=4096, depth=14, conv_widths=(64, 128, 128, 256, 256, 512),
                 conv_strides=(2, 2, 1, 2, 1, 2)),
}

BUILTIN_STEMS = {"p": "patchify", "c": "conv"}


def size_info(size: str) -> Size:
    """The settings of a named size (raises UserError naming the allowed sizes)."""
    if size not in SIZES:
        raise UserError(f"unknown model size {size!r}; allowed: {choices(SIZES)}")
    return SIZES[size]


def builtin_model_names() -> list[str]:
    """All built-in names, patchify first within each size: vit_p_micro, vit_c_micro, ..."""
    return [f"vit_{k}_{size}" for size in SIZES for k in BUILTIN_STEMS]


def parse_model_name(name: str) -> tuple[str, str]:
    """Split `vit_c_1gf` into (size, stem), `vit_hmlp_micro` into (size, a registered stem); UserError otherwise."""
    head, _, size = name.rpartition("_")
    prefix, _, key = head.partition("_")
    if prefix == "vit" and size in SIZES and (key in BUILTIN_STEMS or key in zoo_names()):
        return size, BUILTIN_STEMS.get(key, key)
    raise UserError(f"unknown model {name!r}; allowed: {', '.join(builtin_model_names())}, "
                    f"or vit_STEM_SIZE with STEM one of {choices(zoo_names())}, or a reference: regnety_SIZE, "
                    f"timm:NAME")
