"""Turn validated detections into measurement vectors and noise covariances (done once, at ingest)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skytrace import geo
from skytrace.batch import ACOUSTIC, POSITION, RADAR, DetectionBatch, SensorTable
from skytrace.sensors import acoustic as acoustic_model

DEFAULT_ALT_AGL_M = 300.0  # prior altitude of a report without one
NO_ALT_SIGMA_M = 1000.0


@dataclass
class MeasBatch:
    """Measurements as columns: z (n, 3) padded, R (n, 3, 3), plus time, sensor row, kind, elevation flag."""

    t: np.ndarray
    sensor: np.ndarray
    kind: np.ndarray
    z: np.ndarray
    R: np.ndarray
    has_el: np.ndarray

    def __len__(self) -> int:
        return int(self.t.shape[0])

    def take(self, idx) -> MeasBatch:
        return MeasBatch(self.t[idx], self.sensor[idx], self.kind[idx], self.z[idx], self.R[idx], self.has_el[idx])

    @classmethod
    def concat(cls, parts: list[MeasBatch]) -> MeasBatch:
        if not parts:
            return cls(np.zeros(0), np.zeros(0, np.int32), np.zeros(0, np.int8), np.zeros((0, 3)),
                       np.zeros((0, 3, 3)), np.zeros(0, bool))
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                     ("t", "sensor", "kind", "z", "R", "has_el")))


def prepare(batch: DetectionBatch, sensors: SensorTable, frame: geo.LocalFrame) -> MeasBatch:
    n = len(batch)
    kind = sensors.kind[batch.sensor]
    z = np.zeros((n, 3))
    R = np.zeros((n, 3, 3))
    R[:, 0, 0] = R[:, 1, 1] = R[:, 2, 2] = 1.0
    has_el = np.zeros(n, dtype=bool)
    pos = kind == POSITION
    if pos.any():
        lat, lon = batch.lat[pos], batch.lon[pos]
        alt = np.where(np.isfinite(batch.alt_m[pos]), batch.alt_m[pos], frame.alt0_m + DEFAULT_ALT_AGL_M)
        z[pos] = np.column_stack(frame.to_enu(lat, lon, alt))
        sh = batch.pos_sigma_m[pos]
        sv = np.where(np.isfinite(batch.alt_sigma_m[pos]), batch.alt_sigma_m[pos],
                      np.where(np.isfinite(batch.alt_m[pos]), sh, NO_ALT_SIGMA_M))
        D = np.zeros((pos.sum(), 3, 3))
        D[:, 0, 0] = D[:, 1, 1] = sh**2
        D[:, 2, 2] = sv**2
        # rotate the report's local-ENU covariance into the frame: T = R_frame R_point^T
        T = np.einsum("ij,nkj->nik", frame.rotation, geo.enu_rotation(lat, lon).reshape(-1, 3, 3))
        R[pos] = T @ D @ np.swapaxes(T, 1, 2)
        has_el[pos] = True
    ang = ~pos
    if ang.any():
        s = batch.sensor[ang]
        z[ang, 0] = np.radians(batch.bearing_deg[ang])
        el = batch.elevation_deg[ang]
        he = np.isfinite(el)
        z[ang, 1] = np.where(he, np.radians(np.nan_to_num(el)), 0.0)
        has_el[ang] = he
        nominal = sensors.bearing_sigma_deg[s]
        snr = batch.snr_db[ang]
        ac = sensors.kind[s] == ACOUSTIC
        sig_b = nominal.copy()
        sig_e = np.where(np.isfinite(sensors.elevation_sigma_deg[s]), sensors.elevation_sigma_deg[s], 2 * nominal)
        with_snr = ac & np.isfinite(snr)
        # acoustic nodes: the same SNR law the simulator uses (skytrace.sensors.acoustic)
        sig_b[with_snr] = acoustic_model.bearing_sigma_deg(snr[with_snr], nominal[with_snr])
        sig_e[with_snr] = acoustic_model.elevation_sigma_deg(snr[with_snr], nominal[with_snr])
        # a node that reports its own per-detection bearing sigma knows its array and SNR best: use it
        own_sig = batch.bearing_sigma_deg[ang]
        own = ac & np.isfinite(own_sig)
        sig_b[own] = own_sig[own]
        sig_e[own] = acoustic_model.ELEVATION_FACTOR * own_sig[own]
        Ra = np.zeros((ang.sum(), 3, 3))
        Ra[:, 0, 0] = np.radians(sig_b) ** 2
        Ra[:, 1, 1] = np.where(he, np.radians(sig_e) ** 2, 1.0)
        rad = sensors.kind[s] == RADAR
        z[np.flatnonzero(ang)[rad], 2] = batch.range_m[ang][rad]
        Ra[:, 2, 2] = np.where(rad, sensors.range_sigma_m[s] ** 2, 1.0)
        R[ang] = Ra
    return MeasBatch(batch.t.copy(), batch.sensor.astype(np.int32), kind.astype(np.int8), z, R, has_el)
