"""The simulation engine: a scenario -> truth.jsonl, sensors.json, detections.jsonl, zones.geojson, meta.json.

Time advances in chunks (``scenario.chunk_s``, 60 s by default). In each chunk, every sensor family generates
its looks for all active drones at once (struct-of-arrays; candidate node/drone pairs from a KD-tree), so cost
grows with the number of detections, not with nodes x drones. Reports are delivered with latency (and a few
very late), and written in *arrival* order, as a fusion centre would receive them; the bounded pending buffer
holds reports not yet delivered. Deterministic for a seed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pyproj import Transformer
from scipy.spatial import cKDTree

from skytrace import geo
from skytrace.batch import DetectionBatch
from skytrace.io.formats import JsonlWriter, write_sensors
from skytrace.model import Detection, Heartbeat, TruthPoint
from skytrace.sensors import acoustic as ac
from skytrace.sensors import radar as rd
from skytrace.sim.flight import Fleet, build_fleet
from skytrace.sim.network import (
    SIGHTINGS_ID,
    AcousticNetwork,
    auto_radars,
    place_acoustic,
    region_geometry,
    sensor_records,
)
from skytrace.sim.scenario import Scenario
from skytrace.zones import builtin_oblasts, load_places

DELAY_ITERATIONS = 8  # fixed-point iterations for the retarded time; error shrinks by v/c ~ 0.15 each


@dataclass
class SimResult:
    out_dir: Path
    n_drones: int
    n_sensors: int
    n_truth: int
    detections_by_kind: dict[str, int] = field(default_factory=dict)
    t_start: float = 0.0
    t_end: float = 0.0
    wall_s: float = 0.0
    cpu_s: float = 0.0

    @property
    def n_detections(self) -> int:
        return sum(self.detections_by_kind.values())


@dataclass
class World:
    """Everything drawn before time starts: the fleet, the networks, and lookup structures."""

    scenario: Scenario
    fleet: Fleet
    net: AcousticNetwork
    radars: list
    node_ecef: np.ndarray
    node_rot: np.ndarray
    node_tree: cKDTree | None
    node_phase: np.ndarray
    search_radius_m: float
    radar_ecef: np.ndarray
    radar_rot: np.ndarray
    city_xy: np.ndarray
    sensor_ids: list[str]
    fwd: Transformer


def _search_radius_m(net: AcousticNetwork) -> float:
    """Horizontal distance beyond which even the loudest source at the quietest node has Pd < 1e-4."""
    if net.noise_db.size == 0:
        return 0.0
    floor = ac.DETECT_THRESHOLD_DB - 3 * ac.SCINTILLATION_DB - 6 * ac.DETECT_WIDTH_DB
    r = np.linspace(100, 40_000, 4000)
    snr = ac.snr_db(r, float(net.noise_db.min()), max(ac.SOURCE_LEVEL_DB.values()))
    return float(r[np.argmax(snr < floor)])


def build_world(sc: Scenario, rng: np.random.Generator) -> World:
    places = load_places()
    zones = builtin_oblasts()
    country = region_geometry(zones, ["all"])
    region = region_geometry(zones, sc.region)
    # projection centre: mean of the targeted cities and launch areas
    cities = {p["id"]: p for p in places["cities"]}
    launch = {p["id"]: p for p in places["launch_areas"]}
    pts = [(cities[c]["lat"], cities[c]["lon"]) for w in sc.wave for c in w.targets]
    pts += [(launch[w.launch_area]["lat"], launch[w.launch_area]["lon"]) for w in sc.wave]
    lat0, lon0 = (np.mean([p[0] for p in pts]), np.mean([p[1] for p in pts])) if pts else (49.0, 31.5)
    proj = f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +datum=WGS84 +units=m"
    fwd = Transformer.from_crs("EPSG:4326", proj, always_xy=True)
    inv = Transformer.from_crs(proj, "EPSG:4326", always_xy=True)
    fleet = build_fleet(sc, places, rng, (float(lat0), float(lon0)))
    net = place_acoustic(sc, places, region, country, rng, fwd, inv)
    radars = list(sc.radar) + auto_radars(sc, places, rng)
    node_ecef = np.column_stack(geo.geodetic_to_ecef(net.lat, net.lon, net.alt_m)) if net.lat.size else np.zeros(
        (0, 3))
    node_rot = geo.enu_rotation(net.lat, net.lon) if net.lat.size else np.zeros((0, 3, 3))
    tree = cKDTree(np.column_stack([net.x, net.y])) if net.x.size else None
    r_lat = np.array([r.lat for r in radars])
    r_lon = np.array([r.lon for r in radars])
    r_alt = np.array([sc.ground_alt_m + r.mast_m for r in radars])
    radar_ecef = np.column_stack(geo.geodetic_to_ecef(r_lat, r_lon, r_alt)) if radars else np.zeros((0, 3))
    radar_rot = geo.enu_rotation(r_lat, r_lon) if radars else np.zeros((0, 3, 3))
    if radar_rot.ndim == 2:
        radar_rot = radar_rot[None]
    city_xy = np.array([fwd.transform(c["lon"], c["lat"]) for c in places["cities"]])
    sensor_ids = list(net.ids) + [r.id for r in radars] + ([SIGHTINGS_ID] if sc.sightings.enabled else [])
    return World(sc, fleet, net, radars, node_ecef, node_rot, tree,
                 rng.uniform(0, sc.acoustic.report_interval_s, len(net.ids)), _search_radius_m(net),
                 radar_ecef, radar_rot, city_xy, sensor_ids, fwd)


def _batch(n: int, **cols) -> DetectionBatch:
    b = DetectionBatch.empty(n)
    for k, v in cols.items():
        setattr(b, k, np.asarray(v, dtype=np.int32 if k in ("sensor", "source") else float))
    return b


def _active(fleet: Fleet, t_lo: float, t_hi: float) -> np.ndarray:
    return np.flatnonzero((fleet.t_launch < t_hi) & (fleet.t_end > t_lo))


def retarded_time(fleet: Fleet, drone: np.ndarray, t_rx: np.ndarray, sensor_ecef: np.ndarray, c_mps: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Emission time tau with t_rx = tau + |p(tau) - s| / c, by fixed-point iteration; returns (tau, p(tau))."""
    tau = t_rx.copy()
    for _ in range(DELAY_ITERATIONS):
        p = fleet.position_ecef(drone, tau)
        tau = t_rx - np.linalg.norm(p - sensor_ecef, axis=1) / c_mps
    return tau, fleet.position_ecef(drone, tau)


