"""Sensors whose reports disagree with the fused picture: flagged in the status, muted only when contradicted.

A stage of the one pipeline (:class:`skytrace.pipeline.Pipeline` runs it after tracking and before the alert
policy, and hands the policy the sensors it mutes). Two checks, per sensor, on exponentially decayed counts
(half-life ``half_life_s``) of its bearing reports (acoustic, optical, any report with a bearing and no position):

1. **Bearings to no track** (advisory): does the bearing point at a *confirmed track* within the sensor's range
   (angular gate ``gate_deg``; the picture lags the reports by the tracker's lag, so the gate is wide)? A sensor
   with at least ``min_reports`` reports of which at least ``flag_fraction`` point at nothing is flagged. That is
   what a compromised node inventing a drone looks like, but also a broken compass, a wrong surveyed position,
   **and an honest lone node at the edge of coverage hearing a real drone nobody else hears**: so this flag is
   for an operator's eyes (``/api/v1/status`` → ``sensor_flags``) and mutes nothing.
2. **Bearings into silent coverage** (mutes): an unexplained bearing is *contradicted* when every point of its ray
   (``ray_points`` points from 10 % to 100 % of the sensor's range) lies well inside the audible range
   (``silence_range_frac`` of their range) of other acoustic or optical nodes that are alive (a report or a heartbeat
   within ``alive_timeout_s``, listened to for ``silence_s``) and that have reported nothing toward that point for
   ``silence_s``. A drone there would have been heard by them (the negative information of
   :mod:`skytrace.alerting.negative`, Koch 2007). A sensor with at least ``min_contradicted`` (2.5: three recent)
   contradicted reports making up at least ``mute_fraction`` of its reports is flagged ``bearings into silent
   coverage`` with ``muted: true``, and the alert policy drops the lone-report warnings that rest only on its reports
   (:meth:`skytrace.alerting.policy.AlertPolicy.mute_sensors`). A real drone inside covered area is heard by the
   neighbours too (their reports toward it spare the points near it, so the ray is not wholly contradicted); a lone
   node whose ray leaves the covered area is never contradicted: its Possible sector still warns.

Neither check drops a report: the tracker still gets everything (one wrong rule must not silence a detection).
Vectorised: one (reports x tracks) azimuth matrix per step on a local tangent plane (sensor ranges are tens of km,
where the flat-earth azimuth error is far below the gates); the ray check runs on the latest unexplained report of
each sensor per step (its verdict counts for all of that sensor's unexplained reports of the step) against a k-d
tree of the nodes.
"""

from __future__ import annotations

import numpy as np

from skytrace.batch import ACOUSTIC, OPTICAL, SensorTable, pairs_by_key

M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON_EQ = 111_320.0
DEFAULT_RANGE_M = 5000.0  # an acoustic node without max_range_m (docs/sensors.md)


