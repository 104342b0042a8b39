"""Sensor network placement: acoustic nodes, radars and the citizen-sightings channel.

Acoustic nodes are placed the way a real network grows: dense rings around the cities that are attacked
(``city_fraction``), lines along the approach corridors from the launch areas (``corridor_fraction``, clipped to
Ukrainian territory), and a sparse background across the region (the rest). Each node gets a background noise
level (urban within ``urban_radius_km`` of a city, rural elsewhere), a mast height, optionally elevation
capability, and the nominal detection range that follows from the acoustic model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import Transformer

from skytrace.model import Sensor
from skytrace.sensors import acoustic as acoustic_model
from skytrace.zones import ZoneSet

SIGHTINGS_ID = "sightings"


@dataclass
class AcousticNetwork:
    """Acoustic nodes as columns (simulator side: includes the hidden truths a real network doesn't report)."""

    ids: list[str]
    lat: np.ndarray
    lon: np.ndarray
    alt_m: np.ndarray
    x: np.ndarray  # projected metres (scenario projection)
    y: np.ndarray
    noise_db: np.ndarray
    has_elevation: np.ndarray
    nominal_sigma_deg: np.ndarray
    max_range_m: np.ndarray
    confuser_bearing_deg: np.ndarray  # NaN where the node has no persistent confuser


def _in_region(lon: np.ndarray, lat: np.ndarray, region: shapely.Geometry) -> np.ndarray:
    return shapely.contains_xy(region, lon, lat)


def _sample_region(rng, n: int, region: shapely.Geometry) -> tuple[np.ndarray, np.ndarray]:
    minx, miny, maxx, maxy = region.bounds
    lons, lats = [], []
    got = 0
    while got < n:
        m = max(4 * (n - got), 64)
        lo = rng.uniform(minx, maxx, m)
        la = rng.uniform(miny, maxy, m)
        ok = _in_region(lo, la, region)
        lons.append(lo[ok])
        lats.append(la[ok])
        got += int(ok.sum())
    return np.concatenate(lons)[:n], np.concatenate(lats)[:n]


def place_acoustic(scenario, places: dict, region: shapely.Geometry, country: shapely.Geometry,
                   rng: np.random.Generator, fwd: Transformer, inv: Transformer) -> AcousticNetwork:
    a = scenario.acoustic
    cities = {p["id"]: p for p in places["cities"]}
    launch = {p["id"]: p for p in places["launch_areas"]}
    n_city = int(round(a.count * a.city_fraction))
    n_corr = int(round(a.count * a.corridor_fraction))
    n_bg = a.count - n_city - n_corr
    weights = dict(a.city_weights)
    if not weights:
        for w in scenario.wave:
            for c in w.targets:
                weights[c] = weights.get(c, 0.0) + w.count / len(w.targets)
    xs, ys = [], []
    if n_city and weights:
        names = sorted(weights)
        p = np.array([weights[c] for c in names], dtype=float)
        p /= p.sum()
        pick = rng.choice(len(names), size=n_city, p=p)
        cxy = np.array([fwd.transform(cities[names[i]]["lon"], cities[names[i]]["lat"]) for i in range(len(names))])
        got_x, got_y = [], []
        need = n_city
        while need > 0:
            pick = rng.choice(len(names), size=need, p=p)
            r = a.city_sigma_km * 1000 * np.sqrt(rng.uniform(size=need)) * 1.5
            th = rng.uniform(0, 2 * np.pi, need)
            x = cxy[pick, 0] + r * np.cos(th)
            y = cxy[pick, 1] + r * np.sin(th)
            lo, la = inv.transform(x, y)
            ok = _in_region(lo, la, country)
            got_x.append(x[ok])
            got_y.append(y[ok])
            need -= int(ok.sum())
        xs.append(np.concatenate(got_x))
        ys.append(np.concatenate(got_y))
    if n_corr and scenario.wave:
        segs = []
        for w in scenario.wave:
            for c in w.targets:
                s = np.array(fwd.transform(launch[w.launch_area]["lon"], launch[w.launch_area]["lat"]))
                e = np.array(fwd.transform(cities[c]["lon"], cities[c]["lat"]))
                segs.append((s, e, w.count / len(w.targets)))
        p = np.array([sg[2] for sg in segs], dtype=float)
        p /= p.sum()
        got_x, got_y = [], []
        need = n_corr
        while need > 0:
            m = 3 * need + 16
            k = rng.choice(len(segs), size=m, p=p)
            f = rng.uniform(0, 1, m)
            s = np.array([segs[i][0] for i in k])
            e = np.array([segs[i][1] for i in k])
            d = e - s
            nrm = np.column_stack([-d[:, 1], d[:, 0]]) / np.maximum(np.linalg.norm(d, axis=1), 1)[:, None]
            pos = s + f[:, None] * d + nrm * rng.normal(0, a.corridor_sigma_km * 1000, m)[:, None]
            lo, la = inv.transform(pos[:, 0], pos[:, 1])
            ok = _in_region(lo, la, country)
            got_x.append(pos[ok, 0][:need])
            got_y.append(pos[ok, 1][:need])
            need -= min(int(ok.sum()), need)
        xs.append(np.concatenate(got_x))
        ys.append(np.concatenate(got_y))
    if n_bg > 0:
        lo, la = _sample_region(rng, n_bg, region)
        x, y = fwd.transform(lo, la)
        xs.append(np.asarray(x))
        ys.append(np.asarray(y))
    x = np.concatenate(xs) if xs else np.zeros(0)
    y = np.concatenate(ys) if ys else np.zeros(0)
    lon, lat = inv.transform(x, y)
    lon, lat = np.asarray(lon), np.asarray(lat)
    n = x.size
    cxy_all = np.array([fwd.transform(c["lon"], c["lat"]) for c in places["cities"]])
    d_city = np.min(np.hypot(x[:, None] - cxy_all[None, :, 0], y[:, None] - cxy_all[None, :, 1]), axis=1) if n else x
    urban = d_city < a.urban_radius_km * 1000
    noise = np.where(urban, a.noise_urban_db, a.noise_rural_db) + rng.normal(0, a.noise_spread_db, n)
    has_el = rng.uniform(size=n) < a.elevation_fraction
    sigma = np.full(n, a.bearing_sigma_deg)
    max_r = acoustic_model.nominal_range_m(noise)
    conf = np.where(rng.uniform(size=n) < a.confuser_fraction, rng.uniform(0, 360, n), np.nan)
    alt = scenario.ground_alt_m + a.mast_m + rng.uniform(-1, 1, n)
    ids = [f"ac-{i:05d}" for i in range(n)]
    return AcousticNetwork(ids, lat, lon, alt, x, y, noise, has_el, sigma, max_r, conf)


def auto_radars(scenario, places: dict, rng: np.random.Generator) -> list:
    """Place ``radar_auto.count`` radars near the most targeted cities (offset so they aren't on the target)."""
    from skytrace.sim.scenario import Radar

    ra = scenario.radar_auto
    if ra.count <= 0:
        return []
    weights: dict[str, float] = {}
    for w in scenario.wave:
        for c in w.targets:
            weights[c] = weights.get(c, 0.0) + w.count / len(w.targets)
    order = sorted(weights, key=lambda c: -weights[c]) or [c["id"] for c in places["cities"]]
    cities = {p["id"]: p for p in places["cities"]}
    out = []
    for i in range(ra.count):
        c = cities[order[i % len(order)]]
        ang = rng.uniform(0, 2 * np.pi)
        d = ra.offset_km * 1000 * rng.uniform(0.5, 1.0)
        lat = c["lat"] + d * np.cos(ang) / 111_320
        lon = c["lon"] + d * np.sin(ang) / (111_320 * np.cos(np.radians(c["lat"])))
        out.append(Radar(id=f"radar-{i + 1:02d}", lat=float(lat), lon=float(lon), mast_m=ra.mast_m,
                         max_range_m=ra.max_range_m))
    return out


def sensor_records(net: AcousticNetwork, radars: list, scenario) -> list[Sensor]:
    """The sensors.json a real deployment would publish (no hidden simulator truths)."""
    out = [
        Sensor(id=net.ids[i], kind="acoustic", lat=round(float(net.lat[i]), 7), lon=round(float(net.lon[i]), 7),
               alt_m=round(float(net.alt_m[i]), 2), bearing_sigma_deg=float(net.nominal_sigma_deg[i]),
               elevation_sigma_deg=(acoustic_model.ELEVATION_FACTOR * float(net.nominal_sigma_deg[i])
                                    if net.has_elevation[i] else None),
               max_range_m=round(float(net.max_range_m[i]), 1), sound_speed_mps=343.0)
        for i in range(len(net.ids))
    ]
    for r in radars:
        out.append(Sensor(id=r.id, kind="radar", lat=r.lat, lon=r.lon, alt_m=scenario.ground_alt_m + r.mast_m,
                          bearing_sigma_deg=r.bearing_sigma_deg, elevation_sigma_deg=r.elevation_sigma_deg,
                          range_sigma_m=r.range_sigma_m, max_range_m=r.max_range_m))
    if scenario.sightings.enabled:
        out.append(Sensor(id=SIGHTINGS_ID, kind="position"))
    return out


def region_geometry(zones: ZoneSet, region: list[str]) -> shapely.Geometry:
    if region == ["all"] or not region:
        return shapely.union_all([z.geometry for z in zones])
    return shapely.union_all([zones[r].geometry for r in region])