def acoustic_looks(world: World, t0: float, t1: float, rng: np.random.Generator) -> tuple[DetectionBatch, dict]:
    """Acoustic detections received in [t0, t1): true engines (with sound delay), false alarms, confusers."""
    sc, net, fleet = world.scenario, world.net, world.fleet
    a = sc.acoustic
    dt = a.report_interval_s
    out: list[DetectionBatch] = []
    diag: dict = {}
    n_nodes = len(net.ids)
    if n_nodes == 0:
        return DetectionBatch.empty(), diag
    max_delay = world.search_radius_m * 1.5 / 343.0
    active = _active(fleet, t0 - max_delay - dt, t1)
    if active.size and world.node_tree is not None:
        k0, k1 = int(np.floor((t0 - dt) / dt)), int(np.ceil(t1 / dt))
        ticks = np.arange(k0, k1) * dt
        dd, tt = np.meshgrid(active, ticks, indexing="ij")
        dd, tt = dd.ravel(), tt.ravel()
        live = (tt >= fleet.t_launch[dd] - max_delay) & (tt <= fleet.t_end[dd] + max_delay + dt)
        dd, tt = dd[live], tt[live]
        x, y, _ = fleet.position_xyh(dd, tt)
        hits = world.node_tree.query_ball_point(np.column_stack([x, y]), world.search_radius_m, return_sorted=False)
        lens = np.fromiter((len(h) for h in hits), dtype=np.int64, count=len(hits))
        if lens.sum():
            node = np.concatenate([np.asarray(h, dtype=np.int64) for h in hits if h])
            pair_d = np.repeat(dd, lens)
            t_rx = np.repeat(tt, lens) + world.node_phase[node]
            # cheap bound before the costly retarded-time solve: even at the closest range the drone could
            # reach within the delay, and with +3 sigma scintillation, is this look detectable at all? (drops
            # looks whose expected Pd is < 1e-4: about one report in 10,000)
            sl_all = np.array([ac.SOURCE_LEVEL_DB.get(k, ac.SOURCE_LEVEL_DB["shahed"]) for k in fleet.kind])
            horiz = np.hypot(np.repeat(x, lens) - net.x[node], np.repeat(y, lens) - net.y[node])
            xr, yr, hr = fleet.position_xyh(pair_d, t_rx - horiz / 343.0)  # approximate retarded position
            slant = np.hypot(np.hypot(xr - net.x[node], yr - net.y[node]), hr)
            closest = np.maximum(slant - 0.2 * fleet.speed_mps[pair_d] * (slant / 343.0) - 300.0, 1.0)
            best_snr = ac.snr_db(closest, net.noise_db[node], sl_all[pair_d]) + 3 * ac.SCINTILLATION_DB
            keep = (t_rx >= t0) & (t_rx < t1) & (ac.detection_probability(best_snr) > 1e-3)
            node, pair_d, t_rx = node[keep], pair_d[keep], t_rx[keep]
            tau, p = retarded_time(fleet, pair_d, t_rx, world.node_ecef[node], 343.0)
            flying = (tau >= fleet.t_launch[pair_d]) & (tau <= fleet.t_end[pair_d])
            node, pair_d, t_rx, tau, p = node[flying], pair_d[flying], t_rx[flying], tau[flying], p[flying]
            az, el, rng_m = geo.aer_from_ecef(world.node_ecef[node], world.node_rot[node], p)
            sl = sl_all[pair_d]
            mean_snr = ac.snr_db(rng_m, net.noise_db[node], sl)
            look_snr = mean_snr + rng.normal(0, ac.SCINTILLATION_DB, node.size)
            det = rng.uniform(size=node.size) < ac.detection_probability(look_snr)
            cand = {"cand_range_m": rng_m, "cand_noise_db": net.noise_db[node], "cand_source_db": sl,
                    "cand_t_rx": t_rx, "cand_tau": tau, "cand_p": p, "cand_node": node,
                    "cand_detected": det.copy()}
            # two engines closer in bearing than the array resolves give one report (the louder)
            order = np.lexsort((az, t_rx, node))
            same = (np.diff(node[order]) == 0) & (np.diff(t_rx[order]) == 0) & (
                np.abs(geo.wrap_deg(np.diff(az[order]))) < a.resolution_deg)
            weaker = np.where(look_snr[order][1:] < look_snr[order][:-1], order[1:], order[:-1])[same]
            det[weaker] = False
            idx = np.flatnonzero(det)
            node, pair_d, t_rx, tau, az, el, rng_m, look_snr = (v[idx] for v in (node, pair_d, t_rx, tau, az, el,
                                                                                 rng_m, look_snr))
            sig = ac.bearing_sigma_deg(look_snr, net.nominal_sigma_deg[node])
            bearing = az + rng.normal(0, 1, idx.size) * sig
            outlier = rng.uniform(size=idx.size) < a.outlier_fraction
            bearing[outlier] = rng.uniform(0, 360, int(outlier.sum()))
            elev = np.where(net.has_elevation[node],
                            np.clip(el + rng.normal(0, 1, idx.size) * ac.ELEVATION_FACTOR * sig, -90, 90), np.nan)
            out.append(_batch(idx.size, t=t_rx, sensor=node, bearing_deg=np.mod(bearing, 360.0), elevation_deg=elev,
                              snr_db=look_snr, source=np.where(outlier, -1, pair_d)))
            diag = {**cand, "drone": pair_d, "tau": tau, "true_az": az, "true_el": el, "range_m": rng_m, "sigma": sig,
                    "outlier": outlier, "n_true": idx.size}
    # random false alarms
    n_fa = rng.poisson(n_nodes * a.false_alarm_per_hour / 3600.0 * (t1 - t0))
    if n_fa:
        node = rng.integers(0, n_nodes, n_fa)
        snr = ac.DETECT_THRESHOLD_DB + rng.exponential(1.5, n_fa)
        el = np.where(net.has_elevation[node], rng.uniform(0, 40, n_fa), np.nan)
        out.append(_batch(n_fa, t=rng.uniform(t0, t1, n_fa), sensor=node, bearing_deg=rng.uniform(0, 360, n_fa),
                          elevation_deg=el, snr_db=snr))
    # persistent confusers (generator, road, factory): on for a chunk with probability `confuser_duty`
    conf_nodes = np.flatnonzero(np.isfinite(net.confuser_bearing_deg))
    on = conf_nodes[rng.uniform(size=conf_nodes.size) < a.confuser_duty]
    if on.size:
        k = np.arange(int(np.floor(t0 / dt)) - 1, int(np.ceil(t1 / dt)) + 1) * dt
        node = np.repeat(on, k.size)
        t = np.tile(k, on.size) + world.node_phase[node]
        keep = (t >= t0) & (t < t1) & (rng.uniform(size=t.size) < 0.8)
        node, t = node[keep], t[keep]
        snr = ac.DETECT_THRESHOLD_DB + rng.uniform(0, 8, node.size)
        sig = ac.bearing_sigma_deg(snr, net.nominal_sigma_deg[node])
        b = np.mod(net.confuser_bearing_deg[node] + rng.normal(0, 1, node.size) * sig, 360.0)
        el = np.where(net.has_elevation[node], np.clip(rng.normal(2, 2, node.size), -90, 90), np.nan)
        out.append(_batch(node.size, t=t, sensor=node, bearing_deg=b, elevation_deg=el, snr_db=snr))
    batch = DetectionBatch.concat(out)
    lat = a.latency_s * rng.lognormal(0, 0.5, len(batch))
    late = rng.uniform(size=len(batch)) < a.late_fraction
    lat[late] += rng.uniform(5, a.late_max_s, int(late.sum()))
    batch.t_arrival = batch.t + lat
    return batch, diag


