"""Models: stems (registry + user stems), the ViT trunk on timm, reference models (RegNetY and any timm model),
named sizes, complexity (params, GMACs, activations) and FLOP matching."""

from dataclasses import asdict

from robustbench_vit.models import zoo  # noqa: F401  (registers the zoo stems)
from robustbench_vit.models.complexity import Complexity, count_costs, count_gmacs, matched_depth, model_complexity
from robustbench_vit.models.reference import REGNETY_CONFIGS, regnety_name, regnety_names
from robustbench_vit.models.sizes import BUILTIN_STEMS, SIZES, Size, builtin_model_names, parse_model_name, size_info
from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.models.stems import (ConvStem, PatchifyStem, Stem, get_stem, register_stem, registered_stems,
                                          stem_names)
from robustbench_vit.models.validate import validate_stem
from robustbench_vit.models.vit import build_model

__all__ = [
    "REGNETY_CONFIGS", "SIZES", "Complexity", "ConvStem", "ModelSpec", "PatchifyStem", "Size", "Stem", "build_model",
    "builtin_model_names", "count_costs", "count_gmacs", "get_stem", "matched_depth", "model_complexity",
    "model_table", "parse_model_name", "reference_row", "register_stem", "regnety_name", "regnety_names", "size_info",
    "stem_names", "stem_table", "validate_stem", "zoo",
]


def stem_table(size: str = "micro") -> list[dict]:
    """One row per registered stem at `size`: stem, model name, citation, params, gmacs, depth, flop_ratio,
    activations."""
    size_info(size)  # an unknown size is one error line
    keys = {v: k for k, v in BUILTIN_STEMS.items()}
    rows = []
    for stem, cls in registered_stems().items():
        spec = ModelSpec.from_name(f"vit_{keys.get(stem, stem)}_{size}")
        # getattr: register_stem takes any nn.Module class, not only a Stem with its typed `citation`
        rows.append({"stem": stem, "model": spec.name, "citation": getattr(cls, "citation", ""),
                     **asdict(model_complexity(spec))})
    return rows


def model_table() -> list[dict]:
    """One row per built-in model, each size's ViT_P, ViT_C then RegNetY: name, stem, size, img_size, reference (the
    RegNetY's config, "" for a ViT), then the Complexity fields (params, gmacs, depth, flop_ratio, activations)."""
    rows = []
    for size in SIZES:
        for name in [f"vit_{k}_{size}" for k in BUILTIN_STEMS] + [regnety_name(size)]:
            spec = ModelSpec.from_name(name)
            config = REGNETY_CONFIGS[size].name if spec.is_reference else ""
            rows.append({"name": name, "stem": spec.stem, "size": size, "img_size": SIZES[size].img_size,
                         "reference": config, **asdict(model_complexity(spec))})
    return rows


def reference_row(name: str, size: str) -> dict:
    """A model named on the command line (`models --model timm:resnet18 --size micro`), as a model_table row."""
    spec = ModelSpec.from_name(name, size=size)
    return {"name": name, "stem": spec.stem, "size": spec.size, "img_size": size_info(spec.size).img_size,
            "reference": spec.reference or "", **asdict(model_complexity(spec))}
