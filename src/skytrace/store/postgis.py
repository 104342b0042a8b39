"""PostgreSQL + PostGIS back-end of the history store (psycopg 3), for production and long histories.

Positions of track states and of position reports are ``geography(Point, 4326)`` columns generated from lat/lon,
with GiST indexes; the spatial history query is ``ST_DWithin`` on geography (ellipsoidal distance). Bulk writes
use ``COPY`` (tens of thousands of rows per second).

References: PostGIS manual, ch. 4 "Geography data type" and ``ST_DWithin``; psycopg 3 docs, "Using COPY".
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence

import msgspec

from skytrace.batch import DetectionBatch, SensorTable, TrackSnapshot
from skytrace.model import Alert, Detection, Sensor, TrackPoint
from skytrace.store.base import (
    DETECTION_COLUMNS,
    MAX_ROWS,
    TRACK_COLUMNS,
    Store,
    StoreError,
    detection_rows,
    row_to_detection,
    row_to_trackpoint,
    track_rows,
)

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE TABLE IF NOT EXISTS sensors (id text PRIMARY KEY, record jsonb NOT NULL);
CREATE TABLE IF NOT EXISTS detections (
    id bigserial PRIMARY KEY, t double precision NOT NULL, sensor text NOT NULL, bearing_deg double precision,
    elevation_deg double precision, range_m double precision, lat double precision, lon double precision,
    alt_m double precision, pos_sigma_m double precision, alt_sigma_m double precision, snr_db double precision,
    t_arrival double precision,
    geog geography(Point, 4326) GENERATED ALWAYS AS (
        CASE WHEN lat IS NULL OR lon IS NULL THEN NULL
        ELSE ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geography END) STORED);
CREATE INDEX IF NOT EXISTS detections_t ON detections (t);
CREATE INDEX IF NOT EXISTS detections_geog ON detections USING gist (geog);
CREATE TABLE IF NOT EXISTS tracks (
    id bigserial PRIMARY KEY, t double precision NOT NULL, track text NOT NULL, status text NOT NULL,
    lat double precision NOT NULL, lon double precision NOT NULL, alt_m double precision NOT NULL,
    ve double precision, vn double precision, vu double precision, pos_sigma_m double precision,
    geog geography(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geography) STORED,
    cls text, target_id text, identity_flag text);
-- databases written before the identity columns existed (their old rows keep NULL: not recorded then)
ALTER TABLE tracks ADD COLUMN IF NOT EXISTS cls text;
ALTER TABLE tracks ADD COLUMN IF NOT EXISTS target_id text;
ALTER TABLE tracks ADD COLUMN IF NOT EXISTS identity_flag text;
CREATE INDEX IF NOT EXISTS tracks_t ON tracks (t);
CREATE INDEX IF NOT EXISTS tracks_geog ON tracks USING gist (geog);
CREATE TABLE IF NOT EXISTS alerts (
    zone text NOT NULL, start double precision NOT NULL, "end" double precision, level text NOT NULL,
    tracks jsonb NOT NULL, PRIMARY KEY (zone, start));
CREATE TABLE IF NOT EXISTS batches (
    sensor text NOT NULL, seq bigint NOT NULL, t_recv double precision NOT NULL, n integer NOT NULL,
    PRIMARY KEY (sensor, seq));
"""


def _num(v: float) -> float:
    """Infinite bounds as the largest finite doubles (SQL comparisons stay simple)."""
    return max(-1e300, min(1e300, v))


