"""Complexity measured on the real modules: parameters, multiply-adds (attention matmuls included), activations,
FLOP matching."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import torch
from torch.utils._python_dispatch import TorchDispatchMode  # what torch's own FlopCounterMode is built on
from torch.utils.flop_counter import FlopCounterMode

from robustbench_vit.errors import UserError
from robustbench_vit.models.reference import reference_blocks
from robustbench_vit.models.sizes import size_info
from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.models.vit import build_model

_aten = torch.ops.aten
# The paper's activations (Radosavovic et al. 2020; Xiao et al. 2021, Table 1): the output elements of every conv and
# matmul (linear layers and the attention's q·kᵀ and attn·v alike), as aten sees them once linear / matmul decompose.
ACTIVATION_OPS = (_aten.convolution.default, _aten.mm.default, _aten.addmm.default, _aten.bmm.default,
                  _aten.baddbmm.default)


@dataclass(frozen=True)
class Complexity:
    """What a model costs, measured on the built modules (`dataclasses.asdict` gives the JSON row)."""

    params: int  # number of parameters
    gmacs: float  # multiply-adds (G) of one forward pass of one image, attention matmuls included
    depth: int  # trunk blocks: the spec's, the size's for patchify, else FLOP-matched; RegNet blocks for a reference
    flop_ratio: float  # gmacs / the same size's patchify model's gmacs (references are not matched: by how much)
    activations: int = 0  # output elements of every conv and matmul in one forward pass of one image


class ActivationCounter(TorchDispatchMode):
    """Counts the output elements of every conv and matmul run under it (`total`)."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        """Run the op; add its output's size when it is a conv or a matmul."""
        out = func(*args, **(kwargs or {}))
        if func in ACTIVATION_OPS:
            self.total += out.numel()
        return out


def count_costs(model: torch.nn.Module, img_size: int, in_chans: int, device: str = "meta") -> tuple[float, int]:
    """(GMACs, activations) of one forward pass of one image, counted on `device` (meta: no memory, no compute).

    timm's fused attention (scaled_dot_product_attention) is switched to its explicit q·kᵀ and attn·v
    matmuls while counting, since torch's flop counter can miss the fused kernel on CPU and its N×N attention map
    is an activation.
    """
    fused = {m: m.fused_attn for m in model.modules() if hasattr(m, "fused_attn")}
    for m in fused:
        m.fused_attn = False
    try:
        x = torch.zeros(1, in_chans, img_size, img_size, device=device)
        with FlopCounterMode(display=False) as counter, ActivationCounter() as acts, torch.no_grad():
            model.to(device).eval()(x)
        return counter.get_total_flops() / 2 / 1e9, acts.total
    finally:
        for m, v in fused.items():
            m.fused_attn = v


def count_gmacs(model: torch.nn.Module, img_size: int, in_chans: int, device: str = "meta") -> float:
    """Multiply-adds (G) of one forward pass of one image (see `count_costs`)."""
    return count_costs(model, img_size, in_chans, device)[0]


class Measured(NamedTuple):
    """What one build of a spec at one depth measured (a tuple: `_measure(...)[1]` is the GMACs)."""

    params: int
    gmacs: float
    activations: int
    blocks: int  # a reference's RegNet blocks (0 for a ViT: its depth is the one it was built at)


def _measure(spec: ModelSpec, depth: int, num_classes: int) -> Measured:
    """Params, GMACs and activations of a spec at a given depth, built on the meta device (no memory, no init)."""
    return _measure_cached(spec.model_dump_json(), depth, num_classes)


@lru_cache(maxsize=None)
def _measure_cached(spec_json: str, depth: int, num_classes: int) -> Measured:
    """Cached body of _measure, keyed by the spec's JSON (specs hold dicts, so they are not hashable)."""
    spec = ModelSpec.model_validate_json(spec_json)
    info = size_info(spec.size)
    try:
        with torch.device("meta"):
            model = build_model(spec, num_classes=num_classes, depth=depth)
        return Measured(_params(model), *count_costs(model, info.img_size, info.in_chans), reference_blocks(model))
    except UserError:
        raise
    except Exception:  # a user stem that needs real data (.item(), CPU constants): count on the CPU instead
        pass
    try:
        model = build_model(spec, num_classes=num_classes, depth=depth)
        return Measured(_params(model), *count_costs(model, info.img_size, info.in_chans, device="cpu"),
                        reference_blocks(model))
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"stem {spec.stem!r} ({spec.name}): counting its FLOPs failed: {type(e).__name__}: {e}") from e


def _params(model: torch.nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in model.parameters())


def matched_depth(spec: ModelSpec, num_classes: int | None = None) -> int:
    """Depth whose total FLOPs are nearest the patchify model's of the same size (the paper's matching rule); a
    reference is not matched: its own blocks (RegNet), else 0."""
    info = size_info(spec.size)
    if spec.is_plain_patchify:
        return info.depth
    nc = num_classes or info.num_classes
    if spec.is_reference:
        return _measure(spec, 0, nc).blocks
    target = patchify_gmacs(spec.size, nc)
    base1, base2 = _measure(spec, 1, nc).gmacs, _measure(spec, 2, nc).gmacs
    per_block = base2 - base1
    guess = max(1, round((target - (base1 - per_block)) / per_block))
    candidates = [d for d in (guess - 1, guess, guess + 1) if d >= 1]
    return min(candidates, key=lambda d: abs(_measure(spec, d, nc).gmacs - target))


def patchify_gmacs(size: str, num_classes: int | None = None) -> float:
    """GMACs of the size's patchify baseline."""
    info = size_info(size)
    base = ModelSpec(name=f"vit_p_{size}", size=size, stem="patchify")
    return _measure(base, info.depth, num_classes or info.num_classes).gmacs


def model_complexity(spec: ModelSpec, num_classes: int | None = None) -> Complexity:
    """Params, GMACs, depth, activations, and the FLOP ratio to the patchify twin of the same size."""
    info = size_info(spec.size)
    nc = num_classes or info.num_classes
    depth = spec.depth if spec.depth is not None else matched_depth(spec, nc)
    m = _measure(spec, 0 if spec.is_reference else depth, nc)
    return Complexity(params=m.params, gmacs=m.gmacs, depth=depth, flop_ratio=m.gmacs / patchify_gmacs(spec.size, nc),
                      activations=m.activations)
