"""Back-projection of a track to its launch area: smoothing, then Monte Carlo over the unseen first part.

1. Smoothing. The track's confirmed states (the tracker's filtered estimates) are resampled on a ``dt_s`` grid and
   smoothed with a constant-velocity Rauch-Tung-Striebel smoother (H. E. Rauch, F. Tung, C. T. Striebel, AIAA J.
   3 (1965)), batched over all tracks at once (struct of arrays: (B, 4) states, (B, 4, 4) covariances). The
   smoothed first state uses the whole track: its velocity is far better than the tracker's at initiation.
2. Monte Carlo. Before its first detection the drone flew an unseen route with dog-legs (Shahed routes are
   programmed as waypoints that detour around air defences). ``n_samples`` backward routes are drawn from the first
   smoothed state: heading ~ Normal(smoothed heading, its sigma), speed ~ Normal(smoothed speed, its sigma),
   0..``max_doglegs`` dog-legs with turns ~ Normal(0, ``turn_sigma_deg``), unseen flight time uniform up to the
   endurance ``max_range_km`` / speed, split at uniform times into legs.
3. Scoring. Area a scores the mean over routes of exp(-d^2 / 2 r_a^2), d the closest approach of the route to the
   area's centre and r_a its radius (places are known to a few km, launch sites spread over several); times the
   area's prior, normalised over the catalogue.

All geometry is in an azimuthal equidistant projection centred on the first smoothed position (distances from
that centre are exact, others good to well under 1 % over 1000 km).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyproj import Transformer

from skytrace.forensics.inputs import LaunchArea
from skytrace.forensics.tracks import TrackHistories


@dataclass(frozen=True)
class OriginConfig:
    dt_s: float = 10.0  # smoothing grid
    accel_psd: float = 0.5  # white-acceleration spectral density of the CV model, m^2/s^3
    n_samples: int = 4000
    max_doglegs: int = 3
    turn_sigma_deg: float = 35.0
    heading_floor_deg: float = 3.0
    speed_sigma_floor_mps: float = 3.0
    max_range_km: float = 2000.0  # endurance of the Shahed-136 class, publicly stated 1800-2500 km
    seed: int = 20221017


@dataclass
class FirstState:
    """The smoothed state at first detection, in geodetic coordinates and local ENU velocity."""

    t: float
    lat: float
    lon: float
    vel_en: np.ndarray  # (2,) m/s
    vel_cov: np.ndarray  # (2, 2)
    path_lonlat: np.ndarray  # (n, 2) smoothed path, for maps


def _aeqd(lat0: float, lon0: float) -> tuple[Transformer, Transformer]:
    proj = f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +datum=WGS84 +units=m"
    return (Transformer.from_crs("EPSG:4326", proj, always_xy=True),
            Transformer.from_crs(proj, "EPSG:4326", always_xy=True))


def smooth_first_states(hist: TrackHistories, track_rows: list[int], cfg: OriginConfig | None = None
                        ) -> list[FirstState]:
    """RTS-smoothed first states of the given tracks (indices into ``hist``), batched over tracks."""
    cfg = cfg or OriginConfig()
    b = len(track_rows)
    if b == 0:
        return []
    series = []
    for k in track_rows:
        sl = hist.rows(k)
        conf = hist.confirmed[sl]
        idx = np.flatnonzero(conf) if conf.any() else np.arange(sl.stop - sl.start)
        rows = sl.start + idx
        series.append(rows)
    # one projection per track, centred at its first point: grid cells of dt_s, last report of each cell
    n_steps = max(int((hist.t[r[-1]] - hist.t[r[0]]) // cfg.dt_s) + 1 for r in series)
    z = np.full((b, n_steps, 2), np.nan)
    r_var = np.full((b, n_steps), np.nan)
    fwd_list, inv_list, t0s = [], [], []
    for i, rows in enumerate(series):
        fwd, inv = _aeqd(float(hist.lat[rows[0]]), float(hist.lon[rows[0]]))
        x, y = fwd.transform(hist.lon[rows], hist.lat[rows])
        cell = ((hist.t[rows] - hist.t[rows[0]]) // cfg.dt_s).astype(int)
        z[i, cell, 0], z[i, cell, 1] = x, y  # later rows of a cell overwrite earlier ones
        r_var[i, cell] = np.maximum(hist.pos_sigma_m[rows], 5.0) ** 2
        fwd_list.append(fwd)
        inv_list.append(inv)
        t0s.append(hist.t[rows[0]])
    dt = cfg.dt_s
    f = np.eye(4)
    f[0, 2] = f[1, 3] = dt
    q1 = cfg.accel_psd * np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]])
    q = np.zeros((4, 4))
    q[np.ix_([0, 2], [0, 2])] = q1
    q[np.ix_([1, 3], [1, 3])] = q1
    # initial state: first report, velocity from the tracker's first state (broad covariance)
    x = np.zeros((b, 4))
    p = np.zeros((b, 4, 4))
    for i, rows in enumerate(series):
        x[i, :2] = z[i, 0]
        x[i, 2:] = hist.vel_enu[rows[0], :2]
        p[i] = np.diag([r_var[i, 0], r_var[i, 0], 30.0**2, 30.0**2])
    xs_f = np.zeros((n_steps, b, 4))
    ps_f = np.zeros((n_steps, b, 4, 4))
    xs_p = np.zeros((n_steps, b, 4))
    ps_p = np.zeros((n_steps, b, 4, 4))
    for k in range(n_steps):
        if k > 0:
            x = x @ f.T
            p = f @ p @ f.T + q
        xs_p[k], ps_p[k] = x, p
        has = ~np.isnan(z[:, k, 0])
        if has.any():
            s = p[has][:, :2, :2] + r_var[has, k][:, None, None] * np.eye(2)
            gain = p[has][:, :, :2] @ np.linalg.inv(s)
            innov = z[has, k] - x[has, :2]
            x[has] = x[has] + np.einsum("bij,bj->bi", gain, innov)
            p[has] = p[has] - gain @ p[has][:, :2, :]
        xs_f[k], ps_f[k] = x, p
    xs = xs_f.copy()
    ps = ps_f.copy()
    for k in range(n_steps - 2, -1, -1):
        c = ps_f[k] @ f.T @ np.linalg.inv(ps_p[k + 1])
        xs[k] = xs_f[k] + np.einsum("bij,bj->bi", c, xs[k + 1] - xs_p[k + 1])
        ps[k] = ps_f[k] + c @ (ps[k + 1] - ps_p[k + 1]) @ np.transpose(c, (0, 2, 1))
    out = []
    for i, rows in enumerate(series):
        last = int((hist.t[rows[-1]] - hist.t[rows[0]]) // dt)
        lon, lat = inv_list[i].transform(xs[: last + 1, i, 0], xs[: last + 1, i, 1])
        out.append(FirstState(t=float(t0s[i]), lat=float(lat[0]), lon=float(lon[0]), vel_en=xs[0, i, 2:].copy(),
                              vel_cov=ps[0, i, 2:, 2:].copy(), path_lonlat=np.column_stack([lon, lat])))
    return out


def _segment_distance(ax, ay, bx, by, px, py):
    """Distance from points (px, py) (shape (A,)) to segments a->b (shape (N, L)): (N, L, A)."""
    dx, dy = (bx - ax)[..., None], (by - ay)[..., None]
    wx, wy = px - ax[..., None], py - ay[..., None]
    len2 = np.maximum(dx * dx + dy * dy, 1e-9)
    u = np.clip((wx * dx + wy * dy) / len2, 0.0, 1.0)
    return np.hypot(wx - u * dx, wy - u * dy)


def launch_area_probabilities(first: FirstState, areas: list[LaunchArea], cfg: OriginConfig | None = None,
                              rng: np.random.Generator | None = None) -> np.ndarray:
    """Probability of each launch area (same order as ``areas``) for one smoothed first state."""
    cfg = cfg or OriginConfig()
    rng = rng or np.random.default_rng(cfg.seed)
    n = cfg.n_samples
    fwd, _ = _aeqd(first.lat, first.lon)
    ax, ay = fwd.transform(np.array([a.lon for a in areas]), np.array([a.lat for a in areas]))
    ve, vn = first.vel_en
    speed0 = float(np.hypot(ve, vn))
    hdg0 = float(np.arctan2(ve, vn))
    # heading and speed sigmas from the smoothed velocity covariance
    c = first.vel_cov
    u_along = np.array([np.sin(hdg0), np.cos(hdg0)])
    u_cross = np.array([np.cos(hdg0), -np.sin(hdg0)])
    sd_cross = float(np.sqrt(max(u_cross @ c @ u_cross, 0.0)))
    sd_along = float(np.sqrt(max(u_along @ c @ u_along, 0.0)))
    hdg_sigma = np.hypot(sd_cross / max(speed0, 1.0), np.radians(cfg.heading_floor_deg))
    speed = np.clip(rng.normal(speed0, np.hypot(sd_along, cfg.speed_sigma_floor_mps), n), 20.0, 150.0)
    heading = rng.normal(hdg0, hdg_sigma, n)
    n_legs = rng.integers(0, cfg.max_doglegs + 1, n) + 1
    t_total = rng.uniform(0.0, 1.0, n) * cfg.max_range_km * 1000.0 / speed
    legs = cfg.max_doglegs + 1
    cuts = np.sort(rng.uniform(0.0, 1.0, (n, legs - 1)), axis=1)
    # legs beyond n_legs get zero length: their cut points collapse to 1
    cuts = np.where(np.arange(legs - 1)[None, :] < (n_legs - 1)[:, None], cuts, 1.0)
    cuts = np.sort(cuts, axis=1)
    frac = np.diff(np.concatenate([np.zeros((n, 1)), cuts, np.ones((n, 1))], axis=1), axis=1)  # (n, legs)
    length = frac * (speed * t_total)[:, None]
    turns = np.concatenate([np.zeros((n, 1)), rng.normal(0.0, np.radians(cfg.turn_sigma_deg), (n, legs - 1))], axis=1)
    hdg = heading[:, None] + np.cumsum(turns, axis=1)
    # walking backwards: each leg ends (in time) where the previous backward point is
    step_x = -length * np.sin(hdg)
    step_y = -length * np.cos(hdg)
    px = np.concatenate([np.zeros((n, 1)), np.cumsum(step_x, axis=1)], axis=1)
    py = np.concatenate([np.zeros((n, 1)), np.cumsum(step_y, axis=1)], axis=1)
    d = _segment_distance(px[:, :-1], py[:, :-1], px[:, 1:], py[:, 1:], np.asarray(ax), np.asarray(ay))
    d_min = d.min(axis=1)  # (n, A)
    r = np.array([a.radius_km * 1000.0 for a in areas])
    score = np.exp(-0.5 * (d_min / r) ** 2).mean(axis=0)
    prior = np.array([a.prior for a in areas])
    w = score * prior
    if w.sum() <= 0:  # no sampled route comes near any area: fall back on the priors
        w = prior
    return w / w.sum()
