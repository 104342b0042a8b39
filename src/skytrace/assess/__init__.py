"""Threat assessment: where each tracked drone may go in the next minutes, and which zones it may enter when."""

from skytrace.assess.predict import AssessConfig, Assessment, Assessor, assess

__all__ = ["AssessConfig", "Assessment", "Assessor", "assess"]
