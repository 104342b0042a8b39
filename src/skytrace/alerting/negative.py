"""Negative information: sensors that report nothing toward a place say that no drone is there.

A hypothesised drone (a particle of a lone report's or a lost track's hypothesis) that is now well inside the
audible range of an acoustic node, or the close coverage of a radar, would have been reported by it. If that
sensor has given no report in the direction of the particle for ``silence_s``, the particle is *excluded*: the
drone is not there. This is the "negative information" of search theory and of track-before-detect filters
(Koch, "On exploiting 'negative' sensor evidence for target tracking and sensor data fusion", Information Fusion
8(1), 2007; Stone, "Theory of Optimal Search", 1975): the absence of a detection where the probability of
detection is high lowers the probability that the target is there. Here it is used in its simplest, conservative
form: only sensors whose probability of detection is high at that range (``range_frac`` of their nominal range)
exclude, and any report of the sensor within the bearing tolerance of the particle keeps it (a false alarm can
only spare a particle, never kill one).

Batched: sensor positions are in a k-d tree (:class:`scipy.spatial.cKDTree`, local metres); a query is one ball
search for all particles and a vectorised bearing check against the sensors' recent reports.

Only sensors known to be *alive* count: a node that is down, jammed or cut off says nothing, and its silence is not
evidence. A sensor is alive at ``t`` when it reported or sent a heartbeat ("alive, heard nothing":
heartbeats.jsonl, :meth:`skytrace.pipeline.Pipeline.heartbeat`) within ``alive_s`` before ``t``; with no
heartbeats at all only sensors that reported recently exclude anything (conservative: fewer exclusions, never
a wrong one because a node died).
"""

from __future__ import annotations

import numpy as np

from skytrace.batch import ACOUSTIC, OPTICAL, RADAR, DetectionBatch, SensorTable, pairs_by_key

M_PER_DEG = 111_320.0
TIER_SPLIT_M = 5000.0  # exclusion radii above this (radars) are searched in their own tree
RANGE_GATE_M = 3000.0  # a ranged report (radar plot) spares particles within this of its range


