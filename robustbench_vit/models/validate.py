"""Check a stem before any trial runs: it imports, builds, maps a batch to the right shape, trains, is finite."""

from __future__ import annotations

import torch

from robustbench_vit.errors import UserError
from robustbench_vit.models.sizes import Size, size_info
from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.models.stems import follows_timm_contract, get_stem
from robustbench_vit.models.vit import embed_layer, stem_options


def _build(spec: ModelSpec, info: Size, timm_like: bool) -> torch.nn.Module:
    """The stem (stem contract) or the embed layer exactly as the trunk builds it (timm contract)."""
    if timm_like:
        return embed_layer(spec)(img_size=info.img_size, patch_size=info.patch_size, in_chans=info.in_chans,
                                 embed_dim=info.embed_dim, bias=True, dynamic_img_pad=False)
    return get_stem(spec.stem)(in_chans=info.in_chans, embed_dim=info.embed_dim, patch_size=info.patch_size,
                               **stem_options(spec))


def validate_stem(spec: ModelSpec) -> None:
    """Raise UserError naming the first failed check of the spec's stem at the spec's size.

    A stem-contract class must give B×embed_dim×H/p×W/p; a timm embed layer B×N×D tokens with N = num_patches =
    (H/p)·(W/p), the token grid every model of a size shares. A reference model has no stem: nothing to check.
    """
    if spec.is_reference:
        return
    info = size_info(spec.size)
    timm_like = follows_timm_contract(get_stem(spec.stem))
    where = f"{'timm embed layer' if timm_like else 'stem'} {spec.stem!r} ({spec.name})"
    try:
        stem = _build(spec, info, timm_like)
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"{where}: building it failed: {type(e).__name__}: {e}") from e
    if not isinstance(stem, torch.nn.Module):
        raise UserError(f"{where}: building it gave {type(stem).__name__}, not a torch.nn.Module")
    if not any(p.requires_grad for p in stem.parameters()):
        raise UserError(f"{where}: has no trainable parameters")
    side = info.img_size // info.patch_size
    if timm_like and getattr(stem, "num_patches", None) != side * side:
        raise UserError(f"{where}: num_patches is {getattr(stem, 'num_patches', 'missing')!r}, expected "
                        f"(H/p)·(W/p) = {side * side}")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, info.in_chans, info.img_size, info.img_size, generator=g)
    try:
        y = stem.train()(x)
    except Exception as e:
        raise UserError(f"{where}: forward on a 2×{info.in_chans}×{info.img_size}×{info.img_size} "
                        f"batch failed: {type(e).__name__}: {e}") from e
    want, what = ((2, side * side, info.embed_dim), "B×N×embed_dim tokens") if timm_like else \
        ((2, info.embed_dim, side, side), "B×embed_dim×H/p×W/p")
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != want:
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise UserError(f"{where}: output shape {got}, expected {what} = {want}")
    if not torch.isfinite(y).all():
        raise UserError(f"{where}: output has non-finite values")
