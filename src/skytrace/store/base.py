"""The repository interface of the history store, and the parts both back-ends share.

What is stored: sensors, raw detections (every accepted report, one row each), track states (TrackSnapshot rows)
and alert periods (:class:`skytrace.model.Alert`). Writes take struct-of-arrays batches (a DetectionBatch, a
TrackSnapshot) so that the live service writes thousands of rows per call; reads return edge records.

The spatial history query ("what flew within 2 km of this point last night") is answered on the WGS84 ellipsoid
in both back-ends: PostGIS ``ST_DWithin`` on ``geography`` (spheroid by default), SQLite a bounding-box prefilter
on an index followed by exact geodesic distances (pyproj ``Geod.inv``, Karney's algorithm), so that both give
the same answer to within millimetres.

References: C. F. F. Karney, "Algorithms for geodesics", J. Geodesy 87 (2013); PostGIS manual, ``ST_DWithin``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
from pyproj import Geod

from skytrace.batch import DetectionBatch, SensorTable, TrackSnapshot
from skytrace.errors import SkytraceError
from skytrace.model import Alert, Detection, Sensor, TrackPoint

WGS84 = Geod(ellps="WGS84")
DETECTION_COLUMNS = ("t", "sensor", "bearing_deg", "elevation_deg", "range_m", "lat", "lon", "alt_m", "pos_sigma_m",
                     "alt_sigma_m", "snr_db", "t_arrival")
TRACK_COLUMNS = ("t", "track", "status", "lat", "lon", "alt_m", "ve", "vn", "vu", "pos_sigma_m", "cls", "target_id",
                 "identity_flag")
# identity columns added to ``tracks`` after the first release: each back-end adds them to an existing database
IDENTITY_COLUMNS = ("cls", "target_id", "identity_flag")
MAX_ROWS = 200_000  # upper bound on rows a single read returns (hostile or careless queries)


class StoreError(SkytraceError):
    """The store cannot be opened or a query is invalid (bad URL, unreachable server, bad arguments)."""


def check_point_query(lat: float, lon: float, radius_m: float, t0: float, t1: float) -> None:
    """Validate the arguments of a spatial history query (they come from users over HTTP)."""
    for name, v in (("lat", lat), ("lon", lon), ("radius_m", radius_m), ("t0", t0), ("t1", t1)):
        if not math.isfinite(v):
            raise StoreError(f"`{name}` must be a finite number, got {v!r}")
    if not -90 <= lat <= 90 or not -180 <= lon <= 180:
        raise StoreError(f"point ({lat}, {lon}) is outside lat [-90, 90] / lon [-180, 180]")
    if not 0 < radius_m <= 500_000:
        raise StoreError(f"`radius_m` must be in (0, 500000], got {radius_m}")
    if t1 < t0:
        raise StoreError(f"`t1` ({t1}) is before `t0` ({t0})")


def bbox_deg(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """A lat/lon box that surely contains the circle of ``radius_m`` about (lat, lon): (lat0, lat1, lon0, lon1).

    Padded by 1 % and using the smallest meridian radius of curvature so it never cuts the circle; near the poles
    it widens to every longitude.
    """
    dlat = math.degrees(radius_m * 1.01 / 6_335_000.0)
    coslat = math.cos(math.radians(min(89.0, abs(lat) + dlat)))
    dlon = 180.0 if coslat < 1e-3 else min(180.0, math.degrees(radius_m * 1.01 / (6_335_000.0 * coslat)))
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


def geodesic_m(lat0: float, lon0: float, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Ellipsoidal distances (m) from one point to many (vectorised Karney)."""
    lat = np.asarray(lat, dtype=float)
    if lat.size == 0:
        return np.zeros(0)
    _, _, d = WGS84.inv(np.full(lat.shape, lon0), np.full(lat.shape, lat0), np.asarray(lon, dtype=float), lat)
    return np.asarray(d)


