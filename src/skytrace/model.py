"""Typed records at the stage boundaries (the interchange formats of ``docs/formats.md``).

These are the *edge* representation: one object per line of a file or per message. Hot paths work on the
struct-of-arrays batches in :mod:`skytrace.batch` instead. Validation of ranges and finiteness happens here, at
the edge, in ``__post_init__`` so that a bad value is reported with the field it came from.

Conventions (the public contract): times are UNIX seconds UTC; angles in degrees; positions WGS84 with altitudes
in metres above the ellipsoid; bearings true-north azimuth clockwise in [0, 360); elevations in [-90, 90].
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Literal

import msgspec

SensorKind = str  # a registered sensor family (skytrace.sensors.registry); built in: the four below
SENSOR_KINDS: tuple[str, ...] = ("acoustic", "radar", "optical", "position")
DEFAULT_SOUND_SPEED_MPS = 343.0


def _finite(name: str, value: float | None) -> None:
    if value is not None and not math.isfinite(value):
        raise ValueError(f"`{name}` must be a finite number, got {value!r}")


def _in_range(name: str, value: float | None, lo: float, hi: float, hi_open: bool = False) -> None:
    if value is None:
        return
    _finite(name, value)
    if value < lo or value > hi or (hi_open and value >= hi):
        bracket = ")" if hi_open else "]"
        raise ValueError(f"`{name}` = {value} is outside [{lo}, {hi}{bracket}")


def _positive(name: str, value: float | None, allow_zero: bool = False, hi: float = math.inf) -> None:
    if value is None:
        return
    _finite(name, value)
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"`{name}` must be {'>= 0' if allow_zero else '> 0'}, got {value}")
    if value > hi:
        raise ValueError(f"`{name}` = {value:g} is not plausible (at most {hi:g})")


def _text(name: str, value: str | None, max_len: int) -> None:
    if value is not None and len(value) > max_len:
        raise ValueError(f"`{name}` is longer than {max_len} characters")


# physical plausibility limits at the edge (every file and payload is hostile; docs/security.md)
MAX_ID_CHARS = 200
MAX_RANGE_M = 2_000_000.0  # no sensor measures a drone 2,000 km away
MAX_SIGMA_M = 1_000_000.0  # a position uncertainty larger than the country says nothing
MAX_ANGLE_SIGMA_DEG = 90.0
T_MIN_S, T_MAX_S = 0.0, 4_102_444_800.0  # UNIX s: 1970 to 2100-01-01


class Sensor(msgspec.Struct, forbid_unknown_fields=False, omit_defaults=True):
    """One sensor of the network (an entry of sensors.json)."""

    id: str
    kind: SensorKind
    lat: float | None = None
    lon: float | None = None
    alt_m: float | None = None
    bearing_sigma_deg: float | None = None
    elevation_sigma_deg: float | None = None
    range_sigma_m: float | None = None
    max_range_m: float | None = None
    sound_speed_mps: float | None = None
    trusted: bool | None = None  # may confirm a track alone; None = the default of its kind (radar: yes)
    pd: float | None = None  # detection probability per look of a scanning sensor; None = its kind's default

    def __post_init__(self) -> None:
        registry = _registry()
        if not self.id:
            raise ValueError("`id` must be a non-empty string")
        _text("id", self.id, MAX_ID_CHARS)
        if self.kind not in registry.names():
            raise ValueError(f"`kind` must be one of {', '.join(registry.names())}, got {self.kind!r}")
        family = registry.get(self.kind)
        _in_range("lat", self.lat, -90.0, 90.0)
        _in_range("lon", self.lon, -180.0, 180.0)
        _in_range("alt_m", self.alt_m, -500.0, 20_000.0)
        _positive("bearing_sigma_deg", self.bearing_sigma_deg, hi=MAX_ANGLE_SIGMA_DEG)
        _positive("elevation_sigma_deg", self.elevation_sigma_deg, hi=MAX_ANGLE_SIGMA_DEG)
        _positive("range_sigma_m", self.range_sigma_m, hi=MAX_SIGMA_M)
        _positive("max_range_m", self.max_range_m, hi=MAX_RANGE_M)
        _in_range("sound_speed_mps", self.sound_speed_mps, 250.0, 400.0)  # air from -100 to +120 degC
        _in_range("pd", self.pd, 0.0, 1.0)
        family.check_sensor(self)

    @property
    def is_trusted(self) -> bool:
        """Whether this sensor may confirm a track on its own (``trusted``, else its kind's default)."""
        if self.trusted is not None:
            return self.trusted
        return _registry().get(self.kind).trusted_by_default

    @property
    def sound_speed(self) -> float:
        """Speed of sound for this node in m/s (formats default: 343 m/s, dry air at 20 degC)."""
        return self.sound_speed_mps or DEFAULT_SOUND_SPEED_MPS


class SensorsFile(msgspec.Struct):
    sensors: list[Sensor]


class Detection(msgspec.Struct, omit_defaults=True):
    """One report of one sensor (a line of detections.jsonl).

    ``t`` is the time the signal was *received at the sensor*; for acoustic nodes the sound left the source
    range/c earlier. ``t_arrival`` (optional, skytrace extension) is when the report reached the fusion centre.
    """

    t: float
    sensor: str
    bearing_deg: float | None = None
    elevation_deg: float | None = None
    range_m: float | None = None
    lat: float | None = None
    lon: float | None = None
    alt_m: float | None = None
    pos_sigma_m: float | None = None
    alt_sigma_m: float | None = None
    snr_db: float | None = None
    cls: str | None = msgspec.field(default=None, name="class")
    class_conf: float | None = None
    t_arrival: float | None = None
    target_id: str | None = None  # identity a cooperative report carries (ADS-B ICAO address, Remote ID UAS ID)
    bearing_sigma_deg: float | None = None  # the sensor's own 1-sigma bearing error for this report (acoustic)

    def __post_init__(self) -> None:
        _in_range("t", self.t, T_MIN_S, T_MAX_S)
        if not self.sensor:
            raise ValueError("`sensor` must be a non-empty string")
        _text("sensor", self.sensor, MAX_ID_CHARS)
        _text("class", self.cls, MAX_ID_CHARS)
        _in_range("bearing_deg", self.bearing_deg, 0.0, 360.0, hi_open=True)
        _in_range("elevation_deg", self.elevation_deg, -90.0, 90.0)
        _positive("range_m", self.range_m, hi=MAX_RANGE_M)
        _in_range("lat", self.lat, -90.0, 90.0)
        _in_range("lon", self.lon, -180.0, 180.0)
        _in_range("alt_m", self.alt_m, -500.0, 50_000.0)
        _positive("pos_sigma_m", self.pos_sigma_m, hi=MAX_SIGMA_M)
        _positive("alt_sigma_m", self.alt_sigma_m, hi=MAX_SIGMA_M)
        _in_range("snr_db", self.snr_db, -300.0, 300.0)
        _in_range("class_conf", self.class_conf, 0.0, 1.0)
        _in_range("t_arrival", self.t_arrival, T_MIN_S, T_MAX_S)
        if self.target_id is not None and not (0 < len(self.target_id) <= 64):
            raise ValueError("`target_id` must be a string of 1 to 64 characters")
        _positive("bearing_sigma_deg", self.bearing_sigma_deg)


class Heartbeat(msgspec.Struct, omit_defaults=True):
    """A sensor saying "alive, heard nothing" (a line of heartbeats.jsonl): only an alive sensor's silence is
    negative information for the tracker (docs/tracking.md, "Silence")."""

    t: float
    sensor: str
    t_arrival: float | None = None

    def __post_init__(self) -> None:
        _in_range("t", self.t, T_MIN_S, T_MAX_S)
        if not self.sensor:
            raise ValueError("`sensor` must be a non-empty string")
        _text("sensor", self.sensor, MAX_ID_CHARS)
        _in_range("t_arrival", self.t_arrival, T_MIN_S, T_MAX_S)


def _registry():
    """The sensor-family registry, imported on first use (it imports numpy; this module stays light)."""
    global _REGISTRY
    if _REGISTRY is None:
        from skytrace.sensors import registry

        _REGISTRY = registry
    return _REGISTRY


_REGISTRY = None


class _RequiredDetectionFields(Mapping):
    """Fields a detection must carry, per sensor kind: a live view of the sensor-family registry."""

    def __getitem__(self, kind: str) -> tuple[str, ...]:
        try:
            return _registry().get(kind).required_detection_fields
        except ValueError:
            raise KeyError(kind) from None

    def __iter__(self) -> Iterator[str]:
        return iter(_registry().names())

    def __len__(self) -> int:
        return len(_registry().names())


# Fields a detection must carry, per sensor kind (checked against sensors.json when reading).
REQUIRED_DETECTION_FIELDS: Mapping[str, tuple[str, ...]] = _RequiredDetectionFields()


class TruthPoint(msgspec.Struct, omit_defaults=True):
    """Ground truth of one target at one instant (a line of truth.jsonl; simulation only)."""

    t: float
    target: str
    lat: float
    lon: float
    alt_m: float
    ve: float
    vn: float
    vu: float
    kind: str = "shahed"

    def __post_init__(self) -> None:
        for name in ("t", "ve", "vn", "vu"):
            _finite(name, getattr(self, name))
        _in_range("lat", self.lat, -90.0, 90.0)
        _in_range("lon", self.lon, -180.0, 180.0)
        _in_range("alt_m", self.alt_m, -500.0, 50_000.0)


class TrackPoint(msgspec.Struct, omit_defaults=True):
    """State of one track at one instant (a line of tracks.jsonl)."""

    t: float
    track: str
    status: Literal["tentative", "confirmed", "coasting", "deleted"]
    lat: float
    lon: float
    alt_m: float
    ve: float
    vn: float
    vu: float
    pos_sigma_m: float
    cls: str | None = msgspec.field(default=None, name="class")
    covariance: list[float] | None = None
    sensors: list[str] | None = None
    target_id: str | None = None  # identity of a cooperative target (from the reports that updated the track)
    identity_flag: str | None = None  # why the identity claimed by the target's transmitter is not believed

    def __post_init__(self) -> None:
        for name in ("t", "ve", "vn", "vu"):
            _finite(name, getattr(self, name))
        _in_range("lat", self.lat, -90.0, 90.0)
        _in_range("lon", self.lon, -180.0, 180.0)
        _in_range("alt_m", self.alt_m, -500.0, 50_000.0)
        _positive("pos_sigma_m", self.pos_sigma_m, allow_zero=True)


class Alert(msgspec.Struct, omit_defaults=False):
    """One alert period of one zone (a line of alerts.jsonl); ``end`` is None while the alert is active."""

    zone: str
    start: float
    end: float | None
    level: str
    tracks: list[str]

    def __post_init__(self) -> None:
        _finite("start", self.start)
        _finite("end", self.end)
        if self.end is not None and self.end < self.start:
            raise ValueError(f"`end` ({self.end}) is before `start` ({self.start})")
