"""Stems: the registry, the two paper stems, and loading user stems by import reference or entry point.

The stem contract: `Stem(in_chans: int, embed_dim: int, patch_size: int, **options)` is a torch.nn.Module
whose forward maps B×C×H×W to a B×embed_dim×(H/p)×(W/p) feature map. A class whose constructor takes `img_size`
follows timm's embed-layer contract instead (timm.layers.PatchEmbed and the embed layers papers ship for timm):
`Embed(img_size=, patch_size=, in_chans=, embed_dim=, ...)` with `num_patches`, mapping B×C×H×W to B×N×D tokens;
it is used as it is (see `timm_embed_layer`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import sys
from functools import partial
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from robustbench_vit.errors import UserError, choices

ENTRY_POINT_GROUP = "robustbench_vit.stems"
_REGISTRY: dict[str, type[nn.Module]] = {}


def register_stem(name: str):
    """Class decorator: make a stem available by name (as timm's register_model does for models)."""

    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        """Add the class to the registry under `name`."""
        _REGISTRY[name] = cls
        return cls

    return wrap


class Stem(nn.Module):
    """Base of the built-in and zoo stems, declaring the metadata the `stems` listing reads (a class registered
    with `register_stem` need not derive from it)."""

    citation: ClassVar[str] = ""  # where the stem is published: authors, year, title (venue); "" if unpublished


@register_stem("patchify")
class PatchifyStem(Stem):
    """The original ViT stem: one p×p stride-p convolution with bias."""

    citation = "Dosovitskiy et al. 2021, An Image is Worth 16x16 Words (ViT, ICLR)"

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int, **options):
        """One conv from in_chans to embed_dim with kernel and stride patch_size."""
        super().__init__()
        if options:
            raise UserError(f"patchify stem takes no options, got {choices(options)}")
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B×C×H×W → B×D×H/p×W/p."""
        return self.proj(x)


@register_stem("conv")
class ConvStem(Stem):
    """The paper's conv stem: 3×3 convs (no bias) + BN + ReLU at the given strides, then a 1×1 conv to D."""

    citation = "Xiao et al. 2021, Early Convolutions Help Transformers See Better (NeurIPS)"

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int, *, widths=(), strides=()):
        """3×3 convs of the given widths and strides (which must multiply to patch_size), then 1×1 to embed_dim."""
        super().__init__()
        if not widths or len(widths) != len(strides):
            raise UserError(f"conv stem needs widths and strides of equal length, got {widths} / {strides}")
        total = 1
        for s in strides:
            total *= s
        if total != patch_size:
            raise UserError(f"conv stem strides {list(strides)} multiply to {total}, not patch size {patch_size}")
        layers, c = [], in_chans
        for w, s in zip(widths, strides):
            layers += [nn.Conv2d(c, w, 3, stride=s, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            c = w
        layers.append(nn.Conv2d(c, embed_dim, 1))
        self.stem = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B×C×H×W → B×D×H/p×W/p."""
        return self.stem(x)


def follows_timm_contract(cls: type[nn.Module]) -> bool:
    """True for a timm embed layer: its constructor takes `img_size` (stems take in_chans, embed_dim, patch_size)."""
    try:
        return "img_size" in inspect.signature(cls).parameters
    except (TypeError, ValueError):  # no signature to read: the stem contract
        return False


def _build_timm_embed(cls: type[nn.Module], options: dict, **timm_kwargs) -> nn.Module:
    """Build a timm embed layer from VisionTransformer's arguments, passing those its constructor takes (all of them
    if it takes **kwargs: older or smaller classes lack bias, dynamic_img_pad, device, dtype), plus `options`."""
    params = inspect.signature(cls).parameters
    takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
    return cls(**{k: v for k, v in timm_kwargs.items() if takes_all or k in params}, **options)


def timm_embed_layer(cls: type[nn.Module], options: dict):
    """The `embed_layer` timm's VisionTransformer calls for a timm-contract class: the class itself, unchanged, with
    the keyword arguments it does not take left out."""
    return partial(_build_timm_embed, cls, options)


def _load_file(path: Path):
    """Import a Python file as a module, once per process (workers import it again from the same path)."""
    name = f"robustbench_vit_user_{abs(hash(str(path.resolve())))}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the user's file: report, don't trace
        del sys.modules[name]
        raise UserError(f"{path}: importing the stem file failed: {type(e).__name__}: {e}") from e
    return module


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    """Stems that installed packages ship under the `robustbench_vit.stems` entry-point group."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def get_stem(ref: str) -> type[nn.Module]:
    """Resolve a stem: registry name, entry-point name, `path/to/file.py:Class` or `pkg.module:Class`."""
    if ref in _REGISTRY:
        return _REGISTRY[ref]
    eps = _entry_points()
    if ref in eps:
        return eps[ref].load()
    if ":" not in ref:
        raise UserError(f"unknown stem {ref!r}; allowed: {choices([*_REGISTRY, *eps])}, "
                        "or an import reference 'file.py:Class' / 'package.module:Class'")
    where, _, attr = ref.rpartition(":")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise UserError(f"stem file {where!r} does not exist (from {ref!r})")
        module = _load_file(path)
    else:
        try:
            module = importlib.import_module(where)
        except Exception as e:
            raise UserError(f"cannot import module {where!r} for stem {ref!r}: {type(e).__name__}: {e}") from e
    cls = getattr(module, attr, None)
    if cls is None or not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise UserError(f"{ref!r}: {where} has no torch.nn.Module class named {attr!r}")
    return cls


def absolute_ref(ref: str, base: Path | None = None) -> str:
    """`file.py:Class` with its file made absolute, so worker processes started anywhere can import it.

    Without `base` the file is taken from the working folder; with `base` (a study file's folder) only a file
    found there is rewritten. Other references are returned as they are.
    """
    where, sep, attr = ref.rpartition(":")
    if not (sep and where.endswith(".py")) or Path(where).is_absolute():
        return ref
    if base is None:
        return f"{Path(where).resolve()}:{attr}"
    return f"{(base / where).resolve()}:{attr}" if (base / where).is_file() else ref


def stem_source(ref: str) -> dict[str, str] | None:
    """The file defining a user stem's class and the SHA-256 of its bytes; None for the built-in stems.

    Stored with a study, it tells an edited stem file from the one its trials were trained with. A reference model
    (RegNetY, timm) has no stem: "" gives None.
    """
    if not ref or ref in _REGISTRY:
        return None
    try:
        path = inspect.getsourcefile(get_stem(ref))
    except TypeError:  # defined without a source file
        return None
    if not path or not Path(path).is_file():
        return None
    return {"file": str(Path(path).resolve()), "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest()}


def registered_stems() -> dict[str, type[nn.Module]]:
    """The registry: name → class, the baselines first, then the zoo in registration order."""
    return dict(_REGISTRY)


def zoo_names() -> list[str]:
    """Registered stems other than the two baselines: each is also a model `vit_<name>_<size>`."""
    return sorted(set(_REGISTRY) - {"patchify", "conv"})


def stem_names() -> list[str]:
    """Registered and installed stem names."""
    return sorted({*_REGISTRY, *_entry_points()})
