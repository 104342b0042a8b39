"""MQTT transport of detections (paho-mqtt 2.x): topic scheme, payload decoding and validation, client helpers.

Topic scheme (version 1)::

    skytrace/v1/detections/<sensor-id>     one detection (JSON object) or several (JSON array), QoS 1
    skytrace/v1/heartbeat/<sensor-id>      "alive, heard nothing" (:mod:`skytrace.io.heartbeat`)

The payload uses the detections.jsonl record of ``docs/formats.md``. Every payload is hostile until proven
otherwise: size-capped, decoded and range-checked by :class:`skytrace.model.Detection`, cross-checked against
the sensor table (known sensor, fields required by its kind) by :func:`skytrace.io.formats.check_detection`,
and the ``sensor`` field must equal the sensor id in the topic (a node may only speak for itself; the broker's
ACL ties a node's credentials to its topic). A bad payload is counted and logged, never raised: one broken or
hostile node must not stop the service.

QoS 1 (at least once): the broker redelivers until the service acknowledges, so a detection is lost only if the
broker's queue overflows; duplicates are possible after a reconnect and are harmless to the tracker's gating.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import msgspec

from skytrace.batch import SensorTable
from skytrace.io.formats import check_detection
from skytrace.model import Detection

log = logging.getLogger(__name__)

TOPIC_PREFIX = "skytrace/v1/detections/"
TOPIC_FILTER = TOPIC_PREFIX + "+"
MAX_PAYLOAD_BYTES = 256 * 1024
MAX_DETECTIONS_PER_PAYLOAD = 5000
LOG_EVERY_S = 1.0  # s; at most one log line per second per ingest path for rejected input (the rest is counted)
_DECODER = msgspec.json.Decoder(Detection | list[Detection])


def topic_for(sensor_id: str) -> str:
    """The topic a sensor publishes its detections on."""
    if not sensor_id or any(c in sensor_id for c in "/+#\0"):
        raise ValueError(f"sensor id {sensor_id!r} cannot be used in an MQTT topic")
    return TOPIC_PREFIX + sensor_id


@dataclass
class DecodeStats:
    """Counters of an ingest path (thread-safe increments under ``lock``)."""

    messages: int = 0
    accepted: int = 0
    rejected_messages: int = 0
    rejected_detections: int = 0
    reasons: list[str] = field(default_factory=list)
    max_reasons: int = 20
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _last_log: float = field(default=-1e9, repr=False)
    _suppressed: int = field(default=0, repr=False)

    def reject(self, reason: str, n_detections: int = 1) -> None:
        with self.lock:
            self.rejected_detections += n_detections
            if len(self.reasons) < self.max_reasons:
                self.reasons.append(reason)
            else:  # keep the newest reasons: the operator wants to see what goes wrong now
                self.reasons[-1] = reason
            now = time.monotonic()
            if now - self._last_log < LOG_EVERY_S:  # a flood of bad input must not flood the log (and the disk)
                self._suppressed += 1
                return
            self._last_log, suppressed, self._suppressed = now, self._suppressed, 0
        log.warning("rejected input: %s%s", reason,
                    f" ({suppressed} more rejections not logged; counted in the status)" if suppressed else "")

    def as_dict(self) -> dict:
        with self.lock:
            return {"messages": self.messages, "accepted": self.accepted,
                    "rejected_messages": self.rejected_messages, "rejected_detections": self.rejected_detections,
                    "recent_reasons": list(self.reasons[-5:])}


def _count_and_size_ok(payload: bytes, stats: DecodeStats, source: str) -> bool:
    """Count one message; False (counted as rejected) when it is larger than ``MAX_PAYLOAD_BYTES``."""
    with stats.lock:
        stats.messages += 1
    if len(payload) <= MAX_PAYLOAD_BYTES:
        return True
    with stats.lock:
        stats.rejected_messages += 1
    stats.reject(f"{source}: payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    return False


def decode_payload(payload: bytes, decoder, stats: DecodeStats, source: str, what: str = "payload") -> list | None:
    """The items of one message (a JSON object or array, decoded by the msgspec ``decoder``), after counting it and
    checking its size; None (counted as rejected) when it is too large or not valid JSON of that type."""
    if not _count_and_size_ok(payload, stats, source):
        return None
    try:
        doc = decoder.decode(payload)
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError, RecursionError) as exc:
        with stats.lock:
            stats.rejected_messages += 1
        stats.reject(f"{source}: invalid {what}: {exc}")
        return None
    return doc if isinstance(doc, list) else [doc]


def decode_detections(payload: bytes, table: SensorTable, stats: DecodeStats, topic_sensor: str | None = None,
                      source: str = "mqtt", allowed_kinds: tuple[str, ...] | None = None) -> list[Detection]:
    """Validated detections of one payload (object or array); bad ones are counted in ``stats`` and dropped.

    A payload that is not valid JSON of detections is rejected whole; in an array, each detection is checked on
    its own so that one bad report does not cost the good ones beside it. ``allowed_kinds`` restricts the sensor
    kinds accepted (e.g. sightings: position reports only).
    """
    dets = decode_payload(payload, _DECODER, stats, source)
    if dets is None:
        return []
    return check_detections(dets, table, stats, topic_sensor, source, allowed_kinds)


def check_detections(dets: list[Detection], table: SensorTable, stats: DecodeStats, topic_sensor: str | None = None,
                     source: str = "mqtt", allowed_kinds: tuple[str, ...] | None = None) -> list[Detection]:
    """The detections of one decoded payload that pass the cross-checks (count cap, topic, sensor table, kind)."""
    if len(dets) > MAX_DETECTIONS_PER_PAYLOAD:
        with stats.lock:
            stats.rejected_messages += 1
        stats.reject(f"{source}: {len(dets)} detections in one payload (max {MAX_DETECTIONS_PER_PAYLOAD})",
                     len(dets))
        return []
    good: list[Detection] = []
    for d in dets:
        if topic_sensor is not None and d.sensor != topic_sensor:
            stats.reject(f"{source}: detection of sensor {d.sensor!r} published on the topic of {topic_sensor!r}")
            continue
        try:
            check_detection(d, table)
        except ValueError as exc:
            stats.reject(f"{source}: {str(exc).replace('`', '')}")
            continue
        if allowed_kinds is not None and (kind := table.records[table.index[d.sensor]].kind) not in allowed_kinds:
            stats.reject(f"{source}: a report of {d.sensor!r} ({kind}) is not accepted here")
            continue
        good.append(d)
    with stats.lock:
        stats.accepted += len(good)
    return good


def open_signed(verifier, payload: bytes, table: SensorTable, stats: DecodeStats, topic_sensor: str | None,
                source: str, allowed_kinds: tuple[str, ...] | None = None) -> list[Detection]:
    """Detections of a signed batch (:mod:`skytrace.security.signing`) that pass every check; else [] (counted)."""
    return open_signed_batch(verifier, payload, table, stats, topic_sensor, source, allowed_kinds)[0]


def open_signed_batch(verifier, payload: bytes, table: SensorTable, stats: DecodeStats, topic_sensor: str | None,
                      source: str, allowed_kinds: tuple[str, ...] | None = None, now: float | None = None
                      ) -> tuple[list[Detection], tuple[str, int] | None]:
    """As :func:`open_signed`, plus the batch id (sensor, seq) of an authentic fresh batch (else None); ``now``: see
    :meth:`skytrace.security.signing.Verifier.open_batch`."""
    if not _count_and_size_ok(payload, stats, source):
        return [], None
    dets, reason, batch_id = verifier.open_batch(payload, topic_sensor, now)
    if reason is not None:
        with stats.lock:
            stats.rejected_messages += 1
        stats.reject(f"{source}: signed batch rejected: {reason}")
        return [], None
    return check_detections(dets, table, stats, topic_sensor, source, allowed_kinds), batch_id


def reject_message(stats: DecodeStats, reason: str) -> None:
    """Count one message rejected whole (and log it at a bounded rate)."""
    with stats.lock:
        stats.messages += 1
        stats.rejected_messages += 1
    stats.reject(reason)


def handle_payload(payload: bytes, sensor: str, heartbeat: bool, table: SensorTable, verifier, stats: DecodeStats,
                   heartbeat_stats: DecodeStats, on_detections: Callable[[list[Detection]], None],
                   on_heartbeats: Callable[[list[tuple[str, float]]], None] | None, source: str,
                   channel: str = "", now: float | None = None) -> tuple[list[Detection], tuple[str, int] | None]:
    """Validate one message of ``sensor``'s detections or heartbeat topic (MQTT) or subject (NATS) and hand on what
    passes; returns (detections, batch id (sensor, seq) of an accepted signed batch or None). Never raises on bad
    input: everything rejected is counted in ``stats`` / ``heartbeat_stats`` (and by the verifier). ``now``: when
    the message reached the system, if it was kept in a log meanwhile (the signed batches' time window)."""
    where = f"{source} {channel}" if channel else source
    if heartbeat:
        from skytrace.io.heartbeat import decode_heartbeats, open_signed_heartbeat

        if verifier is not None:
            beats, batch_id = open_signed_heartbeat(verifier, payload, table, heartbeat_stats, sensor, source, now)
        else:
            beats, batch_id = decode_heartbeats(payload, table, heartbeat_stats, sensor, where), None
        if beats and on_heartbeats is not None:
            on_heartbeats(beats)
        return [], batch_id
    if verifier is not None:
        dets, batch_id = open_signed_batch(verifier, payload, table, stats, sensor, source, now=now)
    else:
        dets, batch_id = decode_detections(payload, table, stats, sensor, source=where), None
    if dets:
        on_detections(dets)
    return dets, batch_id


class MqttIngest:
    """Subscribes to ``skytrace/v1/detections/+`` and hands validated detections to ``on_detections``.

    Runs paho's network loop in its own thread; ``on_detections`` is called from that thread and must be quick
    (the service puts the detections on a queue). Reconnects on its own after a broker restart.

    With ``inbox`` (a :class:`skytrace.service.inbox.DurableInbox`), every QoS 1 message is acknowledged only after
    the store has committed it (manual PUBACK from the inbox's writer, in arrival order); a full inbox blocks this
    thread, so the broker keeps what the service cannot take yet. Without one, paho acknowledges on receipt.
    """

    def __init__(self, table: SensorTable, on_detections: Callable[[list[Detection]], None], host: str = "127.0.0.1",
                 port: int = 1883, client_id: str = "skytrace-service", username: str | None = None,
                 password: str | None = None, verifier=None, tls_ca: str | None = None, inbox=None,
                 on_heartbeats: Callable[[list[tuple[str, float]]], None] | None = None):
        import paho.mqtt.client as mqtt

        self.table = table
        self.on_detections = on_detections
        self.on_heartbeats = on_heartbeats  # (sensor, t) pairs of valid heartbeats; None: not subscribed
        self.heartbeat_stats = DecodeStats()
        self.stats = DecodeStats()
        self.connected = threading.Event()
        self.host, self.port = host, port
        self.inbox = inbox
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                                  manual_ack=inbox is not None)
        self.verifier = verifier  # a skytrace.security.signing.Verifier: then only signed batches are accepted
        if username:
            self.client.username_pw_set(username, password)
        if tls_ca:
            self.client.tls_set(ca_certs=tls_ca)
        self.client.max_inflight_messages_set(1000)
        self._subscribe_mid: int | None = None
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def use_inbox(self, inbox) -> None:
        """Acknowledge messages only once ``inbox`` has stored them (call before :meth:`start`)."""
        self.inbox = inbox
        self.client.manual_ack_set(True)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("MQTT connect to %s:%s refused: %s", self.host, self.port, reason_code)
            return
        topics = [(TOPIC_FILTER, 1)]
        if self.on_heartbeats is not None:
            from skytrace.io.heartbeat import HEARTBEAT_TOPIC_FILTER

            topics.append((HEARTBEAT_TOPIC_FILTER, 1))
        # ready only once the broker has granted the subscriptions (SUBACK): a message published before that
        # reaches no subscriber on a first connection, so start() must not return on the CONNACK alone
        _, self._subscribe_mid = client.subscribe(topics)
        log.info("MQTT connected to %s:%s, subscribing to %s", self.host, self.port, [t for t, _ in topics])

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if mid != self._subscribe_mid:
            return
        if any(rc.is_failure for rc in reason_codes):
            log.error("MQTT broker at %s:%s refused a subscription: %s", self.host, self.port, reason_codes)
            return
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        log.warning("MQTT disconnected (%s); paho reconnects", reason_code)

    def _on_message(self, client, userdata, msg) -> None:
        from skytrace.io.heartbeat import HEARTBEAT_TOPIC_PREFIX

        dets: list[Detection] = []
        batch_id = None
        try:
            topic = msg.topic
            heartbeat = self.on_heartbeats is not None and topic.startswith(HEARTBEAT_TOPIC_PREFIX)
            prefix = HEARTBEAT_TOPIC_PREFIX if heartbeat else TOPIC_PREFIX
            sensor = topic[len(prefix):] if topic.startswith(prefix) else None
            if sensor is None or "/" in sensor:
                reject_message(self.stats, f"mqtt: unexpected topic {topic!r}")
            else:
                dets, batch_id = handle_payload(msg.payload, sensor, heartbeat, self.table, self.verifier,
                                                self.stats, self.heartbeat_stats, self.on_detections,
                                                self.on_heartbeats, "mqtt", topic)
        except Exception:  # a bug here must not kill paho's network thread
            log.exception("MQTT message handling failed")
        if self.inbox is not None and msg.qos > 0:
            mid, qos = msg.mid, msg.qos
            sensor, seq = batch_id if batch_id is not None else (None, None)
            # a rejected message is acknowledged in its turn too (an empty item keeps the order of PUBACKs)
            self.inbox.put(sensor, seq, dets, lambda _fresh: client.ack(mid, qos), block=True)

    def start(self, timeout_s: float = 10.0) -> None:
        from skytrace.errors import SkytraceError

        try:
            self.client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise SkytraceError(f"cannot connect to the MQTT broker at {self.host}:{self.port}: {exc}") from None
        self.client.loop_start()
        if not self.connected.wait(timeout_s):
            self.stop()
            raise SkytraceError(f"MQTT broker at {self.host}:{self.port} did not accept the connection and "
                                "subscriptions")

    def stop(self) -> None:
        if self.inbox is not None:  # let the queued messages be committed and their PUBACKs sent while connected
            self.inbox.drain()
        self.client.disconnect()
        self.client.loop_stop()


