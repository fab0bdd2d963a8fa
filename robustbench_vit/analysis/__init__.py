"""Analysis of stored studies: the trial table, robustness metrics, statistical tests, comparisons and verdicts."""

from robustbench_vit.analysis.comparison import comparisons
from robustbench_vit.analysis.frame import curves, export_results, load_results
from robustbench_vit.analysis.metrics import model_metrics

__all__ = ["comparisons", "curves", "export_results", "load_results", "model_metrics"]