class SensorConsistency:
    """Per-sensor agreement of bearing reports with the fused picture and with silent neighbours (module doc)."""

    critical = False
    name = "sensor_consistency"

    def __init__(self, table: SensorTable, gate_deg: float = 10.0, half_life_s: float = 600.0,
                 min_reports: float = 20.0, flag_fraction: float = 0.9, range_margin: float = 1.5,
                 silence_s: float = 60.0, silence_range_frac: float = 0.6, alive_timeout_s: float = 300.0,
                 silence_tol_deg: float = 15.0, min_contradicted: float = 2.5, mute_fraction: float = 0.8,
                 ray_points: int = 10):
        self.table = table
        self.gate_deg, self.half_life_s = gate_deg, half_life_s
        self.min_reports, self.flag_fraction, self.range_margin = min_reports, flag_fraction, range_margin
        self.silence_s, self.silence_range_frac, self.alive_timeout_s = silence_s, silence_range_frac, alive_timeout_s
        self.silence_tol_deg, self.min_contradicted = silence_tol_deg, min_contradicted
        self.mute_fraction = mute_fraction
        n = len(table.ids)
        self.reports = np.zeros(n)
        self.unexplained = np.zeros(n)
        self.contradicted = np.zeros(n)
        self._t: float | None = None
        self._ray_frac = np.linspace(0.1, 1.0, ray_points)
        rng = np.asarray(table.max_range_m, dtype=float)
        self.range_m = np.where(np.isfinite(rng) & (rng > 0), rng, DEFAULT_RANGE_M)
        # who can contradict: acoustic and optical nodes, each out to a share of its range (Pd high there)
        ears = (table.kind == ACOUSTIC) | (table.kind == OPTICAL)
        self._ears = np.flatnonzero(ears & np.isfinite(table.lat) & np.isfinite(table.lon))
        self._lat0 = float(np.mean(table.lat[self._ears])) if self._ears.size else 0.0
        self._cos0 = float(np.cos(np.radians(self._lat0)))
        self._tree = None
        if self._ears.size:
            from scipy.spatial import cKDTree

            self._tree = cKDTree(np.column_stack(self._xy(table.lat[self._ears], table.lon[self._ears])))
            self._ear_radius = float((self.range_m[self._ears] * silence_range_frac).max())
        self.alive_t = np.full(n, -np.inf)  # latest report or heartbeat
        self.first_t = np.full(n, np.inf)  # first report or heartbeat (listened to since)
        self._hb_t, self._hb_s = np.zeros(0), np.zeros(0, np.int64)
        self._rec_t, self._rec_s, self._rec_b = np.zeros(0), np.zeros(0, np.int64), np.zeros(0)

    def _xy(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(lon) * M_PER_DEG_LON_EQ * self._cos0, np.asarray(lat) * M_PER_DEG_LAT

    # --------------------------------------------------------------------------------------------------- input
    def heartbeat(self, rows: np.ndarray, t: np.ndarray) -> None:
        """Sensors alive at ``t`` (heard nothing); applied as the clock passes them (a future beat waits)."""
        rows = np.asarray(rows, np.int64).ravel()
        if rows.size:
            t = np.broadcast_to(np.asarray(t, float), rows.shape)
            self._hb_t = np.concatenate([self._hb_t, t])
            self._hb_s = np.concatenate([self._hb_s, rows])

    def on_step(self, res) -> None:
        """As a pipeline sink (the pipeline itself calls :meth:`observe` before the alert policy)."""
        self.observe(res.t, res.tracks, res.detections)

    def observe(self, t: float, tracks, det) -> None:
        """One step: the reports admitted in it and the track picture after it."""
        if self._t is not None and t > self._t:
            decay = 0.5 ** ((t - self._t) / self.half_life_s)
            self.reports *= decay
            self.unexplained *= decay
            self.contradicted *= decay
        self._t = t if self._t is None else max(self._t, t)
        if self._hb_t.size:
            due = self._hb_t <= t
            if due.any():
                self._alive(self._hb_s[due], self._hb_t[due])
                self._hb_t, self._hb_s = self._hb_t[~due], self._hb_s[~due]
        keep = self._rec_t >= t - self.silence_s
        self._rec_t, self._rec_s, self._rec_b = self._rec_t[keep], self._rec_s[keep], self._rec_b[keep]
        if det is None or not len(det):
            return
        s_all = np.asarray(det.sensor, np.int64)
        self._alive(s_all, np.minimum(np.asarray(det.t, float), t))
        bearing = np.asarray(det.bearing_deg, dtype=float)
        pos = np.isfinite(np.asarray(det.lat, dtype=float))
        use = np.isfinite(bearing) & ~pos
        if not use.any():
            return
        s, b, td = s_all[use], bearing[use], np.asarray(det.t, float)[use]
        self._rec_t = np.concatenate([self._rec_t, td])
        self._rec_s = np.concatenate([self._rec_s, s])
        self._rec_b = np.concatenate([self._rec_b, b])
        explained = self._explained(s, b, tracks)
        n = len(self.table.ids)
        self.reports += np.bincount(s, minlength=n)
        self.unexplained += np.bincount(s[~explained], minlength=n)
        if (~explained).any():
            self._contradict(t, s[~explained], b[~explained], td[~explained])

    def _alive(self, rows: np.ndarray, t: np.ndarray) -> None:
        np.maximum.at(self.alive_t, rows, t)
        np.minimum.at(self.first_t, rows, t)

    # --------------------------------------------------------------------------------------------------- checks
    def _explained(self, s: np.ndarray, b: np.ndarray, tracks) -> np.ndarray:
        status = np.asarray(tracks.status) if tracks is not None and len(tracks) else np.array([], dtype=str)
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

    def _contradict(self, t: float, s: np.ndarray, b: np.ndarray, td: np.ndarray) -> None:
        """Count the unexplained reports whose whole ray lies in the silent coverage of alive neighbours."""
        if self._tree is None:
            return
        order = np.lexsort((td, s))
        s_o, b_o = s[order], b[order]
        last = np.concatenate([s_o[1:] != s_o[:-1], [True]])
        rows, brg = s_o[last], b_o[last]  # the latest unexplained report of each sensor
        n_of = np.bincount(s, minlength=len(self.table.ids))[rows]
        k = self._ray_frac.size
        x0, y0 = self._xy(self.table.lat[rows], self.table.lon[rows])
        d = self.range_m[rows][:, None] * self._ray_frac[None, :]
        rad = np.radians(brg)[:, None]
        px, py = (x0[:, None] + d * np.sin(rad)).ravel(), (y0[:, None] + d * np.cos(rad)).ravel()
        owner = np.repeat(rows, k)
        hits = self._tree.query_ball_point(np.column_stack([px, py]), self._ear_radius)
        lens = np.fromiter((len(h) for h in hits), np.int64, px.size)
        covered = np.zeros(px.size, bool)
        if lens.sum():
            pi = np.repeat(np.arange(px.size), lens)
            si = self._ears[np.concatenate([np.asarray(h, np.int64) for h in hits if h])]
            sx, sy = self._xy(self.table.lat[si], self.table.lon[si])
            dx, dy = px[pi] - sx, py[pi] - sy
            ok = (si != owner[pi]) & (np.hypot(dx, dy) <= self.range_m[si] * self.silence_range_frac)
            ok &= (self.alive_t[si] >= t - self.alive_timeout_s) & (self.first_t[si] <= t - self.silence_s)
            pi, si, dx, dy = pi[ok], si[ok], dx[ok], dy[ok]
            if pi.size:
                silent = ~self._heard_toward(si, np.degrees(np.arctan2(dx, dy)))
                covered[pi[silent]] = True
        contra = covered.reshape(-1, k).all(axis=1)
        np.add.at(self.contradicted, rows[contra], n_of[contra])

    def _heard_toward(self, si: np.ndarray, brg: np.ndarray) -> np.ndarray:
        """Bool per (sensor, bearing) pair: the sensor reported within the tolerance of that bearing lately."""
        out = np.zeros(si.size, bool)
        if not self._rec_t.size:
            return out
        order = np.argsort(self._rec_s, kind="stable")
        rs, rb = self._rec_s[order], self._rec_b[order]
        rep, idx = pairs_by_key(rs, si)
        if rep.size:
            bsig = np.where(np.isfinite(self.table.bearing_sigma_deg[si[rep]]),
                            self.table.bearing_sigma_deg[si[rep]], 5.0)
            diff = np.abs(np.mod(rb[idx] - brg[rep] + 180.0, 360.0) - 180.0)
            np.logical_or.at(out, rep[diff <= self.silence_tol_deg + 3.0 * bsig], True)
        return out

    # --------------------------------------------------------------------------------------------------- output
    def muted(self) -> np.ndarray:
        """Bool per sensor row: its bearings point into the silent coverage of alive neighbours (see module doc)."""
        return (self.contradicted >= self.min_contradicted) & (
            self.contradicted >= self.mute_fraction * np.maximum(self.reports, 1e-9))

    def flags(self) -> dict[str, dict]:
        """Flagged sensors: id -> reason, whether its lone reports are muted, and the decayed counts behind it."""
        out: dict[str, dict] = {}
        muted = self.muted()
        no_track = (self.reports >= self.min_reports) & (
            self.unexplained >= self.flag_fraction * np.maximum(self.reports, 1e-9))
        for i in np.flatnonzero(no_track | muted):
            i = int(i)
            out[self.table.ids[i]] = {
                "reason": "bearings into silent coverage" if muted[i] else "bearings to no track",
                "muted": bool(muted[i]),
                "unexplained_fraction": round(float(self.unexplained[i] / self.reports[i]), 3),
                "contradicted_fraction": round(float(self.contradicted[i] / self.reports[i]), 3),
                "reports": round(float(self.reports[i]), 1)}
        return out

    def close(self) -> None:
        return None
