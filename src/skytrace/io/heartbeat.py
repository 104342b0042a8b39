"""Live heartbeats: a node saying "alive, heard nothing", over MQTT and HTTP, validated at the edge.

Only an alive node's silence is negative information (docs/tracking.md, "Silence"; and the consistency check that
mutes forged lone reports, docs/security.md): a node that hears nothing must say so now and then, or its silence
cannot be told from a dead battery. Transport (docs/formats.md, "heartbeats"):

    MQTT  skytrace/v1/heartbeat/<sensor-id>      QoS 0 or 1
    HTTP  POST /api/v1/heartbeats                 Content-Type: application/json

Payload, unsigned (a service without ``--keys``): the heartbeats.jsonl record ``{"t", "sensor"}`` or a JSON array
of them. Signed (a service with ``--keys``, the only form it accepts): a **signed batch with no detections**
(:mod:`skytrace.security.signing`), so a heartbeat is authenticated, numbered and replay-checked exactly like a
report; its time is the batch's ``t_sent``. The sensor must be the topic's (MQTT), known to the sensor table, and
the time within ``max_future_s`` / ``max_age_s`` of the service's clock (checked by the service). A bad payload is
counted in ``/api/v1/status`` → ``heartbeats`` and never raised.
"""

from __future__ import annotations

import msgspec

from skytrace.batch import SensorTable
from skytrace.io.mqtt import MAX_DETECTIONS_PER_PAYLOAD, DecodeStats, _count_and_size_ok, decode_payload
from skytrace.model import Heartbeat

HEARTBEAT_TOPIC_PREFIX = "skytrace/v1/heartbeat/"
HEARTBEAT_TOPIC_FILTER = HEARTBEAT_TOPIC_PREFIX + "+"
_DECODER = msgspec.json.Decoder(Heartbeat | list[Heartbeat])


def heartbeat_topic_for(sensor_id: str) -> str:
    """The topic a sensor publishes its heartbeats on."""
    if not sensor_id or any(c in sensor_id for c in "/+#\0"):
        raise ValueError(f"sensor id {sensor_id!r} cannot be used in an MQTT topic")
    return HEARTBEAT_TOPIC_PREFIX + sensor_id


def _checked(beats: list[tuple[str, float]], table: SensorTable, stats: DecodeStats, topic_sensor: str | None,
             source: str) -> list[tuple[str, float]]:
    good = []
    for sensor, t in beats:
        if topic_sensor is not None and sensor != topic_sensor:
            stats.reject(f"{source}: heartbeat of sensor {sensor!r} on the topic of {topic_sensor!r}")
        elif sensor not in table.index:
            stats.reject(f"{source}: heartbeat of unknown sensor {sensor[:64]!r}")
        else:
            good.append((sensor, t))
    with stats.lock:
        stats.accepted += len(good)
    return good


def decode_heartbeats(payload: bytes, table: SensorTable, stats: DecodeStats, topic_sensor: str | None = None,
                      source: str = "mqtt") -> list[tuple[str, float]]:
    """(sensor, t) of the valid unsigned heartbeats of one payload (object or array); bad ones counted."""
    beats = decode_payload(payload, _DECODER, stats, source, "heartbeat payload")
    if beats is None:
        return []
    if len(beats) > MAX_DETECTIONS_PER_PAYLOAD:
        with stats.lock:
            stats.rejected_messages += 1
        stats.reject(f"{source}: {len(beats)} heartbeats in one payload (max {MAX_DETECTIONS_PER_PAYLOAD})")
        return []
    return _checked([(b.sensor, b.t) for b in beats], table, stats, topic_sensor, source)


def open_signed_heartbeat(verifier, payload: bytes, table: SensorTable, stats: DecodeStats,
                          topic_sensor: str | None = None, source: str = "mqtt", now: float | None = None
                          ) -> tuple[list[tuple[str, float]], tuple[str, int] | None]:
    """([(sensor, t_sent)], (sensor, seq)) of an authentic, fresh signed batch with no detections; else ([], None)
    (counted: the verifier counts per sensor and reason, ``stats`` per path). The (sensor, seq) is stored like a
    report batch's, so the replay window rebuilt after a restart refuses a captured heartbeat too."""
    if not _count_and_size_ok(payload, stats, source):
        return [], None
    try:
        probe = msgspec.json.decode(payload, type=dict)
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError, RecursionError):
        probe = None
    if isinstance(probe, dict) and probe.get("detections"):
        with stats.lock:
            stats.rejected_messages += 1
        stats.reject(f"{source}: a heartbeat carries no detections (send them as reports)")
        return [], None
    dets, reason, batch_id = verifier.open_batch(payload, topic_sensor, now)
    if reason is not None or batch_id is None:
        with stats.lock:
            stats.rejected_messages += 1
        stats.reject(f"{source}: signed heartbeat rejected: {reason}")
        return [], None
    t_sent = float(msgspec.json.decode(payload, type=dict)["t_sent"])
    beats = _checked([(batch_id[0], t_sent)], table, stats, topic_sensor, source)
    return beats, batch_id if beats else None
