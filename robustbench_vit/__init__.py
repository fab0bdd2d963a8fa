"""robustbench-vit: how hard is an architecture to optimize? Patchify vs conv stems, and yours.

The public API (imported lazily, so the command line starts fast): `load_spec`, `run_study`, `load_results`,
`build_report`, `run_trial`, `build_model`, `compare_stem`.
"""

import importlib

__version__ = "0.1.0"

_API = {"load_spec": "study", "run_study": "study", "load_results": "analysis", "build_report": "report",
        "run_trial": "train", "build_model": "models", "compare_stem": "commands.compare"}


def __getattr__(name: str):
    """Import a public API name from its subpackage on first use."""
    if name not in _API:
        raise AttributeError(f"module 'robustbench_vit' has no attribute {name!r}")
    return getattr(importlib.import_module(f"robustbench_vit.{_API[name]}"), name)
