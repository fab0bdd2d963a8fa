"""Complexity measured on the real modules: parameters, multiply-adds (attention matmuls included), FLOP matching."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
from torch.utils.flop_counter import FlopCounterMode

from robustbench_vit.errors import UserError
from robustbench_vit.models.sizes import size_info
from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.models.vit import build_model


@dataclass(frozen=True)
class Complexity:
    """What a model costs, measured on the built modules (`dataclasses.asdict` gives the JSON row)."""

    params: int  # number of parameters
    gmacs: float  # multiply-adds (G) of one forward pass of one image, attention matmuls included
    depth: int  # trunk blocks: the spec's, the size's for patchify, else FLOP-matched
    flop_ratio: float  # gmacs / the same size's patchify model's gmacs


def count_gmacs(model: torch.nn.Module, img_size: int, in_chans: int, device: str = "meta") -> float:
    """Multiply-adds (G) of one forward pass of one image, counted on `device` (meta: no memory, no compute).

    timm's fused attention (scaled_dot_product_attention) is switched to its explicit q·kᵀ and attn·v
    matmuls while counting, since torch's flop counter can miss the fused kernel on CPU.
    """
    fused = {m: m.fused_attn for m in model.modules() if hasattr(m, "fused_attn")}
    for m in fused:
        m.fused_attn = False
    try:
        x = torch.zeros(1, in_chans, img_size, img_size, device=device)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model.to(device).eval()(x)
        return counter.get_total_flops() / 2 / 1e9
    finally:
        for m, v in fused.items():
            m.fused_attn = v


def _measure(spec: ModelSpec, depth: int, num_classes: int) -> tuple[int, float]:
    """(params, GMACs) of a spec at a given depth, built on the meta device (no memory, no init cost)."""
    return _measure_cached(spec.model_dump_json(), depth, num_classes)


@lru_cache(maxsize=None)
def _measure_cached(spec_json: str, depth: int, num_classes: int) -> tuple[int, float]:
    """Cached body of _measure, keyed by the spec's JSON (specs hold dicts, so they are not hashable)."""
    spec = ModelSpec.model_validate_json(spec_json)
    info = size_info(spec.size)
    try:
        with torch.device("meta"):
            model = build_model(spec, num_classes=num_classes, depth=depth)
        return _params(model), count_gmacs(model, info.img_size, info.in_chans)
    except UserError:
        raise
    except Exception:  # a user stem that needs real data (.item(), CPU constants): count on the CPU instead
        pass
    try:
        model = build_model(spec, num_classes=num_classes, depth=depth)
        return _params(model), count_gmacs(model, info.img_size, info.in_chans, device="cpu")
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"stem {spec.stem!r} ({spec.name}): counting its FLOPs failed: {type(e).__name__}: {e}") from e


def _params(model: torch.nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in model.parameters())


def matched_depth(spec: ModelSpec, num_classes: int | None = None) -> int:
    """Depth whose total FLOPs are nearest the patchify model's of the same size (the paper's matching rule)."""
    info = size_info(spec.size)
    if spec.is_plain_patchify:
        return info.depth
    nc = num_classes or info.num_classes
    target = patchify_gmacs(spec.size, nc)
    base1, base2 = _measure(spec, 1, nc)[1], _measure(spec, 2, nc)[1]
    per_block = base2 - base1
    guess = max(1, round((target - (base1 - per_block)) / per_block))
    candidates = [d for d in (guess - 1, guess, guess + 1) if d >= 1]
    return min(candidates, key=lambda d: abs(_measure(spec, d, nc)[1] - target))


def patchify_gmacs(size: str, num_classes: int | None = None) -> float:
    """GMACs of the size's patchify baseline."""
    info = size_info(size)
    base = ModelSpec(name=f"vit_p_{size}", size=size, stem="patchify")
    return _measure(base, info.depth, num_classes or info.num_classes)[1]


def model_complexity(spec: ModelSpec, num_classes: int | None = None) -> Complexity:
    """Params, GMACs, depth, and the FLOP ratio to the patchify twin of the same size."""
    info = size_info(spec.size)
    nc = num_classes or info.num_classes
    depth = spec.depth if spec.depth is not None else matched_depth(spec, nc)
    params, gmacs = _measure(spec, depth, nc)
    return Complexity(params=params, gmacs=gmacs, depth=depth, flop_ratio=gmacs / patchify_gmacs(spec.size, nc))
