"""Optical / infrared cameras (EO/IR): azimuth and, usually, elevation of the target, no range, no delay.

Light arrives instantly, so the model is the bearing (and elevation) of the present position; otherwise optical
bearings are handled like acoustic ones: they go to the bearing pool and are triangulated across nodes to start
tracks (elevation, when given, sets the initial altitude), and a node's unexplained bearings feed the clutter map
(a lamp or a chimney on the horizon keeps one direction). Untrusted by default: low-cost cameras are fooled by
birds, aircraft lights and glints, so an optical track needs a second, independent sensor to be confirmed.
"""

from __future__ import annotations

import numpy as np

from skytrace.sensors.family import (
    SensorFamily,
    bearing_rows,
    local_vectors,
    nominal_sigmas,
    prepare_bearings,
    wrap_angle,
)


class OpticalFamily(SensorFamily):
    name = "optical"
    required_sensor_fields = ("lat", "lon", "alt_m", "bearing_sigma_deg")
    required_detection_fields = ("bearing_deg",)
    trusted_by_default = False
    initiation = "bearing"
    bearing_clutter_map = True
    reach_factor = 1.5

    def prepare(self, batch, sensors, frame):
        return prepare_bearings(batch, sensors, *nominal_sigmas(batch, sensors))

    def predict(self, x, s, geom, has_el):
        d = local_vectors(x[:, :3], s, geom)
        return bearing_rows(d, geom.M[s], np.zeros(x.shape[0]), has_el)

    def wrap(self, nu):
        nu[:, 0] = wrap_angle(nu[:, 0])
        return nu

    def dof(self, has_el):
        return 1 + has_el.astype(np.int64)


FAMILY = OpticalFamily()
