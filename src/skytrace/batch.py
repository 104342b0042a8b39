"""Struct-of-arrays batches: the core representation of sensors and detections on hot paths.

Objects (:mod:`skytrace.model`) live at the edges; the simulator, tracker and assessment work on these arrays,
one numpy column per field, so that every stage is vectorised over all sensors or detections at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from skytrace import geo
from skytrace.model import DEFAULT_SOUND_SPEED_MPS, SENSOR_KINDS, Detection, Sensor
from skytrace.sensors import registry

# codes of the built-in kinds (skytrace.sensors.registry assigns them; families registered later get the next ones)
KIND_CODE: dict[str, int] = {k: registry.code(k) for k in SENSOR_KINDS}
ACOUSTIC, RADAR, OPTICAL, POSITION = (KIND_CODE[k] for k in SENSOR_KINDS)
# the ``class`` a report may carry, as codes of DetectionBatch.cls_code (-1: none, -2: a class not listed here):
# the acoustic node's classes (skytrace.node.classify), the simulator's target kinds, the cooperative classes
DETECTION_CLASSES = ("uav-engine", "uav-multirotor", "aircraft", "other", "shahed", "jet", "decoy", "manned",
                     "cooperative-uav")
DETECTION_CLASS_CODE = {c: i for i, c in enumerate(DETECTION_CLASSES)}



def pairs_by_key(sorted_keys: np.ndarray, query_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (i, j) with ``sorted_keys[j] == query_keys[i]`` (``sorted_keys`` ascending), as two index arrays:
    the ragged join of queries to the rows that hold their key (e.g. each (sensor, bearing) query to that sensor's
    recent reports) in one vectorised pass, with no loop per query."""
    lo = np.searchsorted(sorted_keys, query_keys)
    cnt = np.searchsorted(sorted_keys, query_keys, side="right") - lo
    has = np.flatnonzero(cnt > 0)
    c = cnt[has]
    rep = np.repeat(has, c)
    idx = np.arange(int(c.sum())) - np.repeat(np.cumsum(c) - c, c) + np.repeat(lo[has], c)
    return rep, idx

@dataclass
class SensorTable:
    """All sensors as columns. ``index[id]`` gives the row of a sensor id."""

    ids: list[str]
    kind: np.ndarray  # int8 codes, see KIND_CODE
    lat: np.ndarray
    lon: np.ndarray
    alt_m: np.ndarray
    ecef_m: np.ndarray  # (N, 3); NaN for position-only sensors
    bearing_sigma_deg: np.ndarray
    elevation_sigma_deg: np.ndarray
    range_sigma_m: np.ndarray
    max_range_m: np.ndarray
    sound_speed_mps: np.ndarray
    trusted: np.ndarray | None = None  # bool: may confirm a track alone (sensors.json ``trusted`` or kind default)
    pd: np.ndarray | None = None  # detection probability per look of scanning sensors, NaN for the others
    index: dict[str, int] = field(default_factory=dict)
    records: list[Sensor] = field(default_factory=list)

    @classmethod
    def from_sensors(cls, sensors: list[Sensor]) -> SensorTable:
        def col(name: str, default: float = np.nan) -> np.ndarray:
            return np.array([getattr(s, name) if getattr(s, name) is not None else default for s in sensors],
                            dtype=float)

        lat, lon, alt = col("lat"), col("lon"), col("alt_m", 0.0)
        ecef = np.full((len(sensors), 3), np.nan)
        ok = np.isfinite(lat) & np.isfinite(lon)
        if ok.any():
            ecef[ok] = np.column_stack(geo.geodetic_to_ecef(lat[ok], lon[ok], alt[ok]))
        return cls(
            ids=[s.id for s in sensors],
            kind=np.array([registry.code(s.kind) for s in sensors], dtype=np.int8),
            lat=lat, lon=lon, alt_m=alt, ecef_m=ecef,
            bearing_sigma_deg=col("bearing_sigma_deg"),
            elevation_sigma_deg=col("elevation_sigma_deg"),
            range_sigma_m=col("range_sigma_m"),
            max_range_m=col("max_range_m"),
            sound_speed_mps=col("sound_speed_mps", DEFAULT_SOUND_SPEED_MPS),
            trusted=np.array([s.is_trusted for s in sensors], dtype=bool),
            pd=np.array([s.pd if s.pd is not None else (registry.get(s.kind).default_pd or np.nan) for s in sensors],
                        dtype=float),
            index={s.id: i for i, s in enumerate(sensors)},
            records=list(sensors),
        )

    def __len__(self) -> int:
        return len(self.ids)

    def __post_init__(self) -> None:
        codes = self.kind.astype(np.int64)
        if self.trusted is None:  # tables built column by column: each kind's default
            self.trusted = registry.codes_where("trusted_by_default")[codes] if len(codes) else np.zeros(0, bool)
        if self.pd is None:
            defaults = np.array([f.default_pd or np.nan for f in map(registry.by_code, range(len(registry.names())))])
            self.pd = defaults[codes] if len(codes) else np.zeros(0)