class MqttPublisher:
    """A sensor-node side publisher (used by ``skytrace replay`` and the benchmarks)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883, client_id: str = "", qos: int = 1,
                 max_inflight: int = 2000):
        import paho.mqtt.client as mqtt

        self.qos = qos
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.max_inflight_messages_set(max_inflight)
        self.client.max_queued_messages_set(0)
        self.host, self.port = host, port
        self._encoder = msgspec.json.Encoder()

    def start(self) -> None:
        from skytrace.errors import SkytraceError

        try:
            self.client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise SkytraceError(f"cannot connect to the MQTT broker at {self.host}:{self.port}: {exc}") from None
        self.client.loop_start()

    def publish(self, sensor_id: str, dets: Sequence[Detection]):
        """Publish detections of one sensor as one message; returns paho's MQTTMessageInfo."""
        payload = self._encoder.encode(dets[0] if len(dets) == 1 else list(dets))
        return self.client.publish(topic_for(sensor_id), payload, qos=self.qos)

    def publish_raw(self, topic: str, payload: bytes):
        return self.client.publish(topic, payload, qos=self.qos)

    def publish_heartbeat(self, sensor_id: str, t: float, signer=None):
        """Publish "alive, heard nothing" at ``t`` (signed with ``signer``, a
        :class:`skytrace.security.signing.Signer`, as an empty batch sent at ``t``)."""
        from skytrace.io.heartbeat import heartbeat_topic_for
        from skytrace.model import Heartbeat

        payload = signer.sign([], t_sent=t) if signer is not None else self._encoder.encode(Heartbeat(t, sensor_id))
        return self.client.publish(heartbeat_topic_for(sensor_id), payload, qos=self.qos)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
