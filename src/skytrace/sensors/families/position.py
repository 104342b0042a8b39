"""Position reports: citizen sightings, Remote ID, ADS-B, plots of another system — a 3-D fix with its error.

z = the position in the tracker frame (linear model, H = [I 0]); R is the report's local-ENU covariance (horizontal
``pos_sigma_m``, vertical ``alt_sigma_m``, or ``pos_sigma_m`` when an altitude is given without sigma, or a wide
1000 m prior with the altitude 300 m above the frame when none is given) rotated into the frame. Untrusted by
default: the built-in position feed is citizen sightings, which are late, coarse and sometimes wrong.
"""

from __future__ import annotations

import numpy as np

from skytrace import geo
from skytrace.sensors.family import M_DIM, SensorFamily

DEFAULT_ALT_AGL_M = 300.0  # prior altitude of a report without one
NO_ALT_SIGMA_M = 1000.0


class PositionFamily(SensorFamily):
    name = "position"
    required_sensor_fields = ()
    required_detection_fields = ("lat", "lon", "pos_sigma_m")
    trusted_by_default = False
    initiation = "plot"

    def prepare(self, batch, sensors, frame):
        lat, lon = batch.lat, batch.lon
        has_alt = np.isfinite(batch.alt_m)
        alt = np.where(has_alt, batch.alt_m, frame.alt0_m + DEFAULT_ALT_AGL_M)
        z = np.column_stack(frame.to_enu(lat, lon, alt)).reshape(-1, M_DIM)
        sh = batch.pos_sigma_m
        sv = np.where(np.isfinite(batch.alt_sigma_m), batch.alt_sigma_m, np.where(has_alt, sh, NO_ALT_SIGMA_M))
        D = np.zeros((len(batch), 3, 3))
        D[:, 0, 0] = D[:, 1, 1] = sh**2
        D[:, 2, 2] = sv**2
        # rotate the report's local-ENU covariance into the frame: T = R_frame R_point^T
        T = np.einsum("ij,nkj->nik", frame.rotation, geo.enu_rotation(lat, lon).reshape(-1, 3, 3))
        return z, T @ D @ np.swapaxes(T, 1, 2), np.ones(len(batch), dtype=bool)

    def predict(self, x, s, geom, has_el):
        n = x.shape[0]
        H = np.zeros((n, M_DIM, 6))
        H[:, 0, 0] = H[:, 1, 1] = H[:, 2, 2] = 1.0
        return x[:, :3].copy(), H

    def gate_region(self, z, R, s, geom):
        return z[:, :2], 4 * np.sqrt(R[:, 0, 0] + R[:, 1, 1])

    def to_cartesian(self, z, R, s, geom):
        return z.copy(), R.copy()


FAMILY = PositionFamily()