def radar_looks(world: World, t0: float, t1: float, rng: np.random.Generator) -> DetectionBatch:
    """Radar plots in [t0, t1): targets above the radar horizon, detected by SNR, plus clutter."""
    fleet = world.fleet
    out: list[DetectionBatch] = []
    base = len(world.net.ids)
    active = _active(fleet, t0, t1)
    for ri, r in enumerate(world.radars):
        scans = np.arange(np.ceil(t0 / r.scan_s), np.ceil(t1 / r.scan_s)) * r.scan_s
        if scans.size == 0:
            continue
        if active.size:
            dd, ss = np.meshgrid(active, scans, indexing="ij")
            dd, ss = dd.ravel(), ss.ravel()
            s_ecef = np.repeat(world.radar_ecef[ri][None], dd.size, axis=0)
            s_rot = np.repeat(world.radar_rot[ri][None], dd.size, axis=0)
            az0, _, _ = geo.aer_from_ecef(s_ecef, s_rot, fleet.position_ecef(dd, ss))
            t_obs = ss + az0 / 360.0 * r.scan_s  # the beam sweeps clockwise from north
            flying = (t_obs >= fleet.t_launch[dd]) & (t_obs <= fleet.t_end[dd]) & (t_obs < t1)
            dd, t_obs, s_ecef, s_rot = dd[flying], t_obs[flying], s_ecef[flying], s_rot[flying]
            p = fleet.position_ecef(dd, t_obs)
            az, el, rng_m = geo.aer_from_ecef(s_ecef, s_rot, p)
            _, _, h = fleet.position_xyh(dd, t_obs)
            ground_m = rng_m * np.cos(np.radians(el))
            visible = ground_m < geo.radar_horizon_m(r.mast_m, h)
            pd = rd.detection_probability(rd.snr_db(rng_m, r.max_range_m))
            det = visible & (rng.uniform(size=dd.size) < pd)
            n = int(det.sum())
            out.append(_batch(
                n, t=t_obs[det], sensor=np.full(n, base + ri),
                bearing_deg=np.mod(az[det] + rng.normal(0, r.bearing_sigma_deg, n), 360.0),
                elevation_deg=np.clip(el[det] + rng.normal(0, r.elevation_sigma_deg, n), -90, 90),
                range_m=np.abs(rng_m[det] + rng.normal(0, r.range_sigma_m, n)),
                snr_db=rd.snr_db(rng_m[det], r.max_range_m), source=dd[det]))
        n_cl = rng.poisson(r.clutter_per_scan * scans.size)
        if n_cl:
            t = rng.choice(scans, n_cl) + rng.uniform(0, r.scan_s, n_cl)
            keep = t < t1
            n_cl = int(keep.sum())
            out.append(_batch(n_cl, t=t[keep], sensor=np.full(n_cl, base + ri),
                              bearing_deg=rng.uniform(0, 360, n_cl), elevation_deg=rng.uniform(0, 3, n_cl),
                              range_m=r.max_range_m * np.sqrt(rng.uniform(0.001, 1, n_cl)),
                              snr_db=rd.DETECT_THRESHOLD_DB + rng.exponential(1.5, n_cl)))
    batch = DetectionBatch.concat(out)
    lat_s = np.array([r.latency_s for r in world.radars]) if world.radars else np.zeros(0)
    if len(batch):
        batch.t_arrival = batch.t + lat_s[batch.sensor - base] * rng.uniform(0.8, 1.5, len(batch))
    return batch


