"""The sensor-family interface: everything the formats, the tracker and the simulator need to know about a kind.

A *family* is one kind of sensor (``acoustic``, ``radar``, ``optical``, ``position``, ...). Each lives in its own
module under :mod:`skytrace.sensors.families` and is registered by name in :mod:`skytrace.sensors.registry`; the
tracker groups detections (or candidate track-detection pairs) by the family's integer code and hands every family
its own rows as arrays (struct-of-arrays), so no stage branches on ``kind ==``.

What a family declares:

- ``required_sensor_fields`` / ``required_detection_fields``: checked at the edge (sensors.json, detections);
- ``trusted_by_default``: whether one sensor of this kind may confirm a track alone (overridable per sensor with
  ``"trusted"`` in sensors.json, see docs/formats.md);
- ``prepare``: detection columns -> measurement vector z (padded to 3 rows), noise covariance R, elevation flag;
- ``predict``: batched measurement prediction h(x) (n, 3) and Jacobian H (n, 3, 6) for the EKF;
- ``wrap``: innovation wrapping (azimuths to [-pi, pi));
- ``dof``: the number of measured dimensions (chi-square gate);
- ``gate_region``: a horizontal disc that must contain any track that could have produced the detection
  (queried in a KD-tree of predicted track positions before the exact Mahalanobis gate);
- ``initiation``: ``"plot"`` (a detection is a 3-D fix: start a tentative track from ``to_cartesian``),
  ``"bearing"`` (goes to the bearing pool, triangulated across nodes) or ``"none"``;
- ``bearing_clutter_map``: whether the tracker learns stationary confusers per node from its unexplained bearings.

Padding convention: unused measurement rows have H = 0, innovation 0 and R = 1, so that they add nothing to the
Mahalanobis distance, the likelihood or the Kalman gain, and pairs of every family can share one batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

if TYPE_CHECKING:
    from skytrace import geo
    from skytrace.batch import DetectionBatch, SensorTable

M_DIM = 3  # padded measurement dimension shared by every family
DEFAULT_REACH_M = 5000.0  # gate reach of a bearing sensor that declares no max_range_m


@dataclass
class SensorGeometry:
    """Per-sensor geometry precomputed once by the tracker, indexed by sensor row.

    A position p in the tracker frame maps to the sensor's local ENU as d = M p + b (M = R_sensor R_frame^T,
    b = R_sensor (o_frame - s_sensor)); ``pos`` is the sensor in the frame (NaN for sensors without a site),
    ``reach_m`` the horizontal distance beyond which the sensor cannot have seen a target (gating),
    ``sound_speed_mps`` the speed of sound at acoustic nodes.
    """

    M: np.ndarray  # (S, 3, 3)
    b: np.ndarray  # (S, 3)
    pos: np.ndarray  # (S, 3)
    reach_m: np.ndarray  # (S,)
    sound_speed_mps: np.ndarray  # (S,)


class SensorFamily:
    """Base class of a sensor family; subclasses override what differs (see the module docstring)."""

    name: ClassVar[str] = ""
    code: int = -1  # assigned by the registry
    required_sensor_fields: ClassVar[tuple[str, ...]] = ()
    required_detection_fields: ClassVar[tuple[str, ...]] = ()
    trusted_by_default: ClassVar[bool] = False
    initiation: ClassVar[str] = "none"  # "plot", "bearing" or "none"
    bearing_clutter_map: ClassVar[bool] = False
    reach_factor: ClassVar[float] = 1.0  # gate reach = reach_factor * max_range_m (capped by the tracker)
    # detection probability per look of a sensor that looks at everything in its coverage at a steady cadence
    # (a radar's scan, a plot feed); None: its silence says nothing (bearing nodes report only what they hear,
    # sightings are volunteered). Enables negative information: missed looks lower a track's existence
    default_pd: ClassVar[float | None] = None
    # silence as negative information for sensors that report only what they detect (skytrace.tracking.silence):
    # the name of a detection law there ("acoustic": the engine SNR law anchored at max_range_m; "range": a
    # logistic around half the nominal range), or None: this family's silence is never used
    silence_law: ClassVar[str | None] = None
    sound_delay: ClassVar[bool] = False  # what the sensor senses now left the source range / c earlier
    # physical plausibility at the edge (sensors.json is hostile input): the largest max_range_m a sensor of this
    # family can honestly declare; a radar declaring 1e308 m must be refused, not crash the tracker
    max_plausible_range_m: ClassVar[float] = 1_000_000.0

    # ------------------------------------------------------------------------------------------------- ingest
    def prepare(self, batch: DetectionBatch, sensors: SensorTable, frame: geo.LocalFrame
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """z (n, 3), R (n, 3, 3), has_el (n,) for detections ``batch`` (all of this family)."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------ measurement
    def predict(self, x: np.ndarray, s: np.ndarray, geom: SensorGeometry, has_el: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
        """Predicted measurement h(x) (n, 3) and Jacobian H (n, 3, 6) of states x (n, 6) seen by sensor rows s."""
        raise NotImplementedError

    def wrap(self, nu: np.ndarray) -> np.ndarray:
        """Innovation z - h made continuous (in place allowed); default: nothing to wrap."""
        return nu

    def dof(self, has_el: np.ndarray) -> np.ndarray:
        """Measured dimensions per detection (for the chi-square gate)."""
        return np.full(has_el.shape, M_DIM, dtype=np.int64)

    # ------------------------------------------------------------------------------------------------ gating
    def gate_region(self, z: np.ndarray, R: np.ndarray, s: np.ndarray, geom: SensorGeometry
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Centres (n, 2) and radii (n,) of horizontal discs that contain every track that could have produced
        these detections; default: the sensor's reach around the sensor."""
        return geom.pos[s, :2], geom.reach_m[s]

    # -------------------------------------------------------------------------------------------- initiation
    def to_cartesian(self, z: np.ndarray, R: np.ndarray, s: np.ndarray, geom: SensorGeometry
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Frame positions (n, 3) and covariances (n, 3, 3) of fixes (families with ``initiation == "plot"``)."""
        raise NotImplementedError(f"{self.name} detections are not position fixes")

    # -------------------------------------------------------------------------------------------- edge checks
    def check_sensor(self, sensor) -> None:
        """Raise ValueError naming the first missing required field of a sensors.json entry."""
        for name in self.required_sensor_fields:
            if getattr(sensor, name, None) is None:
                raise ValueError(f"`{name}` is required for {self.name} sensors")
        if sensor.max_range_m is not None and sensor.max_range_m > self.max_plausible_range_m:
            raise ValueError(f"`max_range_m` = {sensor.max_range_m:g} m is not plausible for a {self.name} sensor "
                             f"(at most {self.max_plausible_range_m:g} m)")


class BearingFamily(SensorFamily):
    """Base of direction-only sensors (azimuth[, elevation]): acoustic arrays, cameras, RF direction finders.

    Bearings are triangulated across nodes to start tracks; a node's unexplained bearings feed the clutter map.
    Subclasses give ``prepare`` (the noise) and ``predict`` (e.g. with the sound delay)."""

    required_sensor_fields = ("lat", "lon", "alt_m", "bearing_sigma_deg")
    required_detection_fields = ("bearing_deg",)
    initiation = "bearing"
    bearing_clutter_map = True

    def prepare(self, batch, sensors, frame):
        return prepare_bearings(batch, sensors, *nominal_sigmas(batch, sensors))

    def predict(self, x, s, geom, has_el):
        """Bearing of the present position (light-speed propagation)."""
        return bearing_rows(local_vectors(x[:, :3], s, geom), geom.M[s], np.zeros(x.shape[0]), has_el)

    def wrap(self, nu):
        nu[:, 0] = wrap_angle(nu[:, 0])
        return nu

    def dof(self, has_el):
        return 1 + has_el.astype(np.int64)


# ----------------------------------------------------------------------------------------- shared geometry
def wrap_angle(a: np.ndarray) -> np.ndarray:
    """Angles (rad) wrapped to [-pi, pi)."""
    return np.mod(a + np.pi, 2 * np.pi) - np.pi


def local_vectors(p: np.ndarray, s: np.ndarray, geom: SensorGeometry) -> np.ndarray:
    """Frame positions p (n, 3) in the local ENU of sensor rows s: d = M p + b."""
    return np.einsum("nij,nj->ni", geom.M[s], p) + geom.b[s]


def angles_and_jacobian(d: np.ndarray):
    """Azimuth, elevation, range of local ENU vectors d (n, 3) and their Jacobians w.r.t. d, each (n, 3)."""
    e, n, u = d[:, 0], d[:, 1], d[:, 2]
    rho2 = np.maximum(e * e + n * n, 1e-6)
    rho = np.sqrt(rho2)
    r2 = rho2 + u * u
    r = np.sqrt(r2)
    az = np.arctan2(e, n)
    el = np.arctan2(u, rho)
    j_az = np.column_stack([n / rho2, -e / rho2, np.zeros_like(e)])
    j_el = np.column_stack([-e * u / (r2 * rho), -n * u / (r2 * rho), rho / r2])
    j_r = d / r[:, None]
    return az, el, r, j_az, j_el, j_r


def bearing_rows(d: np.ndarray, GM: np.ndarray, tau: np.ndarray, has_el: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """h, H of an (azimuth[, elevation]) measurement of local vectors d.

    GM (n, 3, 3) is d(d)/d(p) (the sensor rotation, times the delay correction for sound); tau (n,) the delay
    whose dependence on velocity enters as d(d)/d(v) = -tau d(d)/d(p) (zero for light-speed sensors).
    """
    n = d.shape[0]
    az, el, _, j_az, j_el, _ = angles_and_jacobian(d)
    Hp_az = np.einsum("ni,nij->nj", j_az, GM)
    Hp_el = np.einsum("ni,nij->nj", j_el, GM)
    h = np.zeros((n, M_DIM))
    H = np.zeros((n, M_DIM, 6))
    h[:, 0] = az
    H[:, 0, :3] = Hp_az
    H[:, 0, 3:] = -tau[:, None] * Hp_az
    h[has_el, 1] = el[has_el]
    H[has_el, 1, :3] = Hp_el[has_el]
    H[has_el, 1, 3:] = -tau[has_el, None] * Hp_el[has_el]
    return h, H


def prepare_bearings(batch: DetectionBatch, sensors: SensorTable, sigma_b_deg: np.ndarray, sigma_e_deg: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """z, R, has_el of (azimuth[, elevation]) detections with the given 1-sigma errors (deg)."""
    n = len(batch)
    z = np.zeros((n, M_DIM))
    R = np.zeros((n, M_DIM, M_DIM))
    z[:, 0] = np.radians(batch.bearing_deg)
    he = np.isfinite(batch.elevation_deg)
    z[:, 1] = np.where(he, np.radians(np.nan_to_num(batch.elevation_deg)), 0.0)
    R[:, 0, 0] = np.radians(sigma_b_deg) ** 2
    R[:, 1, 1] = np.where(he, np.radians(sigma_e_deg) ** 2, 1.0)
    R[:, 2, 2] = 1.0
    return z, R, he


def nominal_sigmas(batch: DetectionBatch, sensors: SensorTable) -> tuple[np.ndarray, np.ndarray]:
    """Bearing and elevation sigmas (deg) of each detection from its sensor's nominal values (elevation: 2x the
    bearing sigma when the sensor declares none); a per-detection ``bearing_sigma_deg`` overrides the nominal."""
    s = batch.sensor
    sig_b = sensors.bearing_sigma_deg[s].copy()
    per_det = getattr(batch, "bearing_sigma_deg", None)
    if per_det is not None:
        own = np.isfinite(per_det)
        sig_b[own] = per_det[own]
    sig_e = np.where(np.isfinite(sensors.elevation_sigma_deg[s]), sensors.elevation_sigma_deg[s], 2 * sig_b)
    return sig_b, sig_e
