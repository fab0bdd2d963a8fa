"""Provenance of a result: host, project git commit and package versions."""

from __future__ import annotations

import socket
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "timm", "optuna", "robustbench-vit")


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed versions of `packages` (None where one is not installed)."""
    out: dict[str, str | None] = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The project's git commit (with a `-dirty` suffix for local changes), or None outside a checkout."""
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha or None


def provenance() -> dict:
    """Where and with what a result was made: {"host", "commit", "versions"}."""
    return {"host": socket.gethostname(), "commit": git_commit(), "versions": package_versions()}
