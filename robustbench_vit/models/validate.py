"""Check a stem before any trial runs: it imports, builds, maps a batch to the right shape, trains, is finite."""

from __future__ import annotations

import torch

from robustbench_vit.errors import UserError
from robustbench_vit.models.sizes import size_info
from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.models.stems import get_stem
from robustbench_vit.models.vit import stem_options


def validate_stem(spec: ModelSpec) -> None:
    """Raise UserError naming the first failed check of the spec's stem at the spec's size."""
    info = size_info(spec.size)
    cls = get_stem(spec.stem)
    where = f"stem {spec.stem!r} ({spec.name})"
    try:
        stem = cls(in_chans=info["in_chans"], embed_dim=info["embed_dim"], patch_size=info["patch_size"],
                   **stem_options(spec))
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"{where}: building it failed: {type(e).__name__}: {e}") from e
    if not isinstance(stem, torch.nn.Module):
        raise UserError(f"{where}: building it gave {type(stem).__name__}, not a torch.nn.Module")
    if not any(p.requires_grad for p in stem.parameters()):
        raise UserError(f"{where}: has no trainable parameters")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, info["in_chans"], info["img_size"], info["img_size"], generator=g)
    try:
        y = stem.train()(x)
    except Exception as e:
        raise UserError(f"{where}: forward on a 2×{info['in_chans']}×{info['img_size']}×{info['img_size']} "
                        f"batch failed: {type(e).__name__}: {e}") from e
    side = info["img_size"] // info["patch_size"]
    want = (2, info["embed_dim"], side, side)
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != want:
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise UserError(f"{where}: output shape {got}, expected B×embed_dim×H/p×W/p = {want}")
    if not torch.isfinite(y).all():
        raise UserError(f"{where}: output has non-finite values")
