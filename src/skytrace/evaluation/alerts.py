"""Alert quality from truth: lead time per zone entry, missed entries, false-alert zone-minutes, and a baseline.

Definitions (per zone z, per drone d that enters z; the first instant d is inside z is its *entry*):

- lead time: entry time minus the start of the alert period of z in force at the entry. An entry with no alert
  in force is *missed* (no lead time). Reported: median and 10th percentile over entries, count missed.
- false-alert zone-minutes: minutes during which z is under alert although no drone enters z within the
  ``horizon_s`` that follows; area-weighted (km^2 x min) too, since a small zone wrongly alerted costs fewer
  people than an oblast; and people-minutes when zones carry ``population``.
- the oblast baseline (today's practice): a whole oblast is under alert while any tracked drone is within
  ``radius_km`` of it, cleared ``clear_after_s`` later.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import shapely
from pyproj import Geod

from skytrace.assess.raster import ZoneRaster
from skytrace.model import Alert, TrackPoint, TruthPoint
from skytrace.zones import ZoneSet

_GEOD = Geod(ellps="WGS84")


def zone_areas_km2(zones: ZoneSet) -> np.ndarray:
    return np.array([abs(_GEOD.geometry_area_perimeter(z.geometry)[0]) / 1e6 for z in zones])


def zone_entries(truth: list[TruthPoint], zones: ZoneSet, raster: ZoneRaster | None = None) -> dict:
    """(target, zone id) -> first time the target is inside the zone."""
    raster = raster or ZoneRaster.build(zones)
    lat = np.array([p.lat for p in truth])
    lon = np.array([p.lon for p in truth])
    t = np.array([p.t for p in truth])
    tgt = np.array([p.target for p in truth])
    pi, zi = raster.lookup(lat, lon)
    out: dict[tuple[str, str], float] = {}
    order = np.argsort(t[pi], kind="stable")
    for p, z in zip(pi[order], zi[order], strict=True):
        key = (str(tgt[p]), zones.zones[int(z)].id)
        if key not in out:
            out[key] = float(t[p])
    return out


@dataclass
class AlertScore:
    entries: int
    missed: int
    lead_times_s: np.ndarray
    false_zone_min: float
    false_km2_min: float
    alert_zone_min: float
    alert_km2_min: float
    false_people_min: float | None
    missed_keys: list[tuple[str, str, float]] = field(default_factory=list)  # (target, zone, entry time)
    alert_people_min: float | None = None
    alerts_per_zone: dict[str, int] = field(default_factory=dict)  # alert periods per zone (alert fatigue)

    def summary(self) -> dict:
        lt = self.lead_times_s
        counts = np.array(list(self.alerts_per_zone.values()) or [0])
        return {"entries": self.entries, "missed": self.missed,
                "median_lead_s": round(float(np.median(lt)), 1) if lt.size else None,
                "p10_lead_s": round(float(np.percentile(lt, 10)), 1) if lt.size else None,
                "false_alert_zone_min": round(self.false_zone_min, 1),
                "false_alert_km2_min": round(self.false_km2_min),
                "alert_zone_min": round(self.alert_zone_min, 1), "alert_km2_min": round(self.alert_km2_min),
                "false_alert_people_min": None if self.false_people_min is None else round(self.false_people_min),
                "alert_people_min": None if self.alert_people_min is None else round(self.alert_people_min),
                "zones_alerted": len(self.alerts_per_zone),
                "alerts_per_alerted_zone_mean": round(float(counts.mean()), 2),
                "alerts_per_zone_max": int(counts.max())}


def score_alerts(periods: list[Alert], entries: dict, zones: ZoneSet, horizon_s: float = 1200.0,
                 zone_ids: set[str] | None = None, step_s: float = 10.0,
                 entry_filter: set[tuple[str, str]] | None = None) -> AlertScore:
    """Score alert periods against truth entries, on the zones ``zone_ids`` (default: all)."""
    zone_ids = zone_ids if zone_ids is not None else set(zones.ids)
    areas = dict(zip(zones.ids, zone_areas_km2(zones), strict=True))
    pops = {z.id: z.population for z in zones}
    by_zone: dict[str, list[Alert]] = defaultdict(list)
    for a in periods:
        if a.zone in zone_ids:
            by_zone[a.zone].append(a)
    entry_times: dict[str, list[float]] = defaultdict(list)
    leads, missed, n = [], 0, 0
    missed_keys: list[tuple[str, str, float]] = []
    for (tgt, zid), te in entries.items():
        if zid not in zone_ids:
            continue
        entry_times[zid].append(te)
        if entry_filter is not None and (tgt, zid) not in entry_filter:
            continue
        n += 1
        cover = [a for a in by_zone.get(zid, []) if a.start <= te and (a.end is None or te <= a.end)]
        if cover:
            leads.append(te - min(a.start for a in cover))
        else:
            missed += 1
            missed_keys.append((tgt, zid, te))
    fz = fa = az = aa = 0.0
    fp = ap = 0.0
    any_pop = any(p is not None for p in pops.values())
    for zid, alist in by_zone.items():
        et = np.sort(np.array(entry_times.get(zid, [])))
        for a in alist:
            end = a.end if a.end is not None else a.start
            grid = np.arange(a.start, end, step_s)
            if grid.size == 0:
                continue
            k = np.searchsorted(et, grid, side="left")
            nxt = np.full(grid.size, np.inf)
            has = k < et.size
            nxt[has] = et[k[has]]
            false = (nxt - grid) > horizon_s
            mins = step_s / 60.0
            fz += false.sum() * mins
            fa += false.sum() * mins * areas[zid]
            az += grid.size * mins
            aa += grid.size * mins * areas[zid]
            if pops.get(zid):
                fp += false.sum() * mins * pops[zid]
                ap += grid.size * mins * pops[zid]
    return AlertScore(n, missed, np.array(leads), fz, fa, az, aa, fp if any_pop else None, missed_keys,
                      ap if any_pop else None, {z: len(v) for z, v in by_zone.items()})


def oblast_baseline(tracks: list[TrackPoint], oblasts: ZoneSet, radius_km: float = 30.0, step_s: float = 10.0,
                    clear_after_s: float = 600.0) -> list[Alert]:
    """Today's practice: an oblast is under alert while any tracked drone is within ``radius_km`` of it."""
    by_t: dict[float, list[TrackPoint]] = defaultdict(list)
    for p in tracks:
        by_t[p.t].append(p)
    times = sorted(by_t)
    deg = radius_km / 111.32
    buffered = [z.geometry.buffer(deg) for z in oblasts]  # ~radius in degrees; latitude scaling is second order
    for g in buffered:
        shapely.prepare(g)
    last_hit = {}
    start = {}
    out: list[Alert] = []
    t_next = times[0] if times else 0.0
    for t in times:
        if t + 1e-9 < t_next:
            continue
        t_next = t + step_s
        pts = by_t[t]
        lon = np.array([p.lon for p in pts])
        lat = np.array([p.lat for p in pts])
        for k, g in enumerate(buffered):
            hit = bool(shapely.contains_xy(g, lon, lat).any()) if pts else False
            zid = oblasts.zones[k].id
            if hit:
                last_hit[zid] = t
                start.setdefault(zid, t)
            elif zid in start and t - last_hit[zid] >= clear_after_s:
                out.append(Alert(zone=zid, start=start.pop(zid), end=t, level="warning", tracks=[]))
    t_end = times[-1] if times else 0.0
    for zid, s in start.items():
        out.append(Alert(zone=zid, start=s, end=t_end, level="warning", tracks=[]))
    return out


