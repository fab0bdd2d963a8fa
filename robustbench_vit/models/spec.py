"""ModelSpec: a named size, a stem (registered name or import reference) and a trunk depth, or a reference model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from robustbench_vit.models.reference import parse_reference
from robustbench_vit.models.sizes import parse_model_name


class ModelSpec(BaseModel):
    """What to build: `vit_p_micro` is ModelSpec(name="vit_p_micro", size="micro", stem="patchify"); `regnety_micro`
    is ModelSpec(name="regnety_micro", size="micro", reference="regnety", stem="")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    size: str  # "" only for a timm reference before its study (or `train --size`) gives it one
    stem: str = "patchify"  # registry name ("patchify", "conv", an entry point) or "file.py:Class" / "pkg.mod:Class"
    stem_options: dict[str, Any] = Field(default_factory=dict)
    depth: int | None = None  # None: the size's depth for patchify, FLOP-matched otherwise
    # a reference model instead of a ViT: "regnety" (the size's RegNetY) or "timm:NAME" (any timm model); no stem
    reference: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_stem_for_references(cls, data: Any) -> Any:
        """A reference has no ViT stem (stem ""), no stem options and no trunk depth of ours."""
        if isinstance(data, dict) and data.get("reference"):
            if data.get("stem_options") or data.get("depth") is not None:
                raise ValueError(f"reference model {data.get('name')!r} takes no stem options or depth")
            data = {**data, "stem": ""}
        return data

    @classmethod
    def from_name(cls, name: str, size: str | None = None) -> "ModelSpec":
        """Parse a built-in name such as `vit_c_1gf`, `regnety_4gf` or `timm:resnet18` (a timm model takes `size`, else
        "" until its study gives it one); raises UserError for unknown names."""
        reference = parse_reference(name)
        if reference is not None:
            return cls(name=name, size=reference[0] or size or "", reference=reference[1])
        size, stem = parse_model_name(name)
        return cls(name=name, size=size, stem=stem)

    def sized(self, size: str) -> "ModelSpec":
        """This spec at `size` if it has none yet (a timm reference named without one), else itself."""
        return self if self.size else self.model_copy(update={"size": size})

    @property
    def is_reference(self) -> bool:
        """True for a reference model (RegNetY, a timm model): not a ViT, not FLOP-matched, no stem."""
        return self.reference is not None

    @property
    def is_plain_patchify(self) -> bool:
        """True for a size's plain patchify model: its depth is the size's, every other stem is FLOP-matched to it."""
        return self.stem == "patchify" and not self.stem_options and not self.is_reference