class SilenceMap:
    """Which sensors are silent toward a point: their positions, exclusion radii and recent reports.

    ``range_frac_acoustic`` / ``range_frac_radar``: share of a sensor's nominal range (``max_range_m``) within
    which it is taken to detect a drone almost surely over ``silence_s`` (acoustic nodes report a Shahed every few
    seconds within ~60 % of their range; a radar within half its range when the drone is above its horizon).
    ``tol_deg``: a report within this many degrees of the particle's bearing from the sensor (plus 3 bearing
    sigmas) counts as "heard there" and spares the particle. ``alive_s``: a sensor whose last report or heartbeat is
    older than this is taken as down (its silence excludes nothing); the simulated nodes beat every 120 s.
    """

    def __init__(self, sensors: SensorTable, range_m: np.ndarray, bearing_sigma_deg: np.ndarray,
                 range_frac_acoustic: float = 0.6, range_frac_radar: float = 0.5, silence_s: float = 60.0,
                 tol_deg: float = 15.0, alive_s: float = 300.0):
        self.silence_s = silence_s
        self.alive_s = alive_s
        self.alive_t = np.full(len(sensors), -np.inf)  # latest report or heartbeat of each sensor
        kind = sensors.kind
        frac = np.where((kind == ACOUSTIC) | (kind == OPTICAL), range_frac_acoustic,
                        np.where(kind == RADAR, range_frac_radar, 0.0))
        self.radius_m = np.where(np.isfinite(range_m), range_m, 0.0) * frac
        self.rows = np.flatnonzero(self.radius_m > 0)
        bsig = np.where(np.isfinite(bearing_sigma_deg), bearing_sigma_deg, 5.0)
        # a radar's plot says where the echo is (bearing and range): only a plot near the particle spares it
        self.tol_deg = np.where(kind == RADAR, 2.0, tol_deg) + 3.0 * bsig
        self.lat0 = float(np.mean(sensors.lat[self.rows])) if self.rows.size else 0.0
        self._cos = np.cos(np.radians(self.lat0))
        self.lat, self.lon = sensors.lat, sensors.lon
        # two tiers of reach (acoustic nodes ~2 km, radars ~20 km), each with its own tree, so that a ball query
        # at a radar's reach does not return every acoustic node for 20 km around
        self._tiers = []
        if self.rows.size:
            from scipy.spatial import cKDTree

            far = self.radius_m[self.rows] > TIER_SPLIT_M
            for sel in (~far, far):
                rows = self.rows[sel]
                if rows.size:
                    tree = cKDTree(np.column_stack(self._xy(self.lat[rows], self.lon[rows])))
                    self._tiers.append((rows, tree, float(self.radius_m[rows].max())))
        self._t = np.zeros(0)
        self._row = np.zeros(0, np.int64)
        self._brg = np.zeros(0)
        self._rng = np.zeros(0)
        self._t_first: float | None = None

    def _xy(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (np.asarray(lon) - 0.0) * M_PER_DEG * self._cos, np.asarray(lat) * M_PER_DEG

    def heartbeat(self, sensor_rows: np.ndarray, t: np.ndarray) -> None:
        """Sensors ``sensor_rows`` were alive at ``t`` (a heartbeat: "alive, heard nothing")."""
        rows = np.asarray(sensor_rows, np.int64).ravel()
        tt = np.broadcast_to(np.asarray(t, float), rows.shape)
        ok = (rows >= 0) & (rows < self.alive_t.size) & np.isfinite(tt)
        if ok.any():
            np.maximum.at(self.alive_t, rows[ok], tt[ok])

    def observe(self, t: float, det: DetectionBatch) -> None:
        """Remember the reports of the last ``silence_s`` (any report with a bearing, explained or not); any report
        proves its sensor alive."""
        if self._t_first is None:
            self._t_first = t
        keep = self._t >= t - self.silence_s
        if det is not None and len(det):
            self.heartbeat(det.sensor, det.t)
            ok = np.isfinite(det.bearing_deg)
            self._t = np.concatenate([self._t[keep], det.t[ok]])
            self._row = np.concatenate([self._row[keep], det.sensor[ok].astype(np.int64)])
            self._brg = np.concatenate([self._brg[keep], det.bearing_deg[ok]])
            self._rng = np.concatenate([self._rng[keep], det.range_m[ok]])
        else:
            self._t, self._row, self._brg, self._rng = self._t[keep], self._row[keep], self._brg[keep], self._rng[keep]

    def excluded(self, t: float, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Bool per point: some alive sensor that would have reported a drone there has reported nothing toward
        it for ``silence_s`` (and has been listened to that long)."""
        out = np.zeros(lat.size, bool)
        if not self._tiers or lat.size == 0 or self._t_first is None or t - self._t_first < self.silence_s:
            return out
        x, y = self._xy(lat, lon)
        pis, sis = [], []
        for rows, tree, rmax in self._tiers:
            hits = tree.query_ball_point(np.column_stack([x, y]), rmax)
            lens = np.fromiter((len(h) for h in hits), np.int64, lat.size)
            if lens.sum():
                pis.append(np.repeat(np.arange(lat.size), lens))
                sis.append(rows[np.concatenate([np.asarray(h, np.int64) for h in hits if h])])
        if not pis:
            return out
        pi, si = np.concatenate(pis), np.concatenate(sis)
        sx, sy = self._xy(self.lat[si], self.lon[si])
        dx, dy = x[pi] - sx, y[pi] - sy
        near = (np.hypot(dx, dy) <= self.radius_m[si]) & (self.alive_t[si] >= t - self.alive_s)
        pi, si, dx, dy = pi[near], si[near], dx[near], dy[near]
        if pi.size == 0:
            return out
        brg = np.degrees(np.arctan2(dx, dy))
        heard = np.zeros(pi.size, bool)
        recent = self._t >= t - self.silence_s
        if recent.any():
            rrow, rbrg, rrng = self._row[recent], self._brg[recent], self._rng[recent]
            order = np.argsort(rrow, kind="stable")
            rrow, rbrg, rrng = rrow[order], rbrg[order], rrng[order]
            rep, idx = pairs_by_key(rrow, si)
            if rep.size:
                diff = np.abs(np.mod(rbrg[idx] - brg[rep] + 180.0, 360.0) - 180.0)
                ok = diff <= self.tol_deg[si[rep]]
                dist = np.hypot(dx, dy)[rep]
                rr = rrng[idx]
                ok &= ~np.isfinite(rr) | (np.abs(rr - dist) <= RANGE_GATE_M)
                heard[rep[ok]] = True
        np.logical_or.at(out, pi[~heard], True)
        return out
