"""GeoJSON (RFC 7946) and KML 2.2 (OGC 07-147r2) of tracks, zones and alerts, for GIS tools and Google Earth.

Tracks: one LineString per track (lon, lat, height above the ellipsoid), with its id, class, cooperative identity,
first/last time and last status. Zones: their polygons; with alerts, only the alerted zones, each carrying its alert
periods (GeoJSON: an ``alerts`` property; KML: one placemark per alert period with a TimeSpan, so that Google
Earth's time slider replays the night). KML heights are ``absolute`` (KML's reference is mean sea level: the
ellipsoid height is written as is, off by the geoid undulation, ~25-30 m over Ukraine).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from lxml import etree
from shapely.geometry import mapping

from skytrace.model import Alert, TrackPoint
from skytrace.zones import ZoneSet

KML_NS = "http://www.opengis.net/kml/2.2"
STYLE_BY_CLASS = {"manned": "manned", "cooperative-uav": "cooperative"}


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def tracks_by_id(points: list[TrackPoint]) -> dict[str, list[TrackPoint]]:
    by: dict[str, list[TrackPoint]] = defaultdict(list)
    for p in points:
        by[p.track].append(p)
    for v in by.values():
        v.sort(key=lambda p: p.t)
    return dict(by)


def _track_props(tid: str, pts: list[TrackPoint]) -> dict:
    cls = next((p.cls for p in reversed(pts) if p.cls), None)
    target = next((p.target_id for p in reversed(pts) if p.target_id), None)
    flag = next((p.identity_flag for p in pts if p.identity_flag), None)  # once flagged, the claim is not believed
    return {"kind": "track", "track": tid, "class": cls, "target_id": target, "identity_flag": flag,
            "start": pts[0].t, "end": pts[-1].t,
            "start_iso": iso(pts[0].t), "end_iso": iso(pts[-1].t), "points": len(pts), "status": pts[-1].status,
            "max_pos_sigma_m": max(p.pos_sigma_m for p in pts)}


def _alerts_by_zone(alerts: list[Alert] | None) -> dict[str, list[Alert]]:
    by: dict[str, list[Alert]] = defaultdict(list)
    for a in alerts or []:
        by[a.zone].append(a)
    return by


def export_zones(zones: ZoneSet | None, alerts: list[Alert] | None) -> list:
    """[(zone, its alert periods)]: all zones without alerts, only the alerted ones with alerts."""
    if zones is None:
        return []
    by = _alerts_by_zone(alerts)
    if alerts is not None:
        missing = sorted(set(by) - set(zones.ids))
        if missing:
            from skytrace.errors import SkytraceError

            raise SkytraceError(f"alerts name zones that are not in the zone set: {', '.join(missing[:5])}")
        return [(zones[zid], by[zid]) for zid in sorted(by)]
    return [(z, []) for z in zones]


def to_geojson(points: list[TrackPoint], zones: ZoneSet | None = None, alerts: list[Alert] | None = None) -> dict:
    feats = []
    for tid, pts in tracks_by_id(points).items():
        coords = [[round(p.lon, 7), round(p.lat, 7), round(p.alt_m, 1)] for p in pts]
        geom = {"type": "LineString", "coordinates": coords} if len(coords) > 1 else \
            {"type": "Point", "coordinates": coords[0]}
        feats.append({"type": "Feature", "geometry": geom, "properties": _track_props(tid, pts)})
    for z, periods in export_zones(zones, alerts):
        props = {"kind": "zone", "id": z.id, "name": z.name, "alerted": bool(periods),
                 "alerts": [{"start": a.start, "end": a.end, "level": a.level, "tracks": a.tracks} for a in periods]}
        feats.append({"type": "Feature", "geometry": mapping(z.geometry), "properties": props})
    return {"type": "FeatureCollection", "features": feats}


def _k(parent, tag: str, text: str | None = None, **attrib):
    e = etree.SubElement(parent, f"{{{KML_NS}}}{tag}", **attrib)
    if text is not None:
        e.text = text
    return e


def _style(doc, sid: str, line_abgr: str, poly_abgr: str | None = None) -> None:
    st = _k(doc, "Style", id=sid)
    ls = _k(st, "LineStyle")
    _k(ls, "color", line_abgr)
    _k(ls, "width", "2")
    if poly_abgr is not None:
        ps = _k(st, "PolyStyle")
        _k(ps, "color", poly_abgr)


def _ring(parent, tag: str, coords) -> None:
    b = _k(parent, tag)
    lr = _k(b, "LinearRing")
    _k(lr, "coordinates", " ".join(f"{x:.6f},{y:.6f}" for x, y, *_ in coords))


def _polygon(parent, geom) -> None:
    polys = getattr(geom, "geoms", [geom])
    target = _k(parent, "MultiGeometry") if len(polys) > 1 else parent
    for poly in polys:
        pg = _k(target, "Polygon")
        _ring(pg, "outerBoundaryIs", poly.exterior.coords)
        for hole in poly.interiors:
            _ring(pg, "innerBoundaryIs", hole.coords)


def to_kml(points: list[TrackPoint], zones: ZoneSet | None = None, alerts: list[Alert] | None = None) -> bytes:
    root = etree.Element(f"{{{KML_NS}}}kml", nsmap={None: KML_NS})
    doc = _k(root, "Document")
    _k(doc, "name", "skytrace")
    _style(doc, "unknown", "ff0000ff")  # aabbggrr: red
    _style(doc, "manned", "ffff0000")  # blue
    _style(doc, "cooperative", "ff00ffff")  # yellow
    _style(doc, "zone", "ffff0000", "20ff0000")
    _style(doc, "alert", "ff0000ff", "600000ff")
    folder = _k(doc, "Folder")
    _k(folder, "name", "Tracks")
    for tid, pts in tracks_by_id(points).items():
        props = _track_props(tid, pts)
        pm = _k(folder, "Placemark")
        _k(pm, "name", tid)
        desc = f"{props['status']}, {props['start_iso']} - {props['end_iso']}"
        if props["class"]:
            desc += f", class {props['class']}"
        if props["target_id"]:
            desc += f", {props['target_id']}"
        _k(pm, "description", desc)
        ts = _k(pm, "TimeSpan")
        _k(ts, "begin", props["start_iso"])
        _k(ts, "end", props["end_iso"])
        _k(pm, "styleUrl", "#" + STYLE_BY_CLASS.get(props["class"] or "", "unknown"))
        ed = _k(pm, "ExtendedData")
        for key in ("track", "class", "target_id", "points"):
            if props[key] is not None:
                d = _k(ed, "Data", name=key)
                _k(d, "value", str(props[key]))
        coords = " ".join(f"{p.lon:.7f},{p.lat:.7f},{p.alt_m:.1f}" for p in pts)
        if len(pts) > 1:
            g = _k(pm, "LineString")
            _k(g, "altitudeMode", "absolute")
            _k(g, "coordinates", coords)
        else:
            g = _k(pm, "Point")
            _k(g, "altitudeMode", "absolute")
            _k(g, "coordinates", coords)
    zs = export_zones(zones, alerts)
    if zs:
        zf = _k(doc, "Folder")
        _k(zf, "name", "Alerts" if alerts is not None else "Zones")
        for z, periods in zs:
            for a in periods or [None]:
                pm = _k(zf, "Placemark")
                _k(pm, "name", z.name)
                if a is not None:
                    _k(pm, "description", f"drone alert {iso(a.start)} - {iso(a.end) if a.end else 'active'}; "
                                          f"tracks {' '.join(a.tracks)}")
                    ts = _k(pm, "TimeSpan")
                    _k(ts, "begin", iso(a.start))
                    if a.end is not None:
                        _k(ts, "end", iso(a.end))
                _k(pm, "styleUrl", "#alert" if a is not None else "#zone")
                _polygon(pm, z.geometry)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
