"""Multi-sensor multi-target tracking, batched (struct-of-arrays) on every hot path.

Roles follow Stone Soup's vocabulary (predictor, updater, hypothesiser/gating, data associator, initiator,
deleter), each a small module here; the data is always a batch of all tracks or all candidate pairs.
"""

from skytrace.tracking.tracker import Tracker, TrackerConfig

__all__ = ["Tracker", "TrackerConfig"]