@dataclass
class DetectionBatch:
    """Detections as columns; absent optional values are NaN. ``sensor`` holds row indices of a SensorTable."""

    t: np.ndarray
    sensor: np.ndarray  # int32 row in SensorTable
    bearing_deg: np.ndarray
    elevation_deg: np.ndarray
    range_m: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    alt_m: np.ndarray
    pos_sigma_m: np.ndarray
    alt_sigma_m: np.ndarray
    snr_db: np.ndarray
    t_arrival: np.ndarray
    source: np.ndarray | None = None  # simulation only: index of the true emitter, -1 for false alarms
    bearing_sigma_deg: np.ndarray | None = None  # per-report bearing sigma (acoustic nodes); NaN = sensor nominal
    cls_code: np.ndarray | None = None  # int8 code of the report's ``class`` in DETECTION_CLASSES; -1 none, -2 other

    FLOAT_FIELDS = ("t", "bearing_deg", "elevation_deg", "range_m", "lat", "lon", "alt_m", "pos_sigma_m",
                    "alt_sigma_m", "snr_db", "t_arrival", "bearing_sigma_deg")

    def __post_init__(self) -> None:
        if self.bearing_sigma_deg is None:
            self.bearing_sigma_deg = np.full(self.t.shape[0], np.nan)
        if self.cls_code is None:
            self.cls_code = np.full(self.t.shape[0], -1, dtype=np.int8)

    def __len__(self) -> int:
        return int(self.t.shape[0])

    @classmethod
    def empty(cls, n: int = 0) -> DetectionBatch:
        kw = {name: np.full(n, np.nan) for name in cls.FLOAT_FIELDS}
        return cls(sensor=np.zeros(n, dtype=np.int32), source=np.full(n, -1, dtype=np.int32), **kw)

    @classmethod
    def from_records(cls, dets: list[Detection], table: SensorTable) -> DetectionBatch:
        """Columns from records; unknown sensor ids must have been rejected by the reader."""
        n = len(dets)
        out = cls.empty(n)
        out.sensor = np.fromiter((table.index[d.sensor] for d in dets), dtype=np.int32, count=n)
        for name in cls.FLOAT_FIELDS:
            arr = np.fromiter(((v if (v := getattr(d, name)) is not None else np.nan) for d in dets),
                              dtype=float, count=n)
            setattr(out, name, arr)
        out.cls_code = np.fromiter((-1 if d.cls is None else DETECTION_CLASS_CODE.get(d.cls, -2) for d in dets),
                                   dtype=np.int8, count=n)
        return out

    def to_records(self, table: SensorTable) -> list[Detection]:
        cols = {name: getattr(self, name) for name in self.FLOAT_FIELDS}
        out: list[Detection] = []
        for i in range(len(self)):
            kw = {name: float(c[i]) for name, c in cols.items() if np.isfinite(c[i]) and name != "t"}
            out.append(Detection(t=float(self.t[i]), sensor=table.ids[int(self.sensor[i])], **kw))
        return out

    def _source(self) -> np.ndarray:
        return self.source if self.source is not None else np.full(len(self), -1, dtype=np.int32)

    def take(self, idx: np.ndarray) -> DetectionBatch:
        """Rows ``idx`` (integer indices or boolean mask) as a new batch."""
        kw = {f.name: getattr(self, f.name)[idx] for f in fields(self) if f.name != "source"}
        return DetectionBatch(source=self._source()[idx], **kw)

    @classmethod
    def concat(cls, batches: list[DetectionBatch]) -> DetectionBatch:
        if not batches:
            return cls.empty()
        kw = {f.name: np.concatenate([getattr(b, f.name) for b in batches]) for f in fields(cls) if f.name != "source"}
        return cls(source=np.concatenate([b._source() for b in batches]), **kw)