def sighting_reports(world: World, t0: float, t1: float, rng: np.random.Generator) -> DetectionBatch:
    """Citizen sightings in [t0, t1): km-level position error, tens of seconds late, some wrong."""
    sc, fleet = world.scenario, world.fleet
    s = sc.sightings
    if not s.enabled:
        return DetectionBatch.empty()
    sid = len(world.sensor_ids) - 1
    step = 10.0
    ticks = np.arange(np.ceil(t0 / step), np.ceil(t1 / step)) * step
    active = _active(fleet, t0, t1)
    out: list[DetectionBatch] = []
    if active.size and ticks.size:
        dd, tt = np.meshgrid(active, ticks, indexing="ij")
        dd, tt = dd.ravel(), (tt.ravel() + rng.uniform(0, step, dd.size))
        ok = (tt >= fleet.t_launch[dd]) & (tt <= fleet.t_end[dd]) & (tt < t1)
        dd, tt = dd[ok], tt[ok]
        x, y, h = fleet.position_xyh(dd, tt)
        d_city = np.min(np.hypot(x[:, None] - world.city_xy[None, :, 0], y[:, None] - world.city_xy[None, :, 1]),
                        axis=1)
        rate_h = s.base_rate_per_hour + s.city_rate_per_hour * np.exp(-d_city / (s.city_scale_km * 1000))
        p = rate_h * step / 3600.0 * ((h > 20) & (h <= s.max_alt_m))
        seen = rng.uniform(size=dd.size) < p
        dd, tt, x, y, h = dd[seen], tt[seen], x[seen], y[seen], h[seen]
        n = dd.size
        err = rng.uniform(*s.pos_error_m, n)
        x = x + rng.normal(0, 1, n) * err
        y = y + rng.normal(0, 1, n) * err
        lon, lat = fleet.to_lonlat.transform(x, y)
        alt = np.clip(h + sc.ground_alt_m + rng.normal(0, s.alt_error_m, n), sc.ground_alt_m + 10, 10_000)
        out.append(_batch(n, t=tt + rng.normal(0, s.time_error_s, n), sensor=np.full(n, sid), lat=lat, lon=lon,
                          alt_m=alt, pos_sigma_m=np.full(n, s.reported_sigma_m),
                          alt_sigma_m=np.full(n, s.reported_alt_sigma_m), t_arrival=tt + rng.uniform(*s.delay_s, n),
                          source=dd))
    n_wrong = rng.poisson(s.wrong_per_hour * (t1 - t0) / 3600.0)
    if n_wrong:
        c = world.city_xy[rng.integers(0, len(world.city_xy), n_wrong)]
        x = c[:, 0] + rng.normal(0, 15_000, n_wrong)
        y = c[:, 1] + rng.normal(0, 15_000, n_wrong)
        lon, lat = fleet.to_lonlat.transform(x, y)
        t = rng.uniform(t0, t1, n_wrong)
        out.append(_batch(n_wrong, t=t, sensor=np.full(n_wrong, sid), lat=lat, lon=lon,
                          alt_m=sc.ground_alt_m + rng.uniform(100, 1500, n_wrong),
                          pos_sigma_m=np.full(n_wrong, s.reported_sigma_m),
                          alt_sigma_m=np.full(n_wrong, s.reported_alt_sigma_m),
                          t_arrival=t + rng.uniform(*s.delay_s, n_wrong)))
    return DetectionBatch.concat(out)


