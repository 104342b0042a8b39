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
from dataclasses import dataclass

import msgspec

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
