"""Checks run before a study writes anything: its dataset loads, and every user stem builds at every size."""

from __future__ import annotations

from robustbench_vit.errors import UserError
from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.study.spec import StudySpec


def check_data(spec: StudySpec, models: list[ModelSpec]) -> int:
    """Load the study's dataset once (UserError if its folder is missing or malformed); returns its class count.

    Each model's input size must match the data (the trainer would refuse every trial otherwise).
    """
    from robustbench_vit.data import load_dataset
    from robustbench_vit.models import size_info

    infos = {m.name: size_info(m.size) for m in models}
    data = load_dataset(spec.dataset, spec.data_root, img_size=next(iter(infos.values()))["img_size"])
    for name, info in infos.items():
        if (info["in_chans"], info["img_size"]) != (data.in_chans, data.img_size):
            raise UserError(f"{spec.source}: model {name!r} takes {info['in_chans']}×{info['img_size']}px "
                            f"images but dataset {spec.dataset!r} has {data.in_chans}×{data.img_size}px")
    return data.num_classes


def check_stems(models: list[ModelSpec], num_classes: int) -> None:
    """Build every model with a user stem (or stem options) once: UserError naming the model if it fails."""
    from robustbench_vit.models import model_complexity, validate_stem
    from robustbench_vit.models.sizes import BUILTIN_STEMS

    for model in models:
        if model.stem in BUILTIN_STEMS.values() and not model.stem_options:
            continue
        validate_stem(model)
        try:
            model_complexity(model, num_classes)
        except UserError:
            raise
        except Exception as e:  # noqa: BLE001 — any failure of user code is the user's to fix
            raise UserError(f"stem {model.stem!r} ({model.name}): building the model failed: "
                            f"{type(e).__name__}: {e}") from None


def preflight(spec: StudySpec, models: list[ModelSpec]) -> None:
    """Everything that can be checked before storage is written and trials are launched."""
    check_stems(models, check_data(spec, models))
