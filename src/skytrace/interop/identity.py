"""Cooperative identities: moved to :mod:`skytrace.io.identity` (the pipeline's track writer uses them, and the
pipeline sits below interop in the import layers). Re-exported here for interop's modules and earlier callers."""

from skytrace.io.identity import *  # noqa: F403
from skytrace.io.identity import COOPERATIVE_UAV, MANNED, IdentityMap, may_alert  # noqa: F401