@dataclass
class TrackSnapshot:
    """States of many tracks at one instant, as columns: the currency between tracking and assessment.

    Geodetic at this boundary (lat/lon/alt_m, velocity in the local ENU of each track's position, m/s), so that
    assessment, storage and outputs need no knowledge of the tracker's internal frame.
    """

    t: float
    track: list[str]
    status: list[str]  # "confirmed", "coasting" (confirmed, no recent update) or "tentative" (see docs/tracking.md)
    lat: np.ndarray
    lon: np.ndarray
    alt_m: np.ndarray
    ve: np.ndarray
    vn: np.ndarray
    vu: np.ndarray
    pos_sigma_m: np.ndarray
    sensors: list[list[str]] | None = None  # ids of (up to 4) sensors that contributed to each track
    sensor_rows: np.ndarray | None = None  # or, lazily: (N, 4) rows into sensor_names, -1 for none
    sensor_names: list[str] | None = None
    # identity of cooperative targets (skytrace.alerting.identity), None when not annotated: per track the class
    # (``manned``, ``cooperative-uav``), the identity its transmitter claims (``icao:4b43ac``, ``rid:...``) and why
    # that claim is not believed (None: believed or no claim)
    cls: list[str | None] | None = None
    target_id: list[str | None] | None = None
    identity_flag: list[str | None] | None = None

    def sensors_of(self, i: int) -> list[str] | None:
        if self.sensors is not None:
            return self.sensors[i]
        if self.sensor_rows is not None and self.sensor_names is not None:
            return [self.sensor_names[k] for k in self.sensor_rows[i] if k >= 0]
        return None

    def __len__(self) -> int:
        return len(self.track)

    def take(self, idx: np.ndarray) -> TrackSnapshot:
        """Rows ``idx`` (integer indices) as a new snapshot."""
        idx = np.asarray(idx, dtype=np.int64)
        return TrackSnapshot(
            t=self.t, track=[self.track[i] for i in idx], status=[self.status[i] for i in idx],
            lat=self.lat[idx], lon=self.lon[idx], alt_m=self.alt_m[idx], ve=self.ve[idx], vn=self.vn[idx],
            vu=self.vu[idx], pos_sigma_m=self.pos_sigma_m[idx],
            sensors=[self.sensors[i] for i in idx] if self.sensors is not None else None,
            sensor_rows=self.sensor_rows[idx] if self.sensor_rows is not None else None,
            sensor_names=self.sensor_names,
            cls=[self.cls[i] for i in idx] if self.cls is not None else None,
            target_id=[self.target_id[i] for i in idx] if self.target_id is not None else None,
            identity_flag=[self.identity_flag[i] for i in idx] if self.identity_flag is not None else None)

    def with_status(self, *statuses: str) -> TrackSnapshot:
        """Only the tracks whose status is one of ``statuses`` (e.g. ``"confirmed", "coasting"``)."""
        keep = [i for i, s in enumerate(self.status) if s in statuses]
        return self if len(keep) == len(self.status) else self.take(np.asarray(keep, dtype=np.int64))

    @classmethod
    def from_records(cls, t: float, recs: list) -> TrackSnapshot:
        """From TrackPoint (or TruthPoint-like) records that share one instant."""
        def col(name: str, default: float = 0.0) -> np.ndarray:
            return np.array([getattr(r, name, default) for r in recs], dtype=float)

        return cls(
            t=float(t),
            track=[getattr(r, "track", None) or getattr(r, "target", "") for r in recs],
            status=[getattr(r, "status", "confirmed") for r in recs],
            lat=col("lat"), lon=col("lon"), alt_m=col("alt_m"), ve=col("ve"), vn=col("vn"), vu=col("vu"),
            pos_sigma_m=col("pos_sigma_m", 0.0),
        )

    def to_records(self) -> list:
        from skytrace.model import TrackPoint

        return [TrackPoint(t=self.t, track=self.track[i], status=self.status[i], lat=float(self.lat[i]),
                           lon=float(self.lon[i]), alt_m=float(self.alt_m[i]), ve=float(self.ve[i]),
                           vn=float(self.vn[i]), vu=float(self.vu[i]), pos_sigma_m=float(self.pos_sigma_m[i]),
                           sensors=self.sensors_of(i), cls=self.cls[i] if self.cls is not None else None,
                           target_id=self.target_id[i] if self.target_id is not None else None,
                           identity_flag=self.identity_flag[i] if self.identity_flag is not None else None)
                for i in range(len(self))]
