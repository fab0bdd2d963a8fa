"""Overrides from the command line: `--set KEY=VALUE`, a dotted key into the study file and a YAML scalar.

`--set train.epochs=20 --set design.points=64 --set space.lr.high=0.01` changes the study as an edit of its file
would, validated the same way (spec.parse_spec applies them). Overridden studies keep their results apart: the
study gets its own name (a suffix from a hash of the overrides, like a preset's `-PRESET`) and stores the overrides
with its spec.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import yaml

from robustbench_vit.errors import UserError, choices
from robustbench_vit.study.options import SLURM_KEYS
from robustbench_vit.study.spec import SETTINGS, Design, Dim, StudySpec

FIXED = ("name", "preset", "presets", "overrides")  # not overridable: the study's identity and its presets
_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")  # 1e-3: a float to users, a string to YAML 1.1


def _allowed_under(top: str) -> tuple[str, ...] | None:
    """The keys allowed under a nested field of a study file (None: the field takes one value)."""
    return {"train": SETTINGS, "space": SETTINGS, "design": tuple(Design.model_fields), "slurm": SLURM_KEYS}.get(top)


def check_key(key: str) -> None:
    """A UserError naming the key and the allowed keys where `key` is no dotted path into a study file."""
    parts = key.split(".")
    top = [f for f in StudySpec.model_fields if f not in FIXED]
    if parts[0] not in top:
        raise UserError(f"--set {key}: unknown key {parts[0]!r}; allowed: {choices(top)}")
    under = _allowed_under(parts[0])
    if len(parts) > 1 and under is None:
        raise UserError(f"--set {key}: {parts[0]!r} takes a value, not keys under it")
    if len(parts) > 1 and parts[1] not in under:
        what = "setting" if parts[0] in ("train", "space") else "key"
        raise UserError(f"--set {key}: unknown {what} {parts[1]!r} under {parts[0]!r}; allowed: {choices(under)}")
    if parts[0] == "space" and len(parts) > 2 and parts[2] not in Dim.model_fields:
        raise UserError(f"--set {key}: unknown key {parts[2]!r} of a searched dim; allowed: "
                        f"{choices(Dim.model_fields)}")


def _value(key: str, text: str) -> Any:
    """A --set value as YAML reads it (1e-3 included: a float)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UserError(f"--set {key}: {text!r} is not a YAML value ({getattr(e, 'problem', e)})") from None
    return float(value) if isinstance(value, str) and _FLOAT.fullmatch(value) else value


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """`KEY=VALUE` strings as {dotted key: value}, sorted by key (the last of a repeated key wins)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise UserError(f"--set {item!r}: expected KEY=VALUE, a dotted key into the study file (e.g. "
                            f"train.epochs=20)")
        check_key(key)
        out[key] = _value(key, text)
    return dict(sorted(out.items()))








def override_flags(overrides: dict[str, Any]) -> str:
    """The --set flags that give `overrides`, to repeat in a follow-up command ("" without)."""
    return "".join(f" --set {shlex.quote(f'{k}={v if isinstance(v, str) else json.dumps(v)}')}"
                   for k, v in overrides.items())
