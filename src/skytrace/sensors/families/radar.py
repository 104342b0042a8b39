"""Radar plots: (azimuth, elevation, slant range) in the radar's local ENU, Gaussian errors of the sensor's sigmas.

The measurement model is the exact spherical one (no converted-measurement approximation in the update); a plot
also converts to a 3-D fix with a first-order covariance (Jacobian of (e, n, u) w.r.t. (az, el, r)) to start
tracks and to centre its gate. Trusted by default: a surveillance radar's plots come from an operator's own,
calibrated system. Physics of detection and clutter for the simulator: :mod:`skytrace.sensors.radar`.
"""

from __future__ import annotations

import numpy as np

from skytrace.sensors.family import M_DIM, SensorFamily, angles_and_jacobian, local_vectors, wrap_angle


class RadarFamily(SensorFamily):
    name = "radar"
    required_sensor_fields = ("lat", "lon", "alt_m", "bearing_sigma_deg", "range_sigma_m")
    required_detection_fields = ("bearing_deg", "elevation_deg", "range_m")
    trusted_by_default = True
    initiation = "plot"
    max_plausible_range_m = 600_000.0  # the radar horizon of a 30 km-altitude target from a high mast is ~700 km
    default_pd = 0.8  # a small drone near the radar's nominal range (skytrace.sensors.radar: ~1 well inside)

    def prepare(self, batch, sensors, frame):
        n, s = len(batch), batch.sensor
        z = np.column_stack([np.radians(batch.bearing_deg), np.radians(batch.elevation_deg), batch.range_m])
        sig_e = np.where(np.isfinite(sensors.elevation_sigma_deg[s]), sensors.elevation_sigma_deg[s],
                         2 * sensors.bearing_sigma_deg[s])
        R = np.zeros((n, M_DIM, M_DIM))
        R[:, 0, 0] = np.radians(sensors.bearing_sigma_deg[s]) ** 2
        R[:, 1, 1] = np.radians(sig_e) ** 2
        R[:, 2, 2] = sensors.range_sigma_m[s] ** 2
        return z.reshape(-1, M_DIM), R, np.ones(n, dtype=bool)

    def predict(self, x, s, geom, has_el):
        d = local_vectors(x[:, :3], s, geom)
        az, el, r, j_az, j_el, j_r = angles_and_jacobian(d)
        M = geom.M[s]
        H = np.zeros((x.shape[0], M_DIM, 6))
        H[:, 0, :3] = np.einsum("ni,nij->nj", j_az, M)
        H[:, 1, :3] = np.einsum("ni,nij->nj", j_el, M)
        H[:, 2, :3] = np.einsum("ni,nij->nj", j_r, M)
        return np.column_stack([az, el, r]), H

    def wrap(self, nu):
        nu[:, 0] = wrap_angle(nu[:, 0])
        return nu

    def gate_region(self, z, R, s, geom):
        p, _ = self._fix(z, s, geom)
        return p[:, :2], 4 * (np.sqrt(R[:, 2, 2]) + z[:, 2] * np.sqrt(R[:, 0, 0]))

    def to_cartesian(self, z, R, s, geom):
        p, J = self._fix(z, s, geom)
        Mt = np.swapaxes(geom.M[s], 1, 2)
        C = J @ R @ np.swapaxes(J, 1, 2)
        return p, Mt @ C @ np.swapaxes(Mt, 1, 2)

    @staticmethod
    def _fix(z, s, geom):
        """Frame position of plots and the Jacobian of local (e, n, u) w.r.t. (az, el, r)."""
        az, el, r = z[:, 0], z[:, 1], z[:, 2]
        ce, se, ca, sa = np.cos(el), np.sin(el), np.cos(az), np.sin(az)
        d_loc = r[:, None] * np.column_stack([sa * ce, ca * ce, se])
        p = np.einsum("nji,nj->ni", geom.M[s], d_loc - geom.b[s])
        J = np.zeros((z.shape[0], 3, 3))
        J[:, 0, 0], J[:, 0, 1], J[:, 0, 2] = r * ca * ce, -r * sa * se, sa * ce
        J[:, 1, 0], J[:, 1, 1], J[:, 1, 2] = -r * sa * ce, -r * ca * se, ca * ce
        J[:, 2, 1], J[:, 2, 2] = r * ce, se
        return p, J


FAMILY = RadarFamily()
