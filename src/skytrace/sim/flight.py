"""Flight model of Shahed-class one-way attack drones: dog-leg routes, cruise, climbs, terminal dive.

What matters for sensing and warning, and how it is modelled:

- Routes: launch area -> 1-3 dog-leg waypoints -> a target point near a city. Shaheds are programmed with
  waypoint routes that detour around air-defence areas and approach from unexpected sides; waypoints are drawn
  along the direct line with a lateral offset of ``lateral_spread`` x route length (1-sigma).
- Turns: at a waypoint the drone banks (~25 deg) on a circular arc of radius v^2 / (g tan 25deg) (~400 m at
  50 m/s), approximated by a quadratic Bezier through the corner.
- Speed: cruise 120-185 km/h for the piston Shahed-136/Geran-2 (public wreck analyses and Ukrainian Air Force
  reports), ~370 km/h for the jet Geran-3, 110-160 km/h for Gerbera-type decoys; constant per drone.
- Altitude: climb at 4 m/s after launch to a cruise altitude drawn log-uniformly in the wave's range
  (50-2000 m), re-drawn at each waypoint (+-40 %) and reached at 3 m/s: low legs hide from radar, high legs
  from guns.
- Terminal dive at 35 deg onto the target point; decoys instead run out of fuel at 60-95 % of the route and glide
  down.

Trajectories are piecewise-linear in time through dense knots (x, y in a local azimuthal equidistant
projection, altitude separately), so evaluating positions for millions of sensor looks is one vectorised
``np.interp`` over all drones at once (drone ``i``'s time axis is offset by ``i * TIME_STRIDE_S``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyproj import Transformer

from skytrace import geo

G_MPS2 = 9.80665
BANK_DEG = 25.0
CLIMB_MPS = 4.0
ALT_CHANGE_MPS = 3.0
DIVE_DEG = 35.0
TIME_STRIDE_S = 1.0e6  # > any scenario duration
MAX_KNOT_SPACING_M = 2000.0  # chord sagitta over 2 km is 8 cm: linear interpolation in ECEF is exact enough


@dataclass
class Fleet:
    """All drones of a scenario, as concatenated knot arrays (struct of arrays)."""

    ids: list[str]
    kind: np.ndarray  # str array: shahed / jet / decoy
    t_launch: np.ndarray  # absolute UNIX s
    t_end: np.ndarray
    speed_mps: np.ndarray
    target_city: list[str]
    impact: np.ndarray  # bool: ends on the target (False: decoy fuel-out)
    # horizontal knots: global time axis (t - t0 + i*stride), x, y (projection metres)
    h_t: np.ndarray
    h_x: np.ndarray
    h_y: np.ndarray
    # altitude knots above ground: global time axis, height
    a_t: np.ndarray
    a_h: np.ndarray
    g_ecef: np.ndarray  # (K, 3) ECEF of the ground point under each horizontal knot (at ground_alt_m)
    g_up: np.ndarray  # (K, 3) local vertical unit vector at each knot
    t0: float
    ground_alt_m: float
    to_lonlat: Transformer
    waypoints_lonlat: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.ids)

    def position_xyh(self, drone: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Projected x, y (m) and height above ground (m) of drones ``drone`` at absolute times ``t`` (clamped)."""
        t_cl = np.clip(t, self.t_launch[drone], self.t_end[drone])
        g = (t_cl - self.t0) + drone * TIME_STRIDE_S
        return np.interp(g, self.h_t, self.h_x), np.interp(g, self.h_t, self.h_y), np.interp(g, self.a_t, self.a_h)

    def position_geodetic(self, drone: np.ndarray, t: np.ndarray):
        x, y, h = self.position_xyh(drone, t)
        lon, lat = self.to_lonlat.transform(x, y)
        return lat, lon, h + self.ground_alt_m

    def position_ecef(self, drone: np.ndarray, t: np.ndarray) -> np.ndarray:
        """ECEF positions (m), interpolated between precomputed ground knots (hot path: no projection calls)."""
        t_cl = np.clip(t, self.t_launch[drone], self.t_end[drone])
        g = (t_cl - self.t0) + drone * TIME_STRIDE_S
        h = np.interp(g, self.a_t, self.a_h)
        out = np.empty((np.size(g), 3))
        for k in range(3):
            out[:, k] = np.interp(g, self.h_t, self.g_ecef[:, k]) + h * np.interp(g, self.h_t, self.g_up[:, k])
        return out

    def state_geodetic(self, drone: np.ndarray, t: np.ndarray, dt: float = 0.5):
        """lat, lon, alt_m and ENU velocity (m/s, local at the point) by central differences of ECEF positions."""
        lat, lon, alt = self.position_geodetic(drone, t)
        p1 = self.position_ecef(drone, t + dt)
        p0 = self.position_ecef(drone, t - dt)
        span = np.clip(t + dt, self.t_launch[drone], self.t_end[drone]) - np.clip(
            t - dt, self.t_launch[drone], self.t_end[drone])
        v_ecef = (p1 - p0) / np.maximum(span, 1e-9)[:, None]
        v_enu = np.einsum("nij,nj->ni", geo.enu_rotation(lat, lon), v_ecef)
        return lat, lon, alt, v_enu


