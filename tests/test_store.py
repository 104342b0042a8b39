"""The history store: both back-ends (SQLite, PostgreSQL + PostGIS on a real server) behind one interface."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyproj import Geod

from skytrace.batch import DetectionBatch, SensorTable, TrackSnapshot
from skytrace.model import Alert, Detection, Sensor
from skytrace.store import StoreError, open_store

GEOD = Geod(ellps="WGS84")
T0 = 1_763_850_000.0
CENTRE = (50.45, 30.52)

SENSORS = [
    Sensor(id="ac-1", kind="acoustic", lat=50.4, lon=30.5, alt_m=150.0, bearing_sigma_deg=3.0),
    Sensor(id="cit", kind="position"),
]


@pytest.fixture(params=["sqlite", "postgis"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = open_store(str(tmp_path / "h.db"))
    else:
        s = open_store(request.getfixturevalue("pg_url"))
    yield s
    s.close()


def _snapshot(t: float, ids: list[str], lat, lon) -> TrackSnapshot:
    n = len(ids)
    z = np.zeros(n)
    return TrackSnapshot(t=t, track=ids, status=["confirmed"] * n, lat=np.asarray(lat, float),
                         lon=np.asarray(lon, float), alt_m=z + 300.0, ve=z + 40.0, vn=z, vu=z, pos_sigma_m=z + 50.0)


def test_detections_round_trip_count_in_equals_count_out(store):
    table = SensorTable.from_sensors(SENSORS)
    store.put_sensors(SENSORS)
    dets = [Detection(t=T0 + i, sensor="ac-1", bearing_deg=float(i % 360), snr_db=12.0) for i in range(500)]
    dets += [Detection(t=T0 + i, sensor="cit", lat=50.0, lon=30.0, pos_sigma_m=300.0) for i in range(7)]
    batch = DetectionBatch.from_records(dets, table)
    assert store.put_detections(batch, table) == 507
    assert store.count_detections() == 507
    assert store.count_detections(T0, T0 + 10) == 10 + 7
    got = store.detections(T0 + 5, T0 + 6)
    assert sorted(d.sensor for d in got) == ["ac-1", "cit"]
    ac = next(d for d in got if d.sensor == "ac-1")
    assert ac.bearing_deg == 5.0 and ac.range_m is None and ac.snr_db == 12.0
    assert [s.id for s in store.sensors()] == ["ac-1", "cit"]
    assert store.sensors()[0].bearing_sigma_deg == 3.0


def test_alert_period_is_updated_when_it_ends(store):
    store.put_alerts([Alert(zone="UA-30", start=T0, end=None, level="warning", tracks=["t1"])])
    assert store.alerts()[0].end is None
    store.put_alerts([Alert(zone="UA-30", start=T0, end=T0 + 600, level="warning", tracks=["t1", "t2"])])
    (a,) = store.alerts()
    assert a.end == T0 + 600 and a.tracks == ["t1", "t2"]
    assert store.alerts(T0 + 700, T0 + 800) == []
    assert len(store.alerts(T0 + 500, T0 + 800)) == 1


def test_spatial_history_query_keeps_exactly_what_came_within_radius(store):
    # Points at known geodesic distances from the centre, in every direction.
    dist_m = np.array([100.0, 1000.0, 1990.0, 2010.0, 3000.0, 20_000.0] * 4)
    az = np.repeat([0.0, 90.0, 200.0, 315.0], 6)
    lon, lat, _ = GEOD.fwd(np.full(24, CENTRE[1]), np.full(24, CENTRE[0]), az, dist_m)
    ids = [f"trk-{i}" for i in range(24)]
    store.put_tracks(_snapshot(T0, ids, lat, lon))
    store.put_tracks(_snapshot(T0 + 3600, ids, lat, lon))  # the same places an hour later
    got = store.tracks_near(CENTRE[0], CENTRE[1], 2000.0, T0 - 1, T0 + 1)
    expected = {ids[i] for i in np.flatnonzero(dist_m <= 2000)}
    assert {p.track for p in got} == expected
    assert all(p.t == T0 for p in got)
    assert len(store.tracks_near(CENTRE[0], CENTRE[1], 2000.0, T0 - 1, T0 + 3601)) == 2 * len(expected)
    summary = store.track_ids_near(CENTRE[0], CENTRE[1], 2000.0, T0, T0 + 3600)
    assert summary["trk-0"]["closest_m"] == pytest.approx(100.0, abs=0.01)
    assert summary["trk-0"]["first_t"] == T0 and summary["trk-0"]["last_t"] == T0 + 3600
    assert store.count_tracks() == 48
    assert len(store.track_states(T0, T0)) == 24


@pytest.mark.parametrize("args", [(91.0, 30.0, 10.0, 0.0, 1.0), (50.0, 30.0, -1.0, 0.0, 1.0),
                                  (50.0, 30.0, 10.0, 2.0, 1.0), (50.0, math.nan, 10.0, 0.0, 1.0),
                                  (50.0, 30.0, 1e9, 0.0, 1.0)])
def test_bad_history_queries_are_user_errors(store, args):
    with pytest.raises(StoreError):
        store.tracks_near(*args)


def test_sqlite_and_postgis_agree_on_random_history(tmp_path, pg_url):
    """Two independent implementations of the spatial query (R*Tree + Karney, PostGIS geography) must agree."""
    rng = np.random.default_rng(7)
    n = 1500
    lat = CENTRE[0] + rng.uniform(-0.1, 0.1, n)
    lon = CENTRE[1] + rng.uniform(-0.15, 0.15, n)
    t = T0 + rng.uniform(0, 7200, n)
    stores = [open_store(str(tmp_path / "a.db")), open_store(pg_url)]
    try:
        for s in stores:
            for k in range(0, n, 500):
                snap = _snapshot(0.0, [f"trk-{i}" for i in range(k, k + 500)], lat[k:k + 500], lon[k:k + 500])
                for i in range(500):  # one state per row, each at its own time
                    one = _snapshot(float(t[k + i]), [snap.track[i]], [snap.lat[i]], [snap.lon[i]])
                    s.put_tracks(one)
        for radius in (500.0, 2000.0, 5000.0):
            a, b = (s.tracks_near(CENTRE[0], CENTRE[1], radius, T0 + 1000, T0 + 5000) for s in stores)
            assert {(p.track, p.t) for p in a} == {(p.track, p.t) for p in b}
            assert len(a) > 0
    finally:
        for s in stores:
            s.close()


def test_open_store_rejects_bad_urls(tmp_path):
    with pytest.raises(StoreError, match="scheme"):
        open_store("mysql://x")
    with pytest.raises(StoreError, match="does not exist"):
        open_store(str(tmp_path / "no" / "such" / "dir.db"))
    with pytest.raises(StoreError, match="cannot connect"):
        open_store("postgresql://nobody@127.0.0.1:1/none")
