"""Optical / infrared cameras (EO/IR): azimuth and, usually, elevation of the target, no range, no delay.

Light arrives instantly, so the model is the bearing (and elevation) of the present position (the
:class:`~skytrace.sensors.family.BearingFamily` defaults); otherwise optical bearings are handled like acoustic
ones: they go to the bearing pool and are triangulated across nodes to start tracks (elevation, when given, sets
the initial altitude), and a node's unexplained bearings feed the clutter map (a lamp or a chimney on the horizon
keeps one direction). Untrusted by default: low-cost cameras are fooled by birds, aircraft lights and glints, so
an optical track needs a second, independent sensor to be confirmed. Gate reach: 1.5 x ``max_range_m``.
"""

from __future__ import annotations

from skytrace.sensors.family import BearingFamily


class OpticalFamily(BearingFamily):
    name = "optical"
    max_plausible_range_m = 100_000.0  # a small drone is not resolved by a camera much beyond tens of km
    trusted_by_default = False
    reach_factor = 1.5
    silence_law = "range"  # a camera that should see a track but reports nothing (skytrace.tracking.silence)


FAMILY = OpticalFamily()
