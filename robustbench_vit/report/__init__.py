"""Rendering: a study's report (HTML and PDF), its figures, the scorecard and the leaderboard pages."""

from robustbench_vit.report.build import build_report

__all__ = ["build_report"]
