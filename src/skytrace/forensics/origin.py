"""Back-projection of a track to its launch area: smoothing, then Monte Carlo over the unseen first part.

1. Smoothing. The track's confirmed states (the tracker's filtered estimates) are resampled on a ``dt_s`` grid and
   smoothed with a constant-velocity Rauch-Tung-Striebel smoother (H. E. Rauch, F. Tung, C. T. Striebel, AIAA J.
   3 (1965)), batched over all tracks at once (struct of arrays: (B, 4) states, (B, 4, 4) covariances). The
   smoothed first state uses the whole track: its velocity is far better than the tracker's at initiation.
2. Monte Carlo over the unseen route. Shahed routes are programmed as waypoints that detour around air defences:
   launch area -> 1-3 dog-legs -> target. For each launch area, ``n_samples`` routes are drawn from the area to the
   track's end, dog-leg waypoints at uniform fractions of the way, offset sideways by Normal(0, ``lateral_spread``
   x route length); the part of each route before the first smoothed position is the unseen flight.
3. Scoring. A route explains the track as far as it passes the first smoothed position (kernel ``pass_sigma_km``)
   on a leg whose heading agrees with the smoothed heading there, and passes the smoothed path's points at
   ``checkpoint_fractions`` of its length. The area's likelihood is the mean over its routes, times its prior,
   normalised over the catalogue. Speed does not enter: without a launch time, the time flown before the first
   detection constrains nothing.

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
    n_samples: int = 4000  # routes per launch area
    max_doglegs: int = 3
    lateral_spread: float = 0.12  # dog-leg waypoint offset, 1-sigma, as a fraction of the route length
    pass_sigma_km: float = 10.0  # kernel: how close a sampled route must pass the first smoothed position
    heading_kernel_deg: float = 12.0  # kernel on the heading there (added to the smoothed heading's sigma)
    checkpoint_fractions: tuple[float, ...] = (0.33, 0.66)  # further points of the smoothed path to pass
    seed: int = 20221017
    # track stitching: earlier tracks of the same drone (the tracker lost it and started a new track)
    stitch: bool = True
    stitch_gap_s: float = 3600.0  # longest gap between a predecessor's last update and the track's first state
    stitch_gate_m: float = 2000.0  # route-length gate, plus stitch_gate_frac x distance flown in the gap
    stitch_gate_frac: float = 0.1
    stitch_heading_deg: float = 35.0  # straight on: heading difference
    stitch_turn_deg: float = 120.0  # one dog-leg in the gap: largest turn at the waypoint (0: straight on only)
    stitch_speed_ratio: float = 1.2  # cruise speeds of the two tracks
    stitch_global: bool = True  # one-to-one links chosen together (2-D assignment) instead of each track's best
    stitch_max: int = 10


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


def _track_rows(hist: TrackHistories, k: int) -> np.ndarray:
    sl = hist.rows(k)
    conf = hist.confirmed[sl]
    return sl.start + (np.flatnonzero(conf) if conf.any() else np.arange(sl.stop - sl.start))


def _track_speed(hist: TrackHistories, k: int) -> float:
    """Cruise speed of a track: the median ground speed over its confirmed rows (robust to initiation)."""
    v = hist.vel_enu[_track_rows(hist, k), :2]
    return float(np.median(np.hypot(v[:, 0], v[:, 1])))


def _stitch_scores(hist: TrackHistories, k: int, cand: np.ndarray, first: np.ndarray, speed: np.ndarray,
                   cfg: OriginConfig) -> tuple[np.ndarray, np.ndarray]:
    """Route miss of each candidate predecessor of track ``k`` in units of its tolerance, and log speed ratio."""
    last = hist.support_row
    r0 = first[k]
    gap = hist.t[r0] - hist.t[last[cand]]
    sp0, sp1 = max(speed[k], 1.0), np.maximum(speed[cand], 1.0)
    v_end = hist.vel_enu[last[cand], :2]
    v0 = hist.vel_enu[r0, :2]
    h1 = np.arctan2(v_end[:, 0], v_end[:, 1])
    h0 = float(np.arctan2(v0[0], v0[1]))
    u1 = np.column_stack([np.sin(h1), np.cos(h1)])
    u0 = np.array([np.sin(h0), np.cos(h0)])
    dist = 0.5 * (sp0 + sp1) * gap  # route length flown in the gap
    tol = cfg.stitch_gate_m + cfg.stitch_gate_frac * dist
    # P1 in metres east/north of the track's first state P0
    cos0 = np.cos(np.radians(hist.lat[r0]))
    p1 = np.column_stack([np.radians(hist.lon[last[cand]] - hist.lon[r0]) * 6_371_000.0 * cos0,
                          np.radians(hist.lat[last[cand]] - hist.lat[r0]) * 6_371_000.0])
    dh = np.abs(np.angle(np.exp(1j * (h1 - h0))))
    straight = np.hypot(*(p1 + u1 * dist[:, None]).T)
    straight = np.where(dh <= np.radians(cfg.stitch_heading_deg), straight, np.inf)
    # one dog-leg: P1 + a u1 = P0 - b u0 (P0 = 0) with a, b > 0
    # i.e. a u1 + b u0 = -P1, solved by Cramer's rule
    det = u1[:, 0] * u0[1] - u1[:, 1] * u0[0]
    safe = np.where(np.abs(det) > 1e-6, det, 1.0)
    a = (-p1[:, 0] * u0[1] + p1[:, 1] * u0[0]) / safe
    b = (-u1[:, 0] * p1[:, 1] + u1[:, 1] * p1[:, 0]) / safe
    turn_ok = (np.abs(det) > 1e-6) & (a > 0) & (b > 0) & (dh <= np.radians(cfg.stitch_turn_deg))
    dogleg = np.where(turn_ok, np.abs(a + b - dist), np.inf)
    return np.minimum(straight, dogleg) / tol, np.log(sp1 / sp0)


def stitch_links(hist: TrackHistories, cfg: OriginConfig | None = None) -> np.ndarray:
    """The predecessor of every track (index, or -1): track stitching (track-segment association).

    A tracker that loses a drone (a gap in coverage, a turn) starts a new track when it finds it again; the
    launch area is better seen from the first of them. A track's possible predecessors ended (their last
    sensor-supported state, P1 with heading h1) 0 to ``stitch_gap_s`` before it started (P0, h0). Same drone if
    its cruise speed (median over each track; within a factor ``stitch_speed_ratio``) times the gap, D, is the
    length of a route from P1 to P0 that is either

    - straight on: P1 predicted D along h1 lands within ``stitch_gate_m`` + ``stitch_gate_frac`` x D of P0, and
      the headings differ by at most ``stitch_heading_deg``; or
    - one dog-leg (if ``stitch_turn_deg`` > 0): the ray from P1 along h1 and the ray back from P0 along h0 meet
      at a waypoint W (turn at most ``stitch_turn_deg``) and |P1 W| + |W P0| is within the same tolerance of D
      (Shaheds fly straight legs between programmed waypoints at a constant cruise speed).

    With ``stitch_global`` the links are one-to-one and chosen together (each track continues at most one later
    track: a 2-D assignment, Hungarian method, on the squared miss in tolerance units plus the squared log speed
    ratio in units of its gate, "no predecessor" costing 2 — the track-segment association of S.-W. Yeom, T.
    Kirubarajan, Y. Bar-Shalom, IEEE Trans. AES 40(4), 2004); otherwise each track takes its best candidate.
    """
    from scipy.optimize import linear_sum_assignment

    cfg = cfg or OriginConfig()
    n = len(hist)
    pred = np.full(n, -1, int)
    if n == 0:
        return pred
    first = np.array([_track_rows(hist, j)[0] for j in range(n)])
    speed = np.array([_track_speed(hist, j) for j in range(n)])
    t_first, t_last = hist.t[first], hist.t[hist.support_row]
    log_gate = np.log(cfg.stitch_speed_ratio)
    pairs_k, pairs_j, costs = [], [], []
    for k in range(n):
        gap = t_first[k] - t_last
        cand = np.flatnonzero((gap > 0) & (gap <= cfg.stitch_gap_s) & (t_first < t_first[k]))
        if cand.size == 0:
            continue
        score, lr = _stitch_scores(hist, k, cand, first, speed, cfg)
        good = (score <= 1.0) & (np.abs(lr) <= log_gate)
        pairs_k.append(np.full(int(good.sum()), k))
        pairs_j.append(cand[good])
        costs.append(score[good] ** 2 + (lr[good] / log_gate) ** 2)
    if not pairs_k:
        return pred
    pk, pj, pc = np.concatenate(pairs_k), np.concatenate(pairs_j), np.concatenate(costs)
    if not cfg.stitch_global:
        for k in np.unique(pk):
            m = pk == k
            pred[k] = pj[m][np.argmin(pc[m])]
        return pred
    rows, cols = np.unique(pk), np.unique(pj)
    ri, ci = np.searchsorted(rows, pk), np.searchsorted(cols, pj)
    big = 1e6
    cost = np.full((rows.size, cols.size + rows.size), big)
    cost[ri, ci] = pc
    cost[np.arange(rows.size), cols.size + np.arange(rows.size)] = 2.0  # "no predecessor"
    r, c = linear_sum_assignment(cost)
    ok = (c < cols.size) & (cost[r, c] < big)
    pred[rows[r[ok]]] = cols[c[ok]]
    return pred


def predecessors(hist: TrackHistories, k: int, cfg: OriginConfig | None = None,
                 links: np.ndarray | None = None) -> list[int]:
    """Earlier tracks of the same drone, latest first, following :func:`stitch_links` (pass ``links`` to reuse
    them)."""
    cfg = cfg or OriginConfig()
    links = stitch_links(hist, cfg) if links is None else links
    chain: list[int] = []
    cur = k
    while links[cur] >= 0 and len(chain) < cfg.stitch_max:
        cur = int(links[cur])
        chain.append(cur)
    return chain


def smooth_first_states(hist: TrackHistories, track_rows: list[int], cfg: OriginConfig | None = None
                        ) -> list[FirstState]:
    """RTS-smoothed first states of the given tracks (indices into ``hist``), batched over tracks; with
    ``cfg.stitch`` each track is first joined to its :func:`predecessors`."""
    cfg = cfg or OriginConfig()
    b = len(track_rows)
    if b == 0:
        return []
    series = []
    links = stitch_links(hist, cfg) if cfg.stitch else None
    for k in track_rows:
        parts = [_track_rows(hist, k)]
        if cfg.stitch:
            for j in predecessors(hist, k, cfg, links):
                parts.append(_track_rows(hist, j)[hist.t[_track_rows(hist, j)] < hist.t[parts[-1][0]]])
        rows = np.concatenate(parts[::-1])
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


def _closest_on_route(px: np.ndarray, py: np.ndarray, qx: float, qy: float) -> tuple[np.ndarray, np.ndarray]:
    """Distance from point q to each sampled route (polylines (N, V)) and the route's heading there (radians)."""
    ax, ay, bx, by = px[:, :-1], py[:, :-1], px[:, 1:], py[:, 1:]
    dx, dy = bx - ax, by - ay
    len2 = np.maximum(dx * dx + dy * dy, 1e-9)
    u = np.clip(((qx - ax) * dx + (qy - ay) * dy) / len2, 0.0, 1.0)
    d = np.hypot(qx - ax - u * dx, qy - ay - u * dy)
    d = np.where(len2 > 1.0, d, np.inf)  # collapsed legs
    j = np.argmin(d, axis=1)
    rows = np.arange(px.shape[0])
    return d[rows, j], np.arctan2(dx[rows, j], dy[rows, j])


