"""Alerting: a per-zone alert state machine driven by the threat assessment, and its outputs (alerts.jsonl, CAP)."""

from skytrace.alerting.engine import AlertEngine, AlertEvent, AlertPolicy

__all__ = ["AlertEngine", "AlertEvent", "AlertPolicy"]