def truth_points(fleet: Fleet, t0: float, t1: float, interval_s: float) -> list[TruthPoint]:
    """Truth of every flying drone at multiples of ``interval_s`` in [t0, t1), plus each drone's final point."""
    active = _active(fleet, t0, t1)
    if active.size == 0:
        return []
    ticks = np.arange(np.ceil(t0 / interval_s), np.ceil(t1 / interval_s)) * interval_s
    dd, tt = np.meshgrid(active, ticks, indexing="ij")
    dd, tt = dd.ravel(), tt.ravel()
    ok = (tt >= fleet.t_launch[dd]) & (tt <= fleet.t_end[dd])
    dd, tt = dd[ok], tt[ok]
    ends = active[(fleet.t_end[active] >= t0) & (fleet.t_end[active] < t1)]
    dd = np.concatenate([dd, ends])
    tt = np.concatenate([tt, fleet.t_end[ends]])
    order = np.lexsort((dd, tt))
    dd, tt = dd[order], tt[order]
    lat, lon, alt, v = fleet.state_geodetic(dd, tt)
    return [TruthPoint(t=round(float(tt[i]), 4), target=fleet.ids[dd[i]], lat=round(float(lat[i]), 7),
                       lon=round(float(lon[i]), 7), alt_m=round(float(alt[i]), 2), ve=round(float(v[i, 0]), 3),
                       vn=round(float(v[i, 1]), 3), vu=round(float(v[i, 2]), 3), kind=str(fleet.kind[dd[i]]))
            for i in range(dd.size)]


