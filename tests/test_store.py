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


def test_track_states_keep_class_identity_and_flag(store):
    """The class of a track (the identity check's annotation) is stored with its state and read back by the
    history query and the spatial query; a snapshot without the annotation stores none."""
    snap = _snapshot(T0, ["T1", "T2", "T3"], [50.40, 50.41, 50.42], [30.50, 30.51, 30.52])
    snap.cls = ["manned", None, "manned"]
    snap.target_id = ["icao:4b1805", None, "icao:508035"]
    snap.identity_flag = [None, None, "position jump"]
    assert store.put_tracks(snap) == 3
    store.put_tracks(_snapshot(T0 + 1, ["T4"], [50.43], [30.53]))  # not annotated
    got = {p.track: (p.cls, p.target_id, p.identity_flag) for p in store.track_states(T0, T0 + 1)}
    assert got == {"T1": ("manned", "icao:4b1805", None), "T2": (None, None, None),
                   "T3": ("manned", "icao:508035", "position jump"), "T4": (None, None, None)}
    near = {p.track: p.cls for p in store.tracks_near(50.40, 30.50, 500.0, T0 - 1, T0 + 1)}
    assert near == {"T1": "manned"}


OLD_SQLITE_TRACKS = """CREATE TABLE tracks (
    id INTEGER PRIMARY KEY, t REAL NOT NULL, track TEXT NOT NULL, status TEXT NOT NULL, lat REAL NOT NULL,
    lon REAL NOT NULL, alt_m REAL NOT NULL, ve REAL, vn REAL, vu REAL, pos_sigma_m REAL);
INSERT INTO tracks (t, track, status, lat, lon, alt_m, ve, vn, vu, pos_sigma_m)
    VALUES (1763850000.0, 'OLD1', 'confirmed', 50.4, 30.5, 300.0, 40.0, 0.0, 0.0, 50.0);
CREATE VIRTUAL TABLE tracks_rtree USING rtree(id, t0, t1, lat0, lat1, lon0, lon1);
INSERT INTO tracks_rtree VALUES (1, 1763850000.0, 1763850000.0, 50.4, 50.4, 30.5, 30.5);
"""


def _old_schema_store(kind: str, tmp_path, request):
    """A database as the previous release wrote it (track states without the identity columns), one old row."""
    if kind == "sqlite":
        import sqlite3

        path = str(tmp_path / "old.db")
        with sqlite3.connect(path) as db:
            db.executescript(OLD_SQLITE_TRACKS)
        return path
    import psycopg

    from skytrace.store.postgis import SCHEMA

    url = request.getfixturevalue("pg_url")
    old = SCHEMA.split("-- databases written before")[0]
    old = old.replace(",\n    cls text, target_id text, identity_flag text);", ");")
    assert "cls text" not in old
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(old)
        db.execute("INSERT INTO tracks (t, track, status, lat, lon, alt_m, ve, vn, vu, pos_sigma_m) VALUES "
                   "(1763850000.0, 'OLD1', 'confirmed', 50.4, 30.5, 300.0, 40.0, 0.0, 0.0, 50.0)")
        cols = {r[0] for r in db.execute("SELECT column_name FROM information_schema.columns "
                                         "WHERE table_name = 'tracks'")}
        assert "cls" not in cols
    return url


@pytest.mark.parametrize("kind", ["sqlite", "postgis"])
def test_an_older_database_is_migrated_to_keep_the_class(kind, tmp_path, request):
    url = _old_schema_store(kind, tmp_path, request)
    for _ in range(2):  # opening twice: the migration is idempotent
        s = open_store(url)
        s.close()
    s = open_store(url)
    try:
        snap = _snapshot(T0 + 5, ["NEW1"], [50.41], [30.51])
        snap.cls, snap.target_id, snap.identity_flag = ["cooperative-uav"], ["rid:UA-1"], [None]
        s.put_tracks(snap)
        got = {p.track: (p.cls, p.target_id) for p in s.track_states(T0 - 1, T0 + 10)}
        assert got == {"OLD1": (None, None), "NEW1": ("cooperative-uav", "rid:UA-1")}  # old rows: not recorded then
        assert {p.track for p in s.tracks_near(50.41, 30.51, 3000.0, T0 - 1, T0 + 10)} == {"OLD1", "NEW1"}
    finally:
        s.close()
