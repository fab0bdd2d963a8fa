"""Named model sizes (pycls's ViT configs plus CIFAR and CPU sizes) and built-in model names."""

from __future__ import annotations

from robustbench_vit.errors import UserError, choices

# dim / heads / mlp / patchify depth from the paper (pycls vitconfigs); conv-stem widths and strides
# are the stem's default options. The conv twin's depth is not listed: FLOP matching decides it.
SIZES: dict[str, dict] = {
    "micro": dict(img_size=16, in_chans=1, num_classes=10, patch_size=4, embed_dim=64, num_heads=2,
                  mlp_dim=128, depth=4, conv_widths=[16, 32], conv_strides=[2, 2]),
    "tiny": dict(img_size=32, in_chans=3, num_classes=10, patch_size=4, embed_dim=192, num_heads=3,
                 mlp_dim=576, depth=9, conv_widths=[48, 96], conv_strides=[2, 2]),
    "1gf": dict(img_size=224, in_chans=3, num_classes=1000, patch_size=16, embed_dim=192, num_heads=3,
                mlp_dim=576, depth=12, conv_widths=[24, 48, 96, 192], conv_strides=[2, 2, 2, 2]),
    "4gf": dict(img_size=224, in_chans=3, num_classes=1000, patch_size=16, embed_dim=384, num_heads=6,
                mlp_dim=1152, depth=12, conv_widths=[48, 96, 192, 384], conv_strides=[2, 2, 2, 2]),
    "18gf": dict(img_size=224, in_chans=3, num_classes=1000, patch_size=16, embed_dim=768, num_heads=12,
                 mlp_dim=3072, depth=12, conv_widths=[64, 128, 128, 256, 256, 512],
                 conv_strides=[2, 2, 1, 2, 1, 2]),
    "36gf": dict(img_size=224, in_chans=3, num_classes=1000, patch_size=16, embed_dim=1024, num_heads=16,
                 mlp_dim=4096, depth=14, conv_widths=[64, 128, 128, 256, 256, 512],
                 conv_strides=[2, 2, 1, 2, 1, 2]),
}

BUILTIN_STEMS = {"p": "patchify", "c": "conv"}


def size_info(size: str) -> dict:
    """The settings of a named size (raises UserError naming the allowed sizes)."""
    if size not in SIZES:
        raise UserError(f"unknown model size {size!r}; allowed: {choices(SIZES)}")
    return dict(SIZES[size])


def builtin_model_names() -> list[str]:
    """All built-in names, patchify first within each size: vit_p_micro, vit_c_micro, ..."""
    return [f"vit_{k}_{size}" for size in SIZES for k in BUILTIN_STEMS]


def parse_model_name(name: str) -> tuple[str, str]:
    """Split `vit_c_1gf` into (size, stem), `vit_hmlp_micro` into (size, a registered stem); UserError otherwise."""
    from robustbench_vit.models.stems import zoo_names

    head, _, size = name.rpartition("_")
    prefix, _, key = head.partition("_")
    if prefix == "vit" and size in SIZES and (key in BUILTIN_STEMS or key in zoo_names()):
        return size, BUILTIN_STEMS.get(key, key)
    raise UserError(f"unknown model {name!r}; allowed: {', '.join(builtin_model_names())}, "
                    f"or vit_STEM_SIZE with STEM one of {choices(zoo_names())}")