class PostgisStore(Store):
    """History in a PostgreSQL database with the PostGIS extension."""

    def __init__(self, url: str):
        try:
            import psycopg
        except ImportError:
            raise StoreError("a postgresql:// store needs psycopg 3: pip install 'skytrace[postgres]'") from None
        self.url = url
        try:
            self._db = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreError(f"cannot connect to PostgreSQL: {first}") from None
        try:
            self._db.execute("SET max_parallel_workers_per_gather = 0")
            with self._db.transaction():
                self._db.execute("SELECT pg_advisory_xact_lock(4242)")  # two services starting at once
                self._db.execute(SCHEMA)
        except psycopg.Error as exc:
            self._db.close()
            raise StoreError(f"cannot set up the PostGIS schema: {str(exc).strip().splitlines()[0]}") from None
        self._lock = threading.Lock()

    def _copy(self, table: str, columns: Sequence[str], rows: list[tuple]) -> int:
        if not rows:
            return 0
        with self._lock, self._db.transaction(), self._db.cursor() as cur, \
                cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
            for r in rows:
                cp.write_row(r)
        return len(rows)

    def _read(self, sql: str, args: Sequence = ()) -> list[tuple]:
        with self._lock, self._db.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()

    # ------------------------------------------------------------------------------------------------- writes
    def put_sensors(self, sensors: Sequence[Sensor]) -> None:
        with self._lock, self._db.transaction(), self._db.cursor() as cur:
            cur.executemany("INSERT INTO sensors (id, record) VALUES (%s, %s) "
                            "ON CONFLICT (id) DO UPDATE SET record = excluded.record",
                            [(s.id, msgspec.json.encode(s).decode()) for s in sensors])

    def put_detections(self, batch: DetectionBatch, table: SensorTable) -> int:
        return self._copy("detections", DETECTION_COLUMNS, detection_rows(batch, table))

    def put_ingest(self, items: Sequence[tuple[str | None, int | None, Sequence[Detection]]], table: SensorTable,
                   t_recv: float) -> list[bool]:
        fresh: list[bool] = []
        with self._lock, self._db.transaction(), self._db.cursor() as cur:  # committed (synchronous_commit) on exit
            new: list[Detection] = []
            for sensor, seq, dets in items:
                ok = True
                if sensor is not None and seq is not None:
                    cur.execute("INSERT INTO batches (sensor, seq, t_recv, n) VALUES (%s, %s, %s, %s) "
                                "ON CONFLICT DO NOTHING", (sensor, seq, t_recv, len(dets)))
                    ok = cur.rowcount == 1
                if ok:
                    new.extend(dets)
                fresh.append(ok)
            if new:
                with cur.copy(f"COPY detections ({', '.join(DETECTION_COLUMNS)}) FROM STDIN") as cp:
                    for r in detection_rows(DetectionBatch.from_records(new, table), table):
                        cp.write_row(r)
        return fresh

    def recent_batch_seqs(self, window: int) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for sensor, seq in self._read("SELECT b.sensor, b.seq FROM batches b JOIN (SELECT sensor, max(seq) AS top "
                                      "FROM batches GROUP BY sensor) m ON m.sensor = b.sensor "
                                      "WHERE b.seq > m.top - %s ORDER BY b.sensor, b.seq", (int(window),)):
            out.setdefault(sensor, []).append(seq)
        return out

    def close_open_alerts(self, t_end: float) -> int:
        with self._lock, self._db.transaction(), self._db.cursor() as cur:
            cur.execute('UPDATE alerts SET "end" = %s WHERE "end" IS NULL', (t_end,))
            return cur.rowcount

    def put_tracks(self, snap: TrackSnapshot) -> int:
        return self._copy("tracks", TRACK_COLUMNS, track_rows(snap))

    def put_alerts(self, alerts: Sequence[Alert]) -> None:
        with self._lock, self._db.transaction(), self._db.cursor() as cur:
            cur.executemany('INSERT INTO alerts (zone, start, "end", level, tracks) VALUES (%s, %s, %s, %s, %s) '
                            'ON CONFLICT (zone, start) DO UPDATE SET "end" = excluded."end", '
                            'level = excluded.level, tracks = excluded.tracks',
                            [(a.zone, a.start, a.end, a.level, json.dumps(a.tracks)) for a in alerts])

    # -------------------------------------------------------------------------------------------------- reads
    def sensors(self) -> list[Sensor]:
        rows = self._read("SELECT record::text FROM sensors ORDER BY id")
        return [msgspec.json.decode(r[0], type=Sensor) for r in rows]

    def count_detections(self, t0: float = -math.inf, t1: float = math.inf) -> int:
        if math.isinf(t0) and math.isinf(t1):
            return self._read("SELECT count(*) FROM detections")[0][0]
        return self._read("SELECT count(*) FROM detections WHERE t >= %s AND t < %s", (_num(t0), _num(t1)))[0][0]

    def detections(self, t0: float, t1: float, limit: int = MAX_ROWS) -> list[Detection]:
        rows = self._read(f"SELECT {', '.join(DETECTION_COLUMNS)} FROM detections WHERE t >= %s AND t < %s "
                          "ORDER BY t LIMIT %s", (_num(t0), _num(t1), min(limit, MAX_ROWS)))
        return [row_to_detection(r) for r in rows]

    def count_tracks(self) -> int:
        return self._read("SELECT count(*) FROM tracks")[0][0]

    def track_states(self, t0: float, t1: float, limit: int = MAX_ROWS) -> list[TrackPoint]:
        rows = self._read(f"SELECT {', '.join(TRACK_COLUMNS)} FROM tracks WHERE t >= %s AND t <= %s "
                          "ORDER BY t, track LIMIT %s", (_num(t0), _num(t1), min(limit, MAX_ROWS)))
        return [row_to_trackpoint(r) for r in rows]

    def _candidates_near(self, lat: float, lon: float, radius_m: float, t0: float, t1: float,
                         limit: int) -> tuple[list[TrackPoint], bool]:
        rows = self._read(
            f"SELECT {', '.join(TRACK_COLUMNS)} FROM tracks "
            "WHERE ST_DWithin(geog, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, %s) "
            "AND t >= %s AND t <= %s ORDER BY t, track LIMIT %s",
            (lon, lat, radius_m, _num(t0), _num(t1), min(limit, MAX_ROWS)))
        return [row_to_trackpoint(r) for r in rows], len(rows) >= min(limit, MAX_ROWS)

    def alerts(self, t0: float = -math.inf, t1: float = math.inf) -> list[Alert]:
        rows = self._read('SELECT zone, start, "end", level, tracks::text FROM alerts WHERE start <= %s '
                          'AND ("end" IS NULL OR "end" >= %s) ORDER BY start, zone', (_num(t1), _num(t0)))
        return [Alert(zone=r[0], start=r[1], end=r[2], level=r[3], tracks=json.loads(r[4])) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
