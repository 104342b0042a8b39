"""Geodesy: WGS84 geodetic <-> ECEF <-> local East-North-Up, bearings and elevations.

Thin, vectorised wrappers around pymap3d (well tested, pure numpy), so that the rest of skytrace speaks one
vocabulary: ``lat``/``lon`` in degrees, ``alt_m`` above the WGS84 ellipsoid, ENU in metres, bearings true-north
clockwise in [0, 360). Nothing here is hand-written geodesy except the rotation matrix between ECEF and ENU
(which is the textbook definition) and the 4/3-Earth radar horizon.

References: pymap3d (M. Hirsch); B. Hofmann-Wellenhof et al., *GNSS* (2008), ch. 10 for the ENU rotation;
M. Skolnik, *Radar Handbook* (3rd ed.), ch. 26 for the effective-Earth radar horizon.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pymap3d

WGS84_A_M = 6_378_137.0
EARTH_RADIUS_M = 6_371_008.8  # mean radius, for approximations only (radar horizon, grids)
K_EFFECTIVE_EARTH = 4.0 / 3.0  # standard atmosphere refraction


def geodetic_to_ecef(lat, lon, alt_m):
    """WGS84 geodetic (deg, deg, m) -> ECEF (x, y, z) in metres."""
    return pymap3d.geodetic2ecef(lat, lon, alt_m)


def ecef_to_geodetic(x, y, z):
    """ECEF metres -> WGS84 (lat deg, lon deg, alt m)."""
    return pymap3d.ecef2geodetic(x, y, z)


def geodetic_to_enu(lat, lon, alt_m, lat0, lon0, alt0_m):
    """Point(s) -> local ENU metres about the origin (lat0, lon0, alt0_m)."""
    return pymap3d.geodetic2enu(lat, lon, alt_m, lat0, lon0, alt0_m)


def enu_to_geodetic(e, n, u, lat0, lon0, alt0_m):
    """Local ENU metres about (lat0, lon0, alt0_m) -> WGS84 (lat, lon, alt_m)."""
    return pymap3d.enu2geodetic(e, n, u, lat0, lon0, alt0_m)


def enu_rotation(lat0, lon0) -> np.ndarray:
    """Rotation matrix R with rows (east, north, up) in ECEF axes: ``enu = R @ (ecef - ecef0)``.

    Vectorised: for arrays of N origins returns (N, 3, 3).
    """
    la = np.radians(np.asarray(lat0, dtype=float))
    lo = np.radians(np.asarray(lon0, dtype=float))
    sl, cl, so, co = np.sin(la), np.cos(la), np.sin(lo), np.cos(lo)
    z = np.zeros_like(sl)
    r = np.array([[-so, co, z], [-sl * co, -sl * so, cl], [cl * co, cl * so, sl]])
    return np.moveaxis(r, (0, 1), (-2, -1)) if r.ndim > 2 else r


def aer(lat0, lon0, alt0_m, lat, lon, alt_m):
    """Azimuth (deg, true north clockwise, [0, 360)), elevation (deg) and slant range (m) from point 0 to point."""
    az, el, rng = pymap3d.geodetic2aer(lat, lon, alt_m, lat0, lon0, alt0_m)
    return np.mod(az, 360.0), el, rng


def aer_from_ecef(sensor_ecef_m: np.ndarray, sensor_rot: np.ndarray, target_ecef_m: np.ndarray):
    """Batched azimuth/elevation/range of targets seen from sensors, all in ECEF.

    sensor_ecef_m (N, 3), sensor_rot (N, 3, 3) from :func:`enu_rotation`, target_ecef_m (N, 3) -> three (N,) arrays.
    This is the hot-path form used by the simulator and the tracker's measurement models.
    """
    d = target_ecef_m - sensor_ecef_m
    enu = np.einsum("nij,nj->ni", sensor_rot, d)
    e, n, u = enu[:, 0], enu[:, 1], enu[:, 2]
    horiz = np.hypot(e, n)
    az = np.mod(np.degrees(np.arctan2(e, n)), 360.0)
    el = np.degrees(np.arctan2(u, horiz))
    rng = np.sqrt(horiz * horiz + u * u)
    return az, el, rng


def radar_horizon_m(radar_height_m, target_height_m, k: float = K_EFFECTIVE_EARTH):
    """Maximum line-of-sight ground distance between a radar and a target (k-effective Earth, default 4/3).

    d = sqrt(2 k R h_r) + sqrt(2 k R h_t), heights above the local ground in metres.
    """
    re = k * EARTH_RADIUS_M
    hr = np.maximum(np.asarray(radar_height_m, dtype=float), 0.0)
    ht = np.maximum(np.asarray(target_height_m, dtype=float), 0.0)
    return np.sqrt(2 * re * hr) + np.sqrt(2 * re * ht)


def wrap_deg(angle_deg):
    """Wrap an angle difference into [-180, 180)."""
    return np.mod(np.asarray(angle_deg) + 180.0, 360.0) - 180.0


@dataclass(frozen=True)
class LocalFrame:
    """A local East-North-Up tangent frame at an origin: the tracker's working frame for a region.

    Using ENU about a regional origin keeps states small and linear; geodetic coordinates appear only at the edges.
    """

    lat0: float
    lon0: float
    alt0_m: float = 0.0

    @property
    def origin_ecef_m(self) -> np.ndarray:
        return np.array(geodetic_to_ecef(self.lat0, self.lon0, self.alt0_m), dtype=float)

    @property
    def rotation(self) -> np.ndarray:
        return enu_rotation(self.lat0, self.lon0)

    def to_enu(self, lat, lon, alt_m):
        return geodetic_to_enu(lat, lon, alt_m, self.lat0, self.lon0, self.alt0_m)

    def to_geodetic(self, e, n, u):
        return enu_to_geodetic(e, n, u, self.lat0, self.lon0, self.alt0_m)

    def ecef_to_enu(self, ecef_m: np.ndarray) -> np.ndarray:
        """(N, 3) ECEF points -> (N, 3) ENU points in this frame."""
        return (np.asarray(ecef_m) - self.origin_ecef_m) @ self.rotation.T

    def enu_to_ecef(self, enu_m: np.ndarray) -> np.ndarray:
        return np.asarray(enu_m) @ self.rotation + self.origin_ecef_m

    def vector_to_local(self, lat, lon, v_enu_local: np.ndarray) -> np.ndarray:
        """Rotate velocity vectors given in the local ENU of each point (lat, lon) into this frame's ENU."""
        r_pt = enu_rotation(lat, lon)  # (N,3,3): rows e,n,u of each point in ECEF
        v_ecef = np.einsum("nji,nj->ni", r_pt, v_enu_local)
        return v_ecef @ self.rotation.T

    def vector_from_local(self, lat, lon, v_enu_frame: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`vector_to_local`: frame ENU vectors -> ENU of each point (lat, lon)."""
        r_pt = enu_rotation(lat, lon)
        v_ecef = np.asarray(v_enu_frame) @ self.rotation
        return np.einsum("nij,nj->ni", r_pt, v_ecef)
