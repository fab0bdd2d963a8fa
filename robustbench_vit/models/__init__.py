"""Models: stems (registry + user stems), the ViT trunk on timm, named sizes, complexity and FLOP matching."""

from dataclasses import asdict

from robustbench_vit.models import zoo  # noqa: F401  (registers the zoo stems)
from robustbench_vit.models.complexity import Complexity, count_gmacs, matched_depth, model_complexity
from robustbench_vit.models.sizes import BUILTIN_STEMS, SIZES, Size, builtin_model_names, parse_model_name, size_info
from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.models.stems import (ConvStem, PatchifyStem, Stem, get_stem, register_stem, registered_stems,
                                          stem_names)
from robustbench_vit.models.validate import validate_stem
from robustbench_vit.models.vit import build_model

__all__ = [
    "SIZES", "Complexity", "ConvStem", "ModelSpec", "PatchifyStem", "Size", "Stem", "build_model",
    "builtin_model_names", "count_gmacs", "get_stem", "matched_depth", "model_complexity", "model_table",
    "parse_model_name", "register_stem", "size_info", "stem_names", "stem_table", "validate_stem", "zoo",
]


def stem_table(size: str = "micro") -> list[dict]:
    """One row per registered stem at `size`: stem, model name, citation, params, gmacs, depth, flop_ratio."""
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
    """One row per built-in model: name, stem, depth, params, gmacs, flop_ratio, img_size."""
    rows = []
    for name in builtin_model_names():
        spec = ModelSpec.from_name(name)
        c = asdict(model_complexity(spec))
        rows.append({"name": name, "stem": spec.stem, "size": spec.size, "img_size": SIZES[spec.size].img_size, **c})
    return rows