def heartbeats(world: World, t0: float, t1: float) -> list[Heartbeat]:
    """Every acoustic node's "alive" message in [t0, t1), every ``heartbeat_interval_s`` at its own phase, arriving
    after the mean latency (deterministic: no draw from the scenario's random stream)."""
    a = world.scenario.acoustic
    h = a.heartbeat_interval_s
    n = len(world.net.ids)
    if h <= 0 or n == 0:
        return []
    phase = world.node_phase / a.report_interval_s * h
    k = np.arange(int(np.floor((t0 - h) / h)), int(np.ceil(t1 / h)) + 1) * h
    t = (k[:, None] + phase[None, :]).ravel()
    node = np.tile(np.arange(n), k.size)
    keep = (t >= t0) & (t < t1)
    t, node = np.round(t[keep], 3), node[keep]
    order = np.argsort(t, kind="stable")
    ids = world.sensor_ids
    return [Heartbeat(t=float(t[i]), sensor=ids[int(node[i])], t_arrival=round(float(t[i]) + a.latency_s, 3))
            for i in order]


def _records(batch: DetectionBatch, ids: list[str]) -> list[Detection]:
    cols = {
        "bearing_deg": np.round(batch.bearing_deg, 3), "elevation_deg": np.round(batch.elevation_deg, 3),
        "range_m": np.round(batch.range_m, 1), "lat": np.round(batch.lat, 7), "lon": np.round(batch.lon, 7),
        "alt_m": np.round(batch.alt_m, 1), "pos_sigma_m": batch.pos_sigma_m, "alt_sigma_m": batch.alt_sigma_m,
        "snr_db": np.round(batch.snr_db, 1), "t_arrival": np.round(batch.t_arrival, 4),
    }
    # 360.0 after rounding is outside the contract's [0, 360)
    cols["bearing_deg"] = np.where(cols["bearing_deg"] >= 360.0, 0.0, cols["bearing_deg"])
    t = np.round(batch.t, 4)
    names = list(cols)
    mat = np.column_stack([cols[n] for n in names]) if len(batch) else np.zeros((0, len(names)))
    fin = np.isfinite(mat)
    out = []
    for i in range(len(batch)):
        row, f = mat[i], fin[i]
        out.append(Detection(t=float(t[i]), sensor=ids[batch.sensor[i]],
                             **{names[j]: float(row[j]) for j in range(len(names)) if f[j]}))
    return out