def truth_as_tracks(truth: list[TruthPoint], every_s: float = 1.0) -> list[TrackPoint]:
    """Perfect tracks: every target as a confirmed track (the 'truth tracks' input of the warning tests)."""
    return [TrackPoint(t=p.t, track=p.target, status="confirmed", lat=p.lat, lon=p.lon, alt_m=p.alt_m, ve=p.ve,
                       vn=p.vn, vu=p.vu, pos_sigma_m=0.0)
            for p in truth if abs(p.t / every_s - round(p.t / every_s)) < 1e-6]


def expand_to_children(periods: list[Alert], zones: ZoneSet) -> list[Alert]:
    """Alert periods of parent zones copied to each child zone (an oblast alert covers all its cells)."""
    children: dict[str, list[str]] = defaultdict(list)
    for z in zones:
        if z.parent:
            children[z.parent].append(z.id)
    out = []
    for a in periods:
        for c in children.get(a.zone, []):
            out.append(Alert(zone=c, start=a.start, end=a.end, level=a.level, tracks=a.tracks))
    return out


def leaf_ids(zones: ZoneSet) -> set[str]:
    """Zones that are nobody's parent (the grid cells of the default zones)."""
    parents = {z.parent for z in zones if z.parent}
    return {z.id for z in zones if z.id not in parents}


