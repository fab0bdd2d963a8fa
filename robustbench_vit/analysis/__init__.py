"""Analysis of stored studies: the trial table, robustness metrics, figures and reports."""

from robustbench_vit.analysis.frame import curves, export_results, load_results
from robustbench_vit.analysis.comparison import comparisons
from robustbench_vit.analysis.metrics import model_metrics
from robustbench_vit.analysis.report import build_report

__all__ = ["build_report", "comparisons", "curves", "export_results", "load_results", "model_metrics"]
