"""Evaluation: tracking metrics (GOSPA, OSPA, RMSE, breaks, ID switches) and alert-quality metrics."""

from skytrace.evaluation.tracking import TrackingScore, evaluate_tracks, gospa, ospa

__all__ = ["TrackingScore", "evaluate_tracks", "gospa", "ospa"]
