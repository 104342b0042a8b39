"""Identity of cooperative targets: ADS-B aircraft and Remote ID drones tag their reports and their tracks.

Cooperative reports carry who they are (``target_id``: ``icao:<24-bit address>`` for ADS-B, ``rid:<UAS ID>`` for
Remote ID) and a ``class``: ``manned`` for ADS-B aircraft (``cooperative-uav`` for the rare ADS-B emitter category
B6, unmanned), ``cooperative-uav`` for Remote ID. Each cooperative target reports as its own ``position`` sensor
(``adsb:<address>``, ``rid:<UAS ID>``): the transmitter on board is the sensor. A track that such a sensor updated
therefore inherits that sensor's identity through the tracker's per-track list of contributing sensors, without the
tracker knowing anything about identities.

Alert policy (docs/interop.md): ``manned`` tracks never raise a drone alert; ``cooperative-uav`` tracks are shown
but raise no alert unless the operator asks (``alert_cooperative``); every other class (or none) alerts as usual.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from skytrace.batch import SensorTable
from skytrace.model import Detection, Sensor

SLOT_PREFIX = "coop-slot-"
COOPERATIVE_PREFIXES = ("adsb:", "rid:")  # sensor ids the ADS-B and Remote ID decoders give their transmitters
MANNED = "manned"
COOPERATIVE_UAV = "cooperative-uav"
NEVER_ALERT = frozenset({MANNED})
ALERT_ON_REQUEST = frozenset({COOPERATIVE_UAV})


def may_alert(cls: str | None, alert_cooperative: bool = False) -> bool:
    """Whether a track of this class may raise a drone alert under the documented policy."""
    if cls in NEVER_ALERT:
        return False
    return not (cls in ALERT_ON_REQUEST and not alert_cooperative)


@dataclass(frozen=True)
class Identity:
    cls: str | None
    target_id: str


class _IdentityLine(msgspec.Struct):
    sensor: str
    target_id: str | None = None
    cls: str | None = msgspec.field(default=None, name="class")


class IdentityMap:
    """Sensor id -> identity of the cooperative target that sensor is (built from the detections themselves)."""

    def __init__(self, by_sensor: dict[str, Identity] | None = None):
        self.by_sensor: dict[str, Identity] = dict(by_sensor or {})
        self.version = 0  # bumped on every change (users cache per-row lookups by it)

    def register(self, sensor_id: str, ident: Identity) -> None:
        if self.by_sensor.get(sensor_id) != ident:
            self.by_sensor[sensor_id] = ident
            self.version += 1

    def forget(self, sensor_id: str) -> None:
        if self.by_sensor.pop(sensor_id, None) is not None:
            self.version += 1

    def __len__(self) -> int:
        return len(self.by_sensor)

    @classmethod
    def scan(cls, detections_path: str | os.PathLike) -> IdentityMap:
        """Collect identities from a detections.jsonl; only lines mentioning ``target_id`` are decoded.

        Bad lines are left to the detections reader, which reports them; here they are simply not used.
        """
        dec = msgspec.json.Decoder(_IdentityLine)
        out: dict[str, Identity] = {}
        with open(detections_path, "rb") as fh:
            for line in fh:
                if b"target_id" not in line:
                    continue
                try:
                    rec = dec.decode(line)
                except msgspec.DecodeError:
                    continue
                if rec.target_id and rec.sensor not in out:
                    out[rec.sensor] = Identity(rec.cls, rec.target_id)
        return cls(out)

    def tag(self, records: list) -> int:
        """Set ``cls`` and ``target_id`` of track points (TrackPoint) whose contributing sensors are cooperative.

        Returns how many points were tagged. A point keeps a class it already has.
        """
        n = 0
        if not self.by_sensor:
            return 0
        for rec in records:
            for s in rec.sensors or ():
                ident = self.by_sensor.get(s)
                if ident is not None:
                    rec.target_id = ident.target_id
                    if rec.cls is None:
                        rec.cls = ident.cls
                    n += 1
                    break
        return n


def reserve_slots(n: int) -> list[Sensor]:
    """``n`` spare ``position`` sensors (trusted: a transponder may confirm its own track) for the cooperative
    targets a live service meets: an ADS-B aircraft or a Remote ID drone is not in sensors.json, and the tracker's
    sensor table is fixed for the life of the service, so each new transmitter takes a spare row
    (:class:`CooperativeSensors`)."""
    return [Sensor(id=f"{SLOT_PREFIX}{k:05d}", kind="position", trusted=True) for k in range(n)]


class CooperativeSensors:
    """Gives each cooperative transmitter heard live (``adsb:<address>``, ``rid:<UAS ID>``) a row of the sensor
    table, taken from the spare rows of :func:`reserve_slots`, and registers its identity.

    A row is reused only after its transmitter has been silent for ``idle_s`` (longer than any track lives without
    updates), the least recently heard first; when every row is in use, reports of new transmitters are refused
    and counted (``full``): the table, and the tracker's arrays sized by it, stay bounded whatever a feed sends.
    Thread-safe (the feeds' threads call :meth:`admit`).
    """

    def __init__(self, table: SensorTable, identities: IdentityMap | None = None, idle_s: float = 900.0,
                 clock: Callable[[], float] = time.monotonic):
        self.table = table
        self.identities = identities if identities is not None else IdentityMap()
        self.idle_s = idle_s
        self.clock = clock
        self.slots = [i for i, sid in enumerate(table.ids) if sid.startswith(SLOT_PREFIX)]
        self.last_heard: dict[int, float] = {}  # row -> clock() of its transmitter's latest report
        self.full = 0
        self._new: list[Sensor] = []  # sensors given a row since the last drain_new (for the store)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.last_heard)

    def _row_for(self, sensor_id: str, now: float) -> int | None:
        row = self.table.index.get(sensor_id)
        if row is not None:
            return row
        free = [r for r in self.slots if r not in self.last_heard]
        if free:
            row = free[0]
        else:
            row = min(self.slots, key=lambda r: self.last_heard[r], default=None)
            if row is None or now - self.last_heard[row] < self.idle_s:
                return None
        old = self.table.ids[row]
        self.table.index.pop(old, None)
        self.identities.forget(old)
        self.table.ids[row] = sensor_id
        self.table.records[row] = Sensor(id=sensor_id, kind="position", trusted=True)
        self.table.index[sensor_id] = row
        self._new.append(self.table.records[row])
        return row

    def drain_new(self) -> list[Sensor]:
        """The sensors that got a row since the last call (the service stores them)."""
        with self._lock:
            new, self._new = self._new, []
        return new

    def requeue_new(self, sensors: list[Sensor]) -> None:
        """Put back sensors a failed store write did not keep (they go with the next drain)."""
        with self._lock:
            self._new[:0] = sensors

    def admit(self, dets: list[Detection]) -> list[Detection]:
        """The reports whose transmitter has (or now gets) a row; identities registered. Reports of
        non-cooperative sensors pass unchanged (the sensor table checks them)."""
        out = []
        with self._lock:
            now = self.clock()
            for d in dets:
                if d.target_id is None or not d.sensor.startswith(COOPERATIVE_PREFIXES):
                    out.append(d)
                    continue
                row = self._row_for(d.sensor, now)
                if row is None:
                    self.full += 1
                    continue
                self.last_heard[row] = now
                self.identities.register(d.sensor, Identity(d.cls, d.target_id))
                out.append(d)
        return out
