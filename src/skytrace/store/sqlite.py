"""SQLite back-end of the history store (default: embedded, zero set-up).

Track states carry a 3-D R*Tree index (time, lat, lon) so that the spatial history query reads only the
candidate rows; the R*Tree stores 32-bit bounds rounded outwards, so it is a superset and the exact time and
geodesic filters run on the real rows afterwards. WAL journal so that readers (the REST API) do not block the
writer (the live pipeline).
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from skytrace.batch import DetectionBatch, SensorTable, TrackSnapshot
from skytrace.model import Alert, Detection, Sensor, TrackPoint
from skytrace.store.base import (
    DETECTION_COLUMNS,
    IDENTITY_COLUMNS,
    MAX_ROWS,
    TRACK_COLUMNS,
    Store,
    StoreError,
    bbox_deg,
    detection_rows,
    geodesic_m,
    row_to_detection,
    row_to_trackpoint,
    track_rows,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS sensors (id TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS detections (
    id INTEGER PRIMARY KEY, t REAL NOT NULL, sensor TEXT NOT NULL, bearing_deg REAL, elevation_deg REAL,
    range_m REAL, lat REAL, lon REAL, alt_m REAL, pos_sigma_m REAL, alt_sigma_m REAL, snr_db REAL, t_arrival REAL);
CREATE INDEX IF NOT EXISTS detections_t ON detections (t);
CREATE TABLE IF NOT EXISTS tracks (
    id INTEGER PRIMARY KEY, t REAL NOT NULL, track TEXT NOT NULL, status TEXT NOT NULL, lat REAL NOT NULL,
    lon REAL NOT NULL, alt_m REAL NOT NULL, ve REAL, vn REAL, vu REAL, pos_sigma_m REAL, cls TEXT, target_id TEXT,
    identity_flag TEXT);
CREATE INDEX IF NOT EXISTS tracks_t ON tracks (t);
CREATE VIRTUAL TABLE IF NOT EXISTS tracks_rtree USING rtree(id, t0, t1, lat0, lat1, lon0, lon1);
CREATE TABLE IF NOT EXISTS alerts (
    zone TEXT NOT NULL, start REAL NOT NULL, "end" REAL, level TEXT NOT NULL, tracks TEXT NOT NULL,
    PRIMARY KEY (zone, start));
CREATE TABLE IF NOT EXISTS batches (
    sensor TEXT NOT NULL, seq INTEGER NOT NULL, t_recv REAL NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (sensor, seq)) WITHOUT ROWID;
"""


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a database written by an older skytrace up to SCHEMA: the track states' identity columns (class,
    target id, identity flag; NULL for the rows stored before, which did not keep them)."""
    have = {r[1] for r in db.execute("PRAGMA table_info(tracks)")}
    for col in IDENTITY_COLUMNS:
        if col not in have:
            db.execute(f"ALTER TABLE tracks ADD COLUMN {col} TEXT")


class SqliteStore(Store):
    """History in one SQLite file (or ``:memory:``)."""

    def __init__(self, path: str):
        self.url = f"sqlite:///{path}"
        if path != ":memory:":
            parent = Path(path).parent
            if not parent.is_dir():
                raise StoreError(f"cannot create the database {path}: directory {parent} does not exist")
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk before put_ingest returns, so an acknowledged report survives a kill -9
            # (NORMAL would survive a process crash but not a power cut); writes are grouped, so fsyncs are few
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            _migrate(self._db)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the database {path}: {exc}") from None
        self._lock = threading.Lock()

    def _write(self, sql: str, rows: list[tuple]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(sql, rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _read(self, sql: str, args: Sequence = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # ------------------------------------------------------------------------------------------------- writes
    def put_sensors(self, sensors: Sequence[Sensor]) -> None:
        import msgspec

        self._write("INSERT OR REPLACE INTO sensors (id, record) VALUES (?, ?)",
                    [(s.id, msgspec.json.encode(s).decode()) for s in sensors])

    def put_detections(self, batch: DetectionBatch, table: SensorTable) -> int:
        rows = detection_rows(batch, table)
        if rows:
            cols = ", ".join(DETECTION_COLUMNS)
            self._write(f"INSERT INTO detections ({cols}) VALUES ({', '.join('?' * len(DETECTION_COLUMNS))})", rows)
        return len(rows)

    def put_ingest(self, items: Sequence[tuple[str | None, int | None, Sequence[Detection]]], table: SensorTable,
                   t_recv: float) -> list[bool]:
        fresh: list[bool] = []
        cols = ", ".join(DETECTION_COLUMNS)
        with self._lock:
            self._db.execute("BEGIN")
            try:
                new: list[Detection] = []
                for sensor, seq, dets in items:
                    ok = True
                    if sensor is not None and seq is not None:
                        cur = self._db.execute("INSERT OR IGNORE INTO batches (sensor, seq, t_recv, n) "
                                               "VALUES (?, ?, ?, ?)", (sensor, seq, t_recv, len(dets)))
                        ok = cur.rowcount == 1
                    if ok:
                        new.extend(dets)
                    fresh.append(ok)
                if new:
                    rows = detection_rows(DetectionBatch.from_records(new, table), table)
                    self._db.executemany(f"INSERT INTO detections ({cols}) "
                                         f"VALUES ({', '.join('?' * len(DETECTION_COLUMNS))})", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return fresh

    def recent_batch_seqs(self, window: int) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for sensor, seq in self._read("SELECT b.sensor, b.seq FROM batches b JOIN (SELECT sensor, max(seq) AS top "
                                      "FROM batches GROUP BY sensor) m ON m.sensor = b.sensor "
                                      "WHERE b.seq > m.top - ? ORDER BY b.sensor, b.seq", (int(window),)):
            out.setdefault(sensor, []).append(seq)
        return out

    def close_open_alerts(self, t_end: float) -> int:
        with self._lock:
            return self._db.execute('UPDATE alerts SET "end" = ? WHERE "end" IS NULL', (t_end,)).rowcount

    def put_tracks(self, snap: TrackSnapshot) -> int:
        rows = track_rows(snap)
        if not rows:
            return 0
        cols = ", ".join(TRACK_COLUMNS)
        with self._lock:
            self._db.execute("BEGIN")
            try:
                last = self._db.execute("SELECT coalesce(max(id), 0) FROM tracks").fetchone()[0]
                self._db.executemany(f"INSERT INTO tracks ({cols}) VALUES ({', '.join('?' * len(TRACK_COLUMNS))})",
                                     rows)
                self._db.execute("INSERT INTO tracks_rtree SELECT id, t, t, lat, lat, lon, lon FROM tracks "
                                 "WHERE id > ?", (last,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return len(rows)

    def put_alerts(self, alerts: Sequence[Alert]) -> None:
        import json

        self._write('INSERT INTO alerts (zone, start, "end", level, tracks) VALUES (?, ?, ?, ?, ?) '
                    'ON CONFLICT (zone, start) DO UPDATE SET "end" = excluded."end", level = excluded.level, '
                    'tracks = excluded.tracks',
                    [(a.zone, a.start, a.end, a.level, json.dumps(a.tracks)) for a in alerts])

    # -------------------------------------------------------------------------------------------------- reads
    def sensors(self) -> list[Sensor]:
        import msgspec

        return [msgspec.json.decode(r[0], type=Sensor) for r in self._read("SELECT record FROM sensors ORDER BY id")]

    def count_detections(self, t0: float = -math.inf, t1: float = math.inf) -> int:
        if math.isinf(t0) and math.isinf(t1):
            return self._read("SELECT count(*) FROM detections")[0][0]
        return self._read("SELECT count(*) FROM detections WHERE t >= ? AND t < ?", (t0, t1))[0][0]

    def detections(self, t0: float, t1: float, limit: int = MAX_ROWS) -> list[Detection]:
        rows = self._read(f"SELECT {', '.join(DETECTION_COLUMNS)} FROM detections WHERE t >= ? AND t < ? "
                          "ORDER BY t LIMIT ?", (t0, t1, min(limit, MAX_ROWS)))
        return [row_to_detection(r) for r in rows]

    def count_tracks(self) -> int:
        return self._read("SELECT count(*) FROM tracks")[0][0]

    def track_states(self, t0: float, t1: float, limit: int = MAX_ROWS) -> list[TrackPoint]:
        rows = self._read(f"SELECT {', '.join(TRACK_COLUMNS)} FROM tracks WHERE t >= ? AND t <= ? ORDER BY t, track "
                          "LIMIT ?", (t0, t1, min(limit, MAX_ROWS)))
        return [row_to_trackpoint(r) for r in rows]

    def _candidates_near(self, lat: float, lon: float, radius_m: float, t0: float, t1: float,
                         limit: int) -> tuple[list[TrackPoint], bool]:
        la0, la1, lo0, lo1 = bbox_deg(lat, lon, radius_m)
        cols = ", ".join(f"k.{c}" for c in TRACK_COLUMNS)
        # no ORDER BY here: the LIMIT then stops the index scan early (a broad query reads at most `limit` rows
        # instead of the whole box); the rows are ordered afterwards
        rows = self._read(
            f"SELECT {cols} FROM tracks_rtree r JOIN tracks k ON k.id = r.id "
            "WHERE r.t1 >= ? AND r.t0 <= ? AND r.lat1 >= ? AND r.lat0 <= ? AND r.lon1 >= ? AND r.lon0 <= ? "
            "AND k.t >= ? AND k.t <= ? LIMIT ?",
            (t0, t1, la0, la1, lo0, lo1, t0, t1, limit))
        truncated = len(rows) >= limit
        if not rows:
            return [], False
        rows.sort(key=lambda r: (r[0], r[1]))
        d = geodesic_m(lat, lon, np.array([r[3] for r in rows]), np.array([r[4] for r in rows]))
        keep = np.flatnonzero(d <= radius_m)[:limit]
        return [row_to_trackpoint(rows[i]) for i in keep], truncated

    def alerts(self, t0: float = -math.inf, t1: float = math.inf) -> list[Alert]:
        import json

        rows = self._read('SELECT zone, start, "end", level, tracks FROM alerts WHERE start <= ? '
                          'AND ("end" IS NULL OR "end" >= ?) ORDER BY start, zone',
                          (min(t1, 1e300), max(t0, -1e300)))
        return [Alert(zone=r[0], start=r[1], end=r[2], level=r[3], tracks=json.loads(r[4])) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