def simulate(sc: Scenario, out_dir: str | Path, seed: int = 0, progress: bool = False,
             duration_s: float | None = None) -> SimResult:
    """Run a scenario and write its files into ``out_dir``. ``duration_s`` overrides the scenario's length."""
    from skytrace.sim.bench2d import run_bench2d

    if sc.type == "benchmark2d":
        return run_bench2d(sc, out_dir, seed)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    world = build_world(sc, rng)
    sensors = sensor_records(world.net, world.radars, sc)
    write_sensors(out / "sensors.json", sensors)
    builtin_oblasts().write(out / "zones.geojson")
    t_start = sc.start_t
    t_stop = t_start + (duration_s if duration_s is not None else sc.duration_s)
    res = SimResult(out, len(world.fleet), len(sensors), 0, {"acoustic": 0, "radar": 0, "position": 0},
                    t_start, t_stop)
    n_ac = len(world.net.ids)
    pending: list[DetectionBatch] = []
    labels: list[np.ndarray] = []
    chunks = np.arange(t_start, t_stop, sc.chunk_s)
    prog = None
    if progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        prog = Progress(TextColumn("simulating {task.fields[name]}"), BarColumn(),
                        TextColumn("{task.percentage:>3.0f}%"),
                        TimeRemainingColumn(), transient=True)
        prog.start()
        task = prog.add_task("sim", total=len(chunks), name=sc.name)
    try:
        with JsonlWriter(out / "detections.jsonl") as det_w, JsonlWriter(out / "truth.jsonl") as truth_w, \
                JsonlWriter(out / "heartbeats.jsonl") as hb_w:
            for c0 in chunks:
                c1 = min(c0 + sc.chunk_s, t_stop)
                hb_w.write_many(heartbeats(world, c0, c1))
                truth = truth_points(world.fleet, c0, c1, sc.truth_interval_s)
                truth_w.write_many(truth)
                res.n_truth += len(truth)
                ac_b, _ = acoustic_looks(world, c0, c1, rng)
                new = [ac_b, radar_looks(world, c0, c1, rng), sighting_reports(world, c0, c1, rng)]
                allb = DetectionBatch.concat(pending + new)
                order = np.argsort(allb.t_arrival, kind="stable")
                allb = allb.take(order)
                # every later report has t >= c1 (and arrival >= t): what arrived before c1 is final
                ready = allb.t_arrival < c1 if c1 < t_stop else np.ones(len(allb), dtype=bool)
                done = allb.take(ready)
                pending = [allb.take(~ready)]
                det_w.write_many(_records(done, world.sensor_ids))
                labels.append(done.source.astype(np.int32))
                s = done.sensor
                res.detections_by_kind["acoustic"] += int((s < n_ac).sum())
                res.detections_by_kind["radar"] += int(((s >= n_ac) & (s < n_ac + len(world.radars))).sum())
                res.detections_by_kind["position"] += int((s >= n_ac + len(world.radars)).sum())
                if prog is not None:
                    prog.advance(task)
    finally:
        if prog is not None:
            prog.stop()
    res.wall_s = time.perf_counter() - wall0
    res.cpu_s = time.process_time() - cpu0
    meta = {
        "scenario": sc.name, "source": sc.source, "seed": seed, "t_start": t_start, "t_end": t_stop,
        "ground_alt_m": sc.ground_alt_m,
        "counts": {"drones": res.n_drones, "sensors": res.n_sensors, "truth_points": res.n_truth,
                   "detections": res.detections_by_kind},
        "targets": [
            {"target": world.fleet.ids[i], "kind": str(world.fleet.kind[i]), "t_launch": float(world.fleet.t_launch[i]),
             "t_end": float(world.fleet.t_end[i]), "target_city": world.fleet.target_city[i],
             "impact": bool(world.fleet.impact[i]), "speed_mps": round(float(world.fleet.speed_mps[i]), 2),
             "waypoints_lonlat": np.round(world.fleet.waypoints_lonlat[i], 5).tolist()}
            for i in range(len(world.fleet))],
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    # simulation-only ground truth of the data association: line k of detections.jsonl came from target
    # labels[k] (an index into meta.json's targets), or -1 for clutter, false alarms, outliers, wrong sightings
    np.save(out / "detection_labels.npy", np.concatenate(labels) if labels else np.zeros(0, np.int32))
    return res