def detection_rows(batch: DetectionBatch, table: SensorTable) -> list[tuple]:
    """Rows of a DetectionBatch in DETECTION_COLUMNS order (NaN -> NULL, sensor row -> sensor id)."""
    cols = [batch.t, None, batch.bearing_deg, batch.elevation_deg, batch.range_m, batch.lat, batch.lon, batch.alt_m,
            batch.pos_sigma_m, batch.alt_sigma_m, batch.snr_db, batch.t_arrival]
    lists = []
    for c in cols:
        if c is None:
            lists.append([table.ids[int(i)] for i in batch.sensor])
        else:
            lists.append([None if v != v else v for v in c.tolist()])  # v != v: NaN
    return list(zip(*lists, strict=True))


def track_rows(snap: TrackSnapshot) -> list[tuple]:
    """Rows of a snapshot in TRACK_COLUMNS order; the identity columns are NULL where the snapshot has none."""
    n = len(snap)
    none = [None] * n
    return list(zip([snap.t] * n, snap.track, snap.status, snap.lat.tolist(), snap.lon.tolist(),
                    snap.alt_m.tolist(), snap.ve.tolist(), snap.vn.tolist(), snap.vu.tolist(),
                    snap.pos_sigma_m.tolist(), snap.cls if snap.cls is not None else none,
                    snap.target_id if snap.target_id is not None else none,
                    snap.identity_flag if snap.identity_flag is not None else none, strict=True))


def row_to_trackpoint(r: Sequence) -> TrackPoint:
    return TrackPoint(t=r[0], track=r[1], status=r[2], lat=r[3], lon=r[4], alt_m=r[5], ve=r[6], vn=r[7], vu=r[8],
                      pos_sigma_m=r[9], cls=r[10], target_id=r[11], identity_flag=r[12])


def row_to_detection(r: Sequence) -> Detection:
    kw = {name: v for name, v in zip(DETECTION_COLUMNS, r, strict=True) if v is not None}
    return Detection(**kw)