def _bezier_corners(pts: np.ndarray, radii: np.ndarray, n_arc: int = 8) -> np.ndarray:
    """Replace each interior corner of a polyline by a quadratic Bezier arc of about the given turn radius."""
    out = [pts[0]]
    for k in range(1, len(pts) - 1):
        a, p, b = pts[k - 1], pts[k], pts[k + 1]
        u1 = (p - a) / max(np.linalg.norm(p - a), 1e-9)
        u2 = (b - p) / max(np.linalg.norm(b - p), 1e-9)
        cos_t = float(np.clip(u1 @ u2, -1.0, 1.0))
        theta = np.arccos(cos_t)
        if theta < np.radians(1.0):
            out.append(p)
            continue
        d = min(radii[k] * np.tan(theta / 2), 0.45 * np.linalg.norm(p - a), 0.45 * np.linalg.norm(b - p))
        s, e = p - u1 * d, p + u2 * d
        w = np.linspace(0, 1, n_arc)[:, None]
        out.extend((1 - w) ** 2 * s + 2 * (1 - w) * w * p + w**2 * e)
    out.append(pts[-1])
    return np.asarray(out)


def build_fleet(scenario, places: dict, rng: np.random.Generator, center: tuple[float, float]) -> Fleet:
    """Draw every drone of every wave of a scenario: kind, launch time, route, speed and altitude profile."""
    lat0, lon0 = center
    proj = f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +datum=WGS84 +units=m"
    fwd = Transformer.from_crs("EPSG:4326", proj, always_xy=True)
    inv = Transformer.from_crs(proj, "EPSG:4326", always_xy=True)
    launch = {p["id"]: p for p in places["launch_areas"]}
    cities = {p["id"]: p for p in places["cities"]}
    t0 = scenario.start_t
    ids, kinds, t_l, t_e, speeds, tgt, impact = [], [], [], [], [], [], []
    h_t, h_x, h_y, a_t, a_h, wps, g_ecef, g_up = [], [], [], [], [], [], [], []
    n = 0
    for w in scenario.wave:
        kinds_w = list(w.kind_mix)
        probs = np.array([w.kind_mix[k] for k in kinds_w], dtype=float)
        probs /= probs.sum()
        la = launch[w.launch_area]
        for j in range(w.count):
            kind = str(rng.choice(kinds_w, p=probs))
            city = str(rng.choice(w.targets))
            t_launch = t0 + w.first_launch_s + j * w.launch_interval_s + rng.uniform(0, 0.5 * w.launch_interval_s)
            lx, ly = fwd.transform(la["lon"] + rng.normal(0, 0.08), la["lat"] + rng.normal(0, 0.05))
            cx, cy = fwd.transform(cities[city]["lon"], cities[city]["lat"])
            r_t = w.target_jitter_m * np.sqrt(rng.uniform())
            ang = rng.uniform(0, 2 * np.pi)
            tx, ty = cx + r_t * np.cos(ang), cy + r_t * np.sin(ang)
            start, end = np.array([lx, ly]), np.array([tx, ty])
            length = float(np.linalg.norm(end - start))
            along = (end - start) / max(length, 1.0)
            normal = np.array([-along[1], along[0]])
            n_wp = int(rng.integers(w.waypoints[0], w.waypoints[1] + 1))
            fr = np.sort(rng.uniform(0.15, 0.85, n_wp))
            off = rng.normal(0, w.lateral_spread * length, n_wp)
            # the last leg heads in from wherever the last waypoint is: that is the dog-leg warning must handle
            pts = np.vstack([start, start + fr[:, None] * (end - start) + off[:, None] * normal, end])
            if kind == "jet":
                v = rng.uniform(*w.jet_speed_kmh) / 3.6
            elif kind == "decoy":
                v = rng.uniform(*w.decoy_speed_kmh) / 3.6
            else:
                v = rng.uniform(*w.speed_kmh) / 3.6
            radius = v**2 / (G_MPS2 * np.tan(np.radians(BANK_DEG)))
            dense = _bezier_corners(pts, np.full(len(pts), radius))
            seg = np.linalg.norm(np.diff(dense, axis=0), axis=1)
            s = np.concatenate([[0.0], np.cumsum(seg)])
            total = s[-1]
            hits = True
            if kind == "decoy" and rng.uniform() < 0.5:
                hits = False
                total = total * rng.uniform(0.6, 0.95)
                keep = s < total
                xe, ye = np.interp(total, s, dense[:, 0]), np.interp(total, s, dense[:, 1])
                dense = np.vstack([dense[keep], [xe, ye]])
                s = np.concatenate([s[keep], [total]])
            # densify long legs so that ECEF interpolation between knots follows the Earth's curvature
            n_sub = np.maximum(np.ceil(np.diff(s) / MAX_KNOT_SPACING_M).astype(int), 1)
            frac = np.concatenate([np.arange(m) / m for m in n_sub] + [[0.0]])
            base_i = np.concatenate([np.full(m, i) for i, m in enumerate(n_sub)] + [[len(s) - 1]])
            nxt = np.minimum(base_i + 1, len(s) - 1)
            dense = dense[base_i] + frac[:, None] * (dense[nxt] - dense[base_i])
            s = s[base_i] + frac * (s[nxt] - s[base_i])
            tk = s / v  # relative to launch
            duration = float(tk[-1])
            # altitude profile (height above ground)
            lo, hi = w.altitude_m
            base = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
            seg_h = np.clip(base * rng.uniform(0.6, 1.4, n_wp + 1), lo, hi)
            kt, kh = [0.0, seg_h[0] / CLIMB_MPS], [0.0, seg_h[0]]
            # waypoint times: arc length of the original corners along the dense path, approximately
            wp_s = np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))[:-1] * (s[-1] / max(
                np.sum(np.linalg.norm(np.diff(pts, axis=0), axis=1)), 1.0))
            for k, sw in enumerate(wp_s):
                tw = sw / v
                if tw <= kt[-1]:
                    continue
                kt.append(tw)
                kh.append(kh[-1])
                dh = abs(seg_h[k + 1] - kh[-1])
                kt.append(tw + dh / ALT_CHANGE_MPS)
                kh.append(seg_h[k + 1])
            final_h = kh[-1]
            if hits:
                t_dive = duration - (final_h / np.tan(np.radians(DIVE_DEG))) / v
            else:
                t_dive = duration - (final_h / np.tan(np.radians(8.0))) / v  # glide at ~8 deg
            t_dive = max(t_dive, kt[1] if len(kt) > 1 else 0.0)
            kt_arr, kh_arr = np.array(kt), np.array(kh)
            keep = kt_arr < t_dive
            h_at_dive = float(np.interp(t_dive, kt_arr, kh_arr))
            kt_arr = np.concatenate([kt_arr[keep], [t_dive, duration]])
            kh_arr = np.concatenate([kh_arr[keep], [h_at_dive, 0.0]])
            # monotonic time knots (drop duplicates)
            good = np.concatenate([[True], np.diff(kt_arr) > 1e-6])
            kt_arr, kh_arr = kt_arr[good], kh_arr[good]
            off_t = (t_launch - t0) + n * TIME_STRIDE_S
            h_t.append(tk + off_t)
            h_x.append(dense[:, 0])
            h_y.append(dense[:, 1])
            lon_k, lat_k = inv.transform(dense[:, 0], dense[:, 1])
            g_ecef.append(np.column_stack(geo.geodetic_to_ecef(lat_k, lon_k, np.full(len(lat_k),
                                                                                     scenario.ground_alt_m))))
            g_up.append(geo.enu_rotation(lat_k, lon_k)[:, 2, :])
            a_t.append(kt_arr + off_t)
            a_h.append(kh_arr)
            lon_w, lat_w = inv.transform(pts[:, 0], pts[:, 1])
            wps.append(np.column_stack([lon_w, lat_w]))
            ids.append(f"D{n + 1:04d}")
            kinds.append(kind)
            t_l.append(t_launch)
            t_e.append(t_launch + duration)
            speeds.append(v)
            tgt.append(city)
            impact.append(hits)
            n += 1
    cat = (lambda xs: np.concatenate(xs) if xs else np.zeros(0))  # noqa: E731
    return Fleet(ids=ids, kind=np.array(kinds, dtype=object), t_launch=np.array(t_l), t_end=np.array(t_e),
                 speed_mps=np.array(speeds), target_city=tgt, impact=np.array(impact, dtype=bool),
                 h_t=cat(h_t), h_x=cat(h_x), h_y=cat(h_y), a_t=cat(a_t), a_h=cat(a_h),
                 g_ecef=np.concatenate(g_ecef) if g_ecef else np.zeros((0, 3)),
                 g_up=np.concatenate(g_up) if g_up else np.zeros((0, 3)), t0=t0,
                 ground_alt_m=scenario.ground_alt_m, to_lonlat=inv, waypoints_lonlat=wps)
