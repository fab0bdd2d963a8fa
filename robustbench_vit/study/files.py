"""Study files: where study YAML files are found by name, listing them, and loading one into a checked StudySpec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from robustbench_vit.errors import UserError
from robustbench_vit.shipped import study_dirs
from robustbench_vit.study.plan import plan
from robustbench_vit.study.spec import StudySpec, parse_spec


def find_spec_file(name_or_path: str) -> Path:
    """A study file by path (anything with a suffix or slash) or by name in `study_dirs()`."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or "/" in name_or_path:
        if not p.is_file():
            raise UserError(f"{name_or_path}: no such study file")
        return p
    for d in study_dirs():
        for suffix in (".yaml", ".yml"):
            if (d / f"{name_or_path}{suffix}").is_file():
                return d / f"{name_or_path}{suffix}"
    known = sorted({f.stem for d in study_dirs() if d.is_dir() for f in d.glob("*.y*ml")})
    raise UserError(f"study {name_or_path!r} not found in {', '.join(map(str, study_dirs()))}; "
                    f"known: {', '.join(known) or 'none'}")


def load_spec(name_or_path: str, preset: str | None = None, overrides: dict[str, Any] | None = None) -> StudySpec:
    """Load and validate a study by name (./studies, then the built-ins) or path, with an optional preset and
    --set overrides ({dotted key: value}, see study/overrides.py)."""
    path = find_spec_file(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        problem = str(getattr(e, "problem", e))
        if "tag:yaml.org,2002:python/" in problem:  # safe_load never builds Python objects; say so plainly
            tag = problem.split("'")[1] if problem.count("'") >= 2 else "python"
            raise UserError(f"{path}:{line} the Python tag {tag.replace('tag:yaml.org,2002:', '!!')} is refused: "
                            f"a study file is data (code comes only from --stem and stems: paths)") from None
        raise UserError(f"{path}:{line} invalid YAML ({problem})") from None
    spec = parse_spec(raw, str(path), preset, overrides=overrides)
    plan(spec)  # checks every point gives a valid TrialConfig
    return spec


def study_name(name_or_path: str) -> str:
    """The study a command argument names: a YAML path's study (its `name:`, else the file's stem), else itself."""
    return load_spec(name_or_path).name if name_or_path.endswith((".yaml", ".yml")) else name_or_path


def list_specs() -> list[Path]:
    """All study files reachable by name (./studies shadows the built-ins)."""
    seen: dict[str, Path] = {}
    for d in study_dirs():
        for f in sorted(d.glob("*.y*ml")) if d.is_dir() else []:
            seen.setdefault(f.stem, f)
    return sorted(seen.values(), key=lambda p: p.stem)
