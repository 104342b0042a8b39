"""Sensors whose reports disagree with the fused picture: flagged in the status, never silently dropped.

A pipeline sink. At every step it asks, for each bearing report admitted in the step (acoustic, optical, any
report with a bearing and no position), whether the bearing points at a **confirmed track** within the sensor's
range (angular gate ``gate_deg``; the track picture lags the reports by the tracker's lag, so the gate is wide).
Per sensor it keeps exponentially decayed counts (half-life ``half_life_s``) of reports and of *unexplained*
reports. A sensor with at least ``min_reports`` (decayed) reports of which at least ``flag_fraction`` point at
nothing is flagged: ``bearings to no track``. That is what a compromised node inventing a drone looks like while
the fused picture (its honest neighbours, radars) does not carry it, and also what a node with a broken compass
or a wrong surveyed position looks like: both deserve an operator's look, so the flag is in ``/api/v1/status``
(``sensor_flags``) with the numbers behind it. The reports themselves still reach the tracker (dropping them
would let one wrong rule silence a real detection); down-weighting belongs in the tracker.

Vectorised: one (reports x tracks) azimuth matrix per step on a local tangent plane (the sensors' ranges are tens
of km, where the flat-earth azimuth error is far below the gate).
"""

from __future__ import annotations

import numpy as np

from skytrace.batch import SensorTable

M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON_EQ = 111_320.0


class SensorConsistency:
    """Pipeline sink: per-sensor agreement of bearing reports with the confirmed tracks (see module docstring)."""

    critical = False
    name = "sensor_consistency"

    def __init__(self, table: SensorTable, gate_deg: float = 10.0, half_life_s: float = 600.0,
                 min_reports: float = 20.0, flag_fraction: float = 0.9, range_margin: float = 1.5):
        self.table = table
        self.gate_deg, self.half_life_s = gate_deg, half_life_s
        self.min_reports, self.flag_fraction, self.range_margin = min_reports, flag_fraction, range_margin
        n = len(table.ids)
        self.reports = np.zeros(n)
        self.unexplained = np.zeros(n)
        self._t: float | None = None

    def on_step(self, res) -> None:
        if self._t is not None and res.t > self._t:
            decay = 0.5 ** ((res.t - self._t) / self.half_life_s)
            self.reports *= decay
            self.unexplained *= decay
        self._t = res.t if self._t is None else max(self._t, res.t)
        det = res.detections
        if det is None or not len(det):
            return
        bearing = np.asarray(det.bearing_deg, dtype=float)
        pos = np.isfinite(np.asarray(det.lat, dtype=float))
        use = np.isfinite(bearing) & ~pos
        if not use.any():
            return
        s = np.asarray(det.sensor)[use]
        b = bearing[use]
        explained = self._explained(s, b, res.tracks)
        n = len(self.table.ids)
        self.reports += np.bincount(s, minlength=n)
        self.unexplained += np.bincount(s[~explained], minlength=n)

    def _explained(self, s: np.ndarray, b: np.ndarray, tracks) -> np.ndarray:
        status = np.asarray(tracks.status) if len(tracks) else np.array([], dtype=str)
        conf = np.flatnonzero(status == "confirmed")
        if conf.size == 0:
            return np.zeros(s.size, dtype=bool)
        t_lat, t_lon = np.asarray(tracks.lat)[conf], np.asarray(tracks.lon)[conf]
        s_lat, s_lon = self.table.lat[s], self.table.lon[s]
        east = (t_lon[None, :] - s_lon[:, None]) * M_PER_DEG_LON_EQ * np.cos(np.radians(s_lat))[:, None]
        north = (t_lat[None, :] - s_lat[:, None]) * M_PER_DEG_LAT
        az = np.degrees(np.arctan2(east, north))
        diff = np.abs((b[:, None] - az + 180.0) % 360.0 - 180.0)
        rng = np.hypot(east, north)
        max_r = np.where(np.isfinite(self.table.max_range_m[s]), self.table.max_range_m[s], np.inf)
        in_range = rng <= (max_r * self.range_margin)[:, None]
        return np.any((diff <= self.gate_deg) & in_range, axis=1)

    def flags(self) -> dict[str, dict]:
        """Flagged sensors: id -> reason and the decayed counts behind it."""
        out: dict[str, dict] = {}
        for i in np.flatnonzero((self.reports >= self.min_reports)
                                & (self.unexplained >= self.flag_fraction * np.maximum(self.reports, 1e-9))):
            frac = float(self.unexplained[i] / self.reports[i])
            out[self.table.ids[int(i)]] = {"reason": "bearings to no track", "unexplained_fraction": round(frac, 3),
                                           "reports": round(float(self.reports[i]), 1)}
        return out

    def close(self) -> None:
        return None

