"""Path prediction with a manoeuvre fan, and per-zone entry probability and time of arrival, vectorised.

Each confirmed track is propagated over the horizon (default 20 min, every ``step_s``) as ``n_samples``
possible futures: constant velocity, plus what a Shahed does — it keeps flying toward its target but turns at
waypoints. Each sample draws a speed factor (+-8 %), one heading change of up to +-``turn_max_deg`` at a random
time within the horizon (the next dog-leg), and an initial position/velocity offset from the track's
uncertainty. The fraction of samples that are inside a zone at some step before time T is the probability that
the drone enters the zone within T; the earliest such step, averaged over the entering samples, is the expected
time of arrival. Optionally, route-aware sampling (``city_bias``) tilts the fan toward the nearest large city
ahead, since these drones are sent at cities and power plants.

Cost: tracks x samples x steps points, looked up in a zone raster (:mod:`skytrace.assess.raster`) with two array
indexings; a national picture (1,000 tracks x 32 samples x 40 steps = 1.3 M points against 3,300 zones) is about
a second on one core, independent of the number of zones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skytrace.assess.raster import ZoneRaster
from skytrace.batch import TrackSnapshot
from skytrace.zones import ZoneSet

M_PER_DEG_LAT = 111_320.0


@dataclass
class AssessConfig:
    horizon_s: float = 1200.0  # s; how far ahead each track's futures are predicted
    step_s: float = 30.0  # s; time step of the predicted futures
    n_samples: int = 32  # futures per track (Monte Carlo fan)
    speed_spread: float = 0.08  # relative sigma of speed along a future (drones hold speed within ~8 %)
    turn_max_deg: float = 45.0  # deg; largest dog-leg turn drawn in a future (routes turn at waypoints)
    raster_cell_m: float = 1000.0  # m; zone raster cell: entries are tested on this grid
    seed: int = 0  # random seed of the futures (same inputs, same alerts)
    city_bias: float = 0.25  # share of futures that head straight for the likeliest city ahead (route-aware)
    city_max_off_deg: float = 60.0  # a city counts as "ahead" within this angle of the track's heading
    city_max_km: float = 400.0  # km; farthest city considered as a destination


@dataclass
class Assessment:
    """Threat of every track to every zone it may enter (sparse: only pairs with a non-zero probability)."""

    t: float
    track_idx: np.ndarray  # rows into the snapshot
    zone_idx: np.ndarray  # rows into the zone set
    first_entry_s: np.ndarray  # (pairs, n_samples): time of first entry per sample, inf if never
    track_ids: list[str]

    def probability_within(self, window_s: np.ndarray | float) -> np.ndarray:
        """Probability per pair that the drone is inside the zone within ``window_s`` (per pair or scalar)."""
        w = np.broadcast_to(np.asarray(window_s, dtype=float), self.track_idx.shape)
        return (self.first_entry_s <= w[:, None]).mean(axis=1)

    def eta_s(self) -> np.ndarray:
        """Expected time of first entry among the samples that enter (inf when none does)."""
        fe = self.first_entry_s
        hit = np.isfinite(fe)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(hit.any(axis=1), np.where(hit, fe, 0.0).sum(axis=1) / hit.sum(axis=1), np.inf)


class Assessor:
    """Holds the zone raster (built once per zone set) and assesses snapshots."""

    def __init__(self, zones: ZoneSet, config: AssessConfig | None = None):
        self.zones = zones
        self.cfg = config or AssessConfig()
        self.raster = ZoneRaster.build(zones, self.cfg.raster_cell_m)
        self._rng = np.random.default_rng(self.cfg.seed)
        from skytrace.zones import load_places

        cities = load_places()["cities"]
        self.city_lat = np.array([c["lat"] for c in cities])
        self.city_lon = np.array([c["lon"] for c in cities])

    def _city_heading(self, snap: TrackSnapshot, hdg: np.ndarray) -> np.ndarray:
        """Heading (rad) from each track to the nearest city within the cone ahead; NaN where none."""
        dn = (self.city_lat[None, :] - snap.lat[:, None]) * M_PER_DEG_LAT
        de = (self.city_lon[None, :] - snap.lon[:, None]) * M_PER_DEG_LAT * np.cos(np.radians(snap.lat[:, None]))
        dist = np.hypot(de, dn)
        bearing = np.arctan2(de, dn)
        off = np.abs(np.mod(bearing - hdg[:, None] + np.pi, 2 * np.pi) - np.pi)
        ok = (off <= np.radians(self.cfg.city_max_off_deg)) & (dist <= self.cfg.city_max_km * 1000) & (dist > 2000)
        score = np.where(ok, dist * (1 + off), np.inf)
        best = np.argmin(score, axis=1)
        out = bearing[np.arange(len(snap)), best]
        return np.where(np.isfinite(score[np.arange(len(snap)), best]), out, np.nan)

    def assess(self, snap: TrackSnapshot) -> Assessment:
        cfg = self.cfg
        n = len(snap)
        if n == 0:
            return Assessment(snap.t, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, cfg.n_samples)), [])
        k = cfg.n_samples
        steps = np.arange(0.0, cfg.horizon_s + 1e-9, cfg.step_s)  # includes t = 0: a drone already inside
        rng = self._rng
        # per (track, sample) draws
        sp = np.hypot(snap.ve, snap.vn)
        hdg = np.arctan2(snap.ve, snap.vn)
        speed = sp[:, None] * (1 + rng.normal(0, cfg.speed_spread, (n, k)))
        speed[:, 0] = sp  # sample 0 is the plain constant-velocity prediction
        turn = np.radians(rng.uniform(-cfg.turn_max_deg, cfg.turn_max_deg, (n, k)))
        turn[:, 0] = 0.0
        t_turn = rng.uniform(0, cfg.horizon_s, (n, k))
        if cfg.city_bias > 0:
            # route-aware futures: these drones are sent at cities; some samples turn toward the city ahead now
            to_city = self._city_heading(snap, hdg)
            n_city = int(round(cfg.city_bias * (k - 1)))
            has = np.isfinite(to_city)
            if n_city and has.any():
                cols = np.arange(1, 1 + n_city)
                turn[np.ix_(has, cols)] = (np.mod(to_city[has] - hdg[has] + np.pi, 2 * np.pi) - np.pi)[:, None]
                t_turn[np.ix_(has, cols)] = 0.0
        pos_sig = np.maximum(snap.pos_sigma_m, 1.0)
        de0 = rng.normal(0, 1, (n, k)) * pos_sig[:, None] / np.sqrt(2)
        dn0 = rng.normal(0, 1, (n, k)) * pos_sig[:, None] / np.sqrt(2)
        de0[:, 0] = dn0[:, 0] = 0.0
        # distance flown before and after the turn, per step (n, k, T)
        T = steps[None, None, :]
        before = np.minimum(T, t_turn[:, :, None])
        after = np.maximum(T - t_turn[:, :, None], 0.0)
        h0 = hdg[:, None, None]
        h1 = h0 + turn[:, :, None]
        v = speed[:, :, None]
        de = de0[:, :, None] + v * (before * np.sin(h0) + after * np.sin(h1))
        dn = dn0[:, :, None] + v * (before * np.cos(h0) + after * np.cos(h1))
        lat = snap.lat[:, None, None] + dn / M_PER_DEG_LAT
        lon = snap.lon[:, None, None] + de / (M_PER_DEG_LAT * np.cos(np.radians(snap.lat[:, None, None])))
        tz, zi, fe = first_entry_times(self.raster, lat, lon, steps, len(self.zones))
        return Assessment(snap.t, tz, zi, fe, list(snap.track))


def first_entry_times(raster: ZoneRaster, lat: np.ndarray, lon: np.ndarray, steps: np.ndarray, n_zones: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First entry of each of n objects' k sampled futures into every zone they reach.

    ``lat``/``lon``: (n, k, T) predicted positions at times ``steps`` (T,) from now. Returns the pairs (object
    index, zone index) with any entry and, per pair, the time of first entry of each sample ((pairs, k), inf when
    that sample never enters). Vectorised: one raster lookup and one sort for all points.
    """
    n, k, _ = lat.shape
    pts, zs = raster.lookup(lat.ravel(), lon.ravel())
    ti, si, stp = np.unravel_index(pts, lat.shape)
    # first entry per (object, zone, sample): minimum step index
    key = ((ti.astype(np.int64) * n_zones + zs) * k + si)
    order = np.lexsort((stp, key))
    key_s, stp_s = key[order], stp[order]
    first = np.concatenate([[True], key_s[1:] != key_s[:-1]]) if key_s.size else np.zeros(0, bool)
    key_f, stp_f = key_s[first], stp_s[first]
    pair = key_f // k
    sample = key_f % k
    upair, inv = np.unique(pair, return_inverse=True)
    fe = np.full((upair.size, k), np.inf)
    fe[inv, sample] = steps[stp_f]
    return (upair // n_zones).astype(np.int64), (upair % n_zones).astype(np.int64), fe


def assess(snap: TrackSnapshot, zones: ZoneSet, config: AssessConfig | None = None) -> Assessment:
    """One-shot assessment (builds the zone raster; for repeated use keep an :class:`Assessor`)."""
    return Assessor(zones, config).assess(snap)
