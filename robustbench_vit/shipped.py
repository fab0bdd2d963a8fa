"""Where the shipped files are found: the studies folder (study YAML files and claims/paper.yaml)."""

from __future__ import annotations

import sys
from pathlib import Path


def study_dirs() -> list[Path]:
    """Where study names are looked up: ./studies, then the built-ins (the repository's studies folder for an
    editable install, else the copy a wheel installs under <prefix>/share)."""
    dirs = [Path.cwd() / "studies", Path(__file__).resolve().parents[1] / "studies",
            Path(sys.prefix) / "share" / "robustbench-vit" / "studies"]
    return list(dict.fromkeys(d.resolve() for d in dirs))
