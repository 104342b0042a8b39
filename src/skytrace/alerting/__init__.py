"""Alerting: alert policies (per-zone decisions from tracks and reports) and their outputs (alerts.jsonl, CAP).

``create_policy(name, zones, sensors, config)`` builds a registered :class:`AlertPolicy`: ``evidence`` (default,
:mod:`skytrace.alerting.evidence`) or ``zone`` (:class:`AlertEngine`, confirmed tracks only).
"""

from skytrace.alerting.engine import AlertConfig, AlertEngine, AlertEvent, ZoneAlertConfig
from skytrace.alerting.evidence import EvidenceAlertConfig, EvidencePolicy
from skytrace.alerting.policy import (
    DEFAULT_POLICY,
    AlertPolicy,
    config_from_dict,
    create_policy,
    policy_names,
    register_policy,
)

__all__ = ["DEFAULT_POLICY", "AlertConfig", "AlertEngine", "AlertEvent", "AlertPolicy", "EvidenceAlertConfig",
           "EvidencePolicy", "ZoneAlertConfig", "config_from_dict", "create_policy", "policy_names",
           "register_policy"]
