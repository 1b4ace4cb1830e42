"""Task metrics: re-exported from :mod:`skrel.evaluation`, where the one table lives."""

from .evaluation import METRICS, Metric, evaluate, make_scorer

__all__ = ["METRICS", "Metric", "evaluate", "make_scorer"]