def leaf_periods(periods: list[Alert], zones: ZoneSet) -> list[Alert]:
    """Alert periods on leaf zones: their own, plus every parent's period copied to its children."""
    leaves = leaf_ids(zones)
    return [a for a in periods if a.zone in leaves] + expand_to_children(
        [a for a in periods if a.zone not in leaves], zones)


def expand_periods(periods: list[Alert], members: dict[str, list[str]]) -> list[Alert]:
    """Alert periods of grouping zones (e.g. raions) copied to each member zone."""
    return [Alert(zone=c, start=a.start, end=a.end, level=a.level, tracks=a.tracks)
            for a in periods for c in members.get(a.zone, [])]


def rollup_periods(periods: list[Alert], zones: ZoneSet) -> list[Alert]:
    """Periods during which each parent zone is itself alerted or any of its children is (the union)."""
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for a in periods:
        end = a.end if a.end is not None else a.start
        parent = zones[a.zone].parent if a.zone in zones.index else None
        spans[parent or a.zone].append((a.start, end))
    out = []
    for zid, sp in spans.items():
        sp.sort()
        s0, e0 = sp[0]
        for s1, e1 in sp[1:]:
            if s1 <= e0:
                e0 = max(e0, e1)
            else:
                out.append(Alert(zone=zid, start=s0, end=e0, level="warning", tracks=[]))
                s0, e0 = s1, e1
        out.append(Alert(zone=zid, start=s0, end=e0, level="warning", tracks=[]))
    return out


MISS_CAUSES = ("never reported by any sensor", "reported but not localised", "localised too late",
               "localised in time")


def miss_causes(missed: list[tuple[str, str, float]], report_times: dict[str, np.ndarray],
                tracked_times: dict[str, np.ndarray], window_s: float = 960.0, lead_needed_s: float = 60.0
                ) -> dict[str, int]:
    """Misses by cause, from the sorted times at which each drone was reported and on a confirmed track.

    - never reported by any sensor: no report of the drone before its entry;
    - reported but not localised: reported, but on no confirmed track in the ``window_s`` before the entry;
    - localised too late: its first confirmed track in that window came less than ``lead_needed_s`` before entry;
    - localised in time: tracked in time, and still missed (the policy's own miss).
    """
    out = dict.fromkeys(MISS_CAUSES, 0)
    empty = np.zeros(0)
    for tgt, _, te in missed:
        rep = report_times.get(tgt, empty)
        trk = tracked_times.get(tgt, empty)
        trk = trk[(trk >= te - window_s) & (trk <= te)]
        if not (rep <= te).any():
            out[MISS_CAUSES[0]] += 1
        elif trk.size == 0:
            out[MISS_CAUSES[1]] += 1
        elif trk[0] > te - lead_needed_s:
            out[MISS_CAUSES[2]] += 1
        else:
            out[MISS_CAUSES[3]] += 1
    return out
