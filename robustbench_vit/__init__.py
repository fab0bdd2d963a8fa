"""robustbench-vit: how hard is an architecture to optimize? Patchify vs conv stems, and yours."""

__version__ = "0.1.0"
