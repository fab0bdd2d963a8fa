"""ModelSpec: a named size, a stem (registered name or import reference) and a trunk depth."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from robustbench_vit.models.sizes import parse_model_name


class ModelSpec(BaseModel):
    """What to build: `vit_p_micro` is ModelSpec(name="vit_p_micro", size="micro", stem="patchify")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    size: str
    stem: str = "patchify"  # registry name ("patchify", "conv", an entry point) or "file.py:Class" / "pkg.mod:Class"
    stem_options: dict[str, Any] = Field(default_factory=dict)
    depth: int | None = None  # None: the size's depth for patchify, FLOP-matched otherwise

    @classmethod
    def from_name(cls, name: str) -> "ModelSpec":
        """Parse a built-in name such as `vit_c_1gf` (raises UserError for unknown names)."""
        size, stem = parse_model_name(name)
        return cls(name=name, size=size, stem=stem)

    @property
    def is_plain_patchify(self) -> bool:
        """True for a size's plain patchify model: its depth is the size's, every other stem is FLOP-matched to it."""
        return self.stem == "patchify" and not self.stem_options