class Store(ABC):
    """Repository of sensors, detections, track states and alerts. Thread-safe: one writer, many readers."""

    url: str

    # -------------------------------------------------------------------------------------------------- writes
    @abstractmethod
    def put_sensors(self, sensors: Sequence[Sensor]) -> None:
        """Insert or replace sensors (by id)."""

    @abstractmethod
    def put_detections(self, batch: DetectionBatch, table: SensorTable) -> int:
        """Append raw detections; returns the number of rows written."""

    @abstractmethod
    def put_ingest(self, items: Sequence[tuple[str | None, int | None, Sequence[Detection]]], table: SensorTable,
                   t_recv: float) -> list[bool]:
        """Store received reports durably in one transaction, exactly once per signed batch.

        ``items``: (sensor, seq, detections) per received message; a signed batch has its sensor and sequence
        number and is recorded in ``batches`` (primary key (sensor, seq)): a batch already stored is skipped and
        its entry in the result is False (a redelivery, not stored twice). Unsigned reports have (None, None) and
        are always stored. Returns, per item, whether its detections were written. Committed when it returns.
        """

    @abstractmethod
    def recent_batch_seqs(self, window: int) -> dict[str, list[int]]:
        """Per sensor, the stored batch sequence numbers within ``window`` of its highest (the replay window)."""

    @abstractmethod
    def close_open_alerts(self, t_end: float) -> int:
        """End every alert period still open (``end`` NULL) at ``t_end``: a previous run stopped without closing
        it. Returns how many were closed."""

    @abstractmethod
    def put_tracks(self, snap: TrackSnapshot) -> int:
        """Append the track states of one snapshot, with its identity columns (``cls``, ``target_id``,
        ``identity_flag``) when it carries them; returns the number of rows written."""

    @abstractmethod
    def put_alerts(self, alerts: Sequence[Alert]) -> None:
        """Insert alert periods, or update them (same zone and start: a period that has now ended)."""

    # --------------------------------------------------------------------------------------------------- reads
    @abstractmethod
    def sensors(self) -> list[Sensor]: ...

    @abstractmethod
    def count_detections(self, t0: float = -math.inf, t1: float = math.inf) -> int:
        """Number of stored detections with ``t0 <= t < t1`` (sensor time)."""

    @abstractmethod
    def detections(self, t0: float, t1: float, limit: int = MAX_ROWS) -> list[Detection]: ...

    @abstractmethod
    def count_tracks(self) -> int:
        """Number of stored track-state rows."""

    @abstractmethod
    def track_states(self, t0: float, t1: float, limit: int = MAX_ROWS) -> list[TrackPoint]:
        """Track states with ``t0 <= t <= t1``, in time order (for the map's timeline)."""

    @abstractmethod
    def _candidates_near(self, lat: float, lon: float, radius_m: float, t0: float, t1: float,
                         limit: int) -> tuple[list[TrackPoint], bool]:
        """Track states in the time window within ``radius_m`` (back-end specific), reading at most ``limit``
        rows; and whether that read limit was hit (the answer may then be incomplete)."""

    def tracks_near(self, lat: float, lon: float, radius_m: float, t0: float, t1: float,
                    limit: int = MAX_ROWS) -> list[TrackPoint]:
        """Track states within ``radius_m`` (geodesic, horizontal) of (lat, lon) with ``t0 <= t <= t1``."""
        return self.tracks_near_bounded(lat, lon, radius_m, t0, t1, limit)[0]

    def tracks_near_bounded(self, lat: float, lon: float, radius_m: float, t0: float, t1: float,
                            limit: int = MAX_ROWS) -> tuple[list[TrackPoint], bool]:
        """As :meth:`tracks_near`, plus whether the read stopped at ``limit`` rows (bounded before reading)."""
        check_point_query(lat, lon, radius_m, t0, t1)
        return self._candidates_near(lat, lon, radius_m, t0, t1, min(limit, MAX_ROWS))

    def track_ids_near(self, lat: float, lon: float, radius_m: float, t0: float, t1: float,
                       limit: int = MAX_ROWS) -> dict[str, dict]:
        """Per track that came within ``radius_m``: first and last time inside, closest distance (m)."""
        return self.track_ids_near_bounded(lat, lon, radius_m, t0, t1, limit)[0]

    def track_ids_near_bounded(self, lat: float, lon: float, radius_m: float, t0: float, t1: float,
                               limit: int = MAX_ROWS) -> tuple[dict[str, dict], bool]:
        """As :meth:`track_ids_near` reading at most ``limit`` track states; and whether that limit was hit."""
        pts, truncated = self.tracks_near_bounded(lat, lon, radius_m, t0, t1, limit)
        d = geodesic_m(lat, lon, np.array([p.lat for p in pts]), np.array([p.lon for p in pts]))
        out: dict[str, dict] = {}
        for p, dist in zip(pts, d.tolist(), strict=True):
            o = out.setdefault(p.track, {"track": p.track, "first_t": p.t, "last_t": p.t, "closest_m": dist})
            o["first_t"] = min(o["first_t"], p.t)
            o["last_t"] = max(o["last_t"], p.t)
            o["closest_m"] = min(o["closest_m"], dist)
        return out, truncated

    @abstractmethod
    def alerts(self, t0: float = -math.inf, t1: float = math.inf) -> list[Alert]:
        """Alert periods overlapping [t0, t1] (active ones have ``end`` None)."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(url: str | None) -> Store:
    """Open a store from a URL: ``postgresql://...`` (PostGIS), ``sqlite:///path``, a plain path, or None/":memory:".

    Raises StoreError for an unknown scheme or a server that cannot be reached.
    """
    if url and url.startswith(("postgresql://", "postgres://")):
        from skytrace.store.postgis import PostgisStore

        return PostgisStore(url)
    from skytrace.store.sqlite import SqliteStore

    if url is None or url in ("", ":memory:", "sqlite://", "sqlite:///:memory:"):
        return SqliteStore(":memory:")
    if url.startswith("sqlite:///"):
        return SqliteStore(url[len("sqlite:///"):])
    if "://" in url:
        raise StoreError(f"unknown store URL scheme in {url!r} (use sqlite:///path or postgresql://...)")
    return SqliteStore(url)
