"""Models: stems (registry + user stems), the ViT trunk on timm, named sizes, complexity and FLOP matching."""

from robustbench_vit.models.complexity import count_gmacs, matched_depth, model_complexity
from robustbench_vit.models.sizes import SIZES, builtin_model_names, parse_model_name, size_info
from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.models.stems import ConvStem, PatchifyStem, get_stem, register_stem, stem_names
from robustbench_vit.models.validate import validate_stem
from robustbench_vit.models.vit import build_model

__all__ = [
    "SIZES", "ConvStem", "ModelSpec", "PatchifyStem", "build_model", "builtin_model_names", "count_gmacs",
    "get_stem", "matched_depth", "model_complexity", "model_table", "parse_model_name", "register_stem",
    "size_info", "stem_names", "validate_stem",
]


def model_table() -> list[dict]:
    """One row per built-in model: name, stem, depth, params, gmacs, flop_ratio, img_size."""
    rows = []
    for name in builtin_model_names():
        spec = ModelSpec.from_name(name)
        c = model_complexity(spec)
        rows.append({"name": name, "stem": spec.stem, "size": spec.size, "img_size": SIZES[spec.size]["img_size"], **c})
    return rows