def launch_area_probabilities(first: FirstState, areas: list[LaunchArea], cfg: OriginConfig | None = None,
                              rng: np.random.Generator | None = None) -> np.ndarray:
    """Probability of each launch area (same order as ``areas``) for one smoothed track.

    For every area, ``n_samples`` routes are drawn from the area (its centre + Normal(0, radius)) to the track's
    end with 1..``max_doglegs`` dog-leg waypoints at uniform fractions in [0.15, 0.85] of the way, offset sideways
    by Normal(0, ``lateral_spread`` x route length); the unseen part of each route is the part before the track's
    first smoothed position. A route explains the track as far as it passes that position (kernel
    ``pass_sigma_km``) on a leg whose heading agrees with the smoothed heading there (kernel: the heading's sigma
    plus ``heading_kernel_deg``). The area's likelihood is the mean over its routes; times its prior; normalised.
    """
    cfg = cfg or OriginConfig()
    rng = rng or np.random.default_rng(cfg.seed)
    n = cfg.n_samples
    fwd, _ = _aeqd(first.lat, first.lon)  # the first smoothed position is the origin (0, 0)
    ex, ey = fwd.transform(first.path_lonlat[-1, 0], first.path_lonlat[-1, 1])
    ve, vn = first.vel_en
    speed0 = float(np.hypot(ve, vn))
    hdg0 = float(np.arctan2(ve, vn))
    u_cross = np.array([np.cos(hdg0), -np.sin(hdg0)])
    sd_cross = float(np.sqrt(max(u_cross @ first.vel_cov @ u_cross, 0.0)))
    hdg_sigma = np.hypot(sd_cross / max(speed0, 1.0), np.radians(cfg.heading_kernel_deg))
    k = cfg.max_doglegs
    # checkpoints the route must pass: the first smoothed position (with its heading), then points along the
    # smoothed path (its visible dog-legs constrain the route too)
    path = first.path_lonlat
    cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(np.column_stack(fwd.transform(path[:, 0], path[:, 1])),
                                                            axis=0).T))])
    checkpoints = [(0.0, 0.0)]
    for f in cfg.checkpoint_fractions:
        j = int(np.searchsorted(cum, f * cum[-1]))
        checkpoints.append(fwd.transform(path[min(j, len(path) - 1), 0], path[min(j, len(path) - 1), 1]))
    lik = np.zeros(len(areas))
    for i, a in enumerate(areas):
        axy = fwd.transform(a.lon, a.lat)
        sx = axy[0] + rng.normal(0.0, a.radius_km * 1000.0, n)
        sy = axy[1] + rng.normal(0.0, a.radius_km * 1000.0, n)
        lx, ly = ex - sx, ey - sy
        length = np.hypot(lx, ly)
        nx, ny = -ly / np.maximum(length, 1.0), lx / np.maximum(length, 1.0)
        n_wp = rng.integers(1, k + 1, n)
        frac = np.sort(rng.uniform(0.15, 0.85, (n, k)), axis=1)
        off = rng.normal(0.0, cfg.lateral_spread, (n, k)) * length[:, None]
        used = np.arange(k)[None, :] < n_wp[:, None]
        # unused waypoints collapse onto the end point (zero-length legs are ignored)
        wx = np.where(used, sx[:, None] + frac * lx[:, None] + off * nx[:, None], ex)
        wy = np.where(used, sy[:, None] + frac * ly[:, None] + off * ny[:, None], ey)
        order = np.argsort(np.where(used, frac, 2.0), axis=1)
        wx = np.take_along_axis(wx, order, axis=1)
        wy = np.take_along_axis(wy, order, axis=1)
        px = np.column_stack([sx, wx, np.full(n, ex)])
        py = np.column_stack([sy, wy, np.full(n, ey)])
        log_w = np.zeros(n)
        for j, (cx, cy) in enumerate(checkpoints):
            d, h = _closest_on_route(px, py, cx, cy)
            log_w -= 0.5 * (d / (cfg.pass_sigma_km * 1000.0)) ** 2
            if j == 0:
                log_w -= 0.5 * (np.angle(np.exp(1j * (h - hdg0))) / hdg_sigma) ** 2
        lik[i] = np.exp(log_w).mean()
    prior = np.array([a.prior for a in areas])
    post = lik * prior
    if post.sum() <= 0:  # no sampled route explains the track: fall back on the priors
        post = prior
    return post / post.sum()
