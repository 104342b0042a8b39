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
RECEIPT_PREFIX = "skytrace/v1/stored/"  # the service's receipts to a node: {"seq": N} once batch N is stored
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
                      source: str, allowed_kinds: tuple[str, ...] | None = None, seen: list | None = None,
                      now: float | None = None) -> tuple[list[Detection], tuple[str, int] | None]:
    """As :func:`open_signed`, plus the batch id (sensor, seq) of an authentic fresh batch (else None).
    ``seen``: receives the id of an authentic batch refused as a replay (stored before: its receipt may be resent).
    ``now``: when the batch reached the system if it waited in a log (:meth:`Verifier.open_batch`)."""
    if not _count_and_size_ok(payload, stats, source):
        return [], None
    dets, reason, batch_id = verifier.open_batch(payload, topic_sensor, now)
    if reason == "replayed" and batch_id is not None and seen is not None:
        seen.append(batch_id)
    if reason is not None:
        with stats.lock:
            stats.rejected_messages += 1
        stats.reject(f"{source}: signed batch rejected: {reason}")
        return [], None
    return check_detections(dets, table, stats, topic_sensor, source, allowed_kinds), batch_id


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
                 on_heartbeats: Callable[[list[tuple[str, float]]], None] | None = None, receipts: bool = True):
        import paho.mqtt.client as mqtt

        self.receipts = receipts  # signed batches, with an inbox: a receipt to the node once its batch is stored
        self.receipts_sent = 0
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
        dets: list[Detection] = []
        batch_id = None
        receipt: tuple[str, int] | None = None  # an authentic signed batch (fresh or seen before): confirm it
        try:
            topic_sensor = msg.topic[len(TOPIC_PREFIX):] if msg.topic.startswith(TOPIC_PREFIX) else None
            if topic_sensor is None and self.on_heartbeats is not None and (beat := self._heartbeat(msg))[0]:
                batch_id = beat[1]  # a signed heartbeat's (sensor, seq) is stored: replay refused after a restart
            elif topic_sensor is None or "/" in topic_sensor:
                with self.stats.lock:
                    self.stats.messages += 1
                    self.stats.rejected_messages += 1
                self.stats.reject(f"mqtt: unexpected topic {msg.topic!r}")
            elif self.verifier is not None:
                seen: list = []
                dets, batch_id = open_signed_batch(self.verifier, msg.payload, self.table, self.stats, topic_sensor,
                                                   "mqtt", seen=seen)
                receipt = batch_id or (seen[0] if seen else None)
            else:
                dets = decode_detections(msg.payload, self.table, self.stats, topic_sensor,
                                         source=f"mqtt {msg.topic}")
            if dets:
                self.on_detections(dets)
        except Exception:  # a bug here must not kill paho's network thread
            log.exception("MQTT message handling failed")
        if self.inbox is not None and msg.qos > 0:
            mid, qos = msg.mid, msg.qos
            sensor, seq = batch_id if batch_id is not None else (None, None)
            confirm = receipt if self.receipts else None

            def done(_fresh: bool) -> None:
                client.ack(mid, qos)
                if confirm is not None:  # after the commit, in order: a replayed batch's original is stored too
                    self._send_receipt(*confirm)

            # a rejected message is acknowledged in its turn too (an empty item keeps the order of PUBACKs)
            self.inbox.put(sensor, seq, dets, done, block=True)

    def _send_receipt(self, sensor: str, seq: int) -> None:
        """Tell the node its batch ``seq`` is stored (end-to-end: the broker's PUBACK only says the broker has it,
        and Mosquitto may lose an acknowledged message when it is killed before its next save)."""
        self.client.publish(RECEIPT_PREFIX + sensor, b'{"seq":%d}' % int(seq), qos=1)
        self.receipts_sent += 1

    def _heartbeat(self, msg) -> tuple[bool, tuple[str, int] | None]:
        """Handle a message on a heartbeat topic: (True, (sensor, seq) of an accepted signed heartbeat or None), or
        say it is not one (False, None)."""
        from skytrace.io.heartbeat import HEARTBEAT_TOPIC_PREFIX, decode_heartbeats, open_signed_heartbeat

        if not msg.topic.startswith(HEARTBEAT_TOPIC_PREFIX) or "/" in msg.topic[len(HEARTBEAT_TOPIC_PREFIX):]:
            return False, None
        sensor = msg.topic[len(HEARTBEAT_TOPIC_PREFIX):]
        batch_id = None
        if self.verifier is not None:
            beats, batch_id = open_signed_heartbeat(self.verifier, msg.payload, self.table, self.heartbeat_stats,
                                                    sensor, "mqtt")
        else:
            beats = decode_heartbeats(msg.payload, self.table, self.heartbeat_stats, sensor, f"mqtt {msg.topic}")
        if beats:
            self.on_heartbeats(beats)  # type: ignore[misc]
        return True, batch_id

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


class _Seq(msgspec.Struct):
    seq: int


_SEQ_DECODER = msgspec.json.Decoder(_Seq)


class MqttPublisher:
    """A sensor-node side publisher (used by ``skytrace node``, ``skytrace replay`` and the benchmarks).

    With :meth:`enable_receipts` a node keeps every signed batch until the service's receipt
    (``skytrace/v1/stored/<sensor>``) says it is stored, and resends it (same bytes: same sequence number, so the
    service stores it once) after ``resend_after_s``, then after twice that, and so on, up to ``give_up_s``. The
    broker's PUBACK is not enough: Mosquitto acknowledges before it saves, so a broker killed -9 can lose an
    acknowledged message (docs/security.md, section 3). This is the end-to-end argument (Saltzer, Reed & Clark,
    "End-to-end arguments in system design", ACM TOCS 2(4), 1984).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 1883, client_id: str = "", qos: int = 1,
                 max_inflight: int = 2000):
        import paho.mqtt.client as mqtt

        self.qos = qos
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.max_inflight_messages_set(max_inflight)
        self.client.max_queued_messages_set(0)
        self.host, self.port = host, port
        self._encoder = msgspec.json.Encoder()
        self._receipt_sensor: str | None = None
        self._unconfirmed: dict[int, list] = {}  # seq -> [topic, payload, first sent, next due, backoff s]
        self._receipt_lock = threading.Lock()
        self._receipt_stop = threading.Event()
        self._resender: threading.Thread | None = None
        self.resend_after_s, self.give_up_s, self.max_unconfirmed = 10.0, 600.0, 50_000
        self.receipt_stats = {"confirmed": 0, "resent": 0, "given_up": 0, "dropped_full": 0}

    def enable_receipts(self, sensor_id: str, resend_after_s: float = 10.0, give_up_s: float = 600.0,
                        max_unconfirmed: int = 50_000) -> None:
        """Keep signed batches of ``sensor_id`` until the service confirms them (call before :meth:`start`)."""
        topic_for(sensor_id)  # a valid topic level
        self._receipt_sensor = sensor_id
        self.resend_after_s, self.give_up_s, self.max_unconfirmed = resend_after_s, give_up_s, max_unconfirmed
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_receipt

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure and self._receipt_sensor is not None:  # again after every reconnection
            client.subscribe(RECEIPT_PREFIX + self._receipt_sensor, qos=1)

    def _on_receipt(self, client, userdata, msg) -> None:
        try:
            seq = _SEQ_DECODER.decode(msg.payload).seq
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        with self._receipt_lock:
            if self._unconfirmed.pop(seq, None) is not None:
                self.receipt_stats["confirmed"] += 1

    @property
    def unconfirmed(self) -> int:
        with self._receipt_lock:
            return len(self._unconfirmed)

    def publish_signed(self, sensor_id: str, payload: bytes):
        """Publish a signed batch (bytes from :class:`skytrace.security.signing.Signer`); with receipts on, it is
        kept until confirmed. Returns paho's MQTTMessageInfo."""
        topic = topic_for(sensor_id)
        if self._receipt_sensor == sensor_id:
            seq = _SEQ_DECODER.decode(payload).seq
            now = time.monotonic()
            with self._receipt_lock:
                if len(self._unconfirmed) >= self.max_unconfirmed:  # bounded: the oldest is given up
                    self._unconfirmed.pop(next(iter(self._unconfirmed)))
                    self.receipt_stats["dropped_full"] += 1
                self._unconfirmed[seq] = [topic, payload, now, now + self.resend_after_s, self.resend_after_s]
        return self.client.publish(topic, payload, qos=self.qos)

    def _resend_loop(self) -> None:
        while not self._receipt_stop.wait(0.5):
            now = time.monotonic()
            with self._receipt_lock:
                due = [(seq, e) for seq, e in self._unconfirmed.items() if e[3] <= now]
                for seq, e in due:
                    if now - e[2] > self.give_up_s:
                        del self._unconfirmed[seq]
                        self.receipt_stats["given_up"] += 1
                    else:
                        e[4] = min(2 * e[4], 120.0)
                        e[3] = now + e[4]
            for _seq, e in due:
                if now - e[2] <= self.give_up_s:
                    self.client.publish(e[0], e[1], qos=self.qos)
                    self.receipt_stats["resent"] += 1

    def wait_confirmed(self, timeout_s: float) -> bool:
        """Wait until every signed batch is confirmed stored; False on timeout."""
        end = time.monotonic() + timeout_s
        while self.unconfirmed and time.monotonic() < end:
            time.sleep(0.05)
        return not self.unconfirmed

    def start(self) -> None:
        from skytrace.errors import SkytraceError

        try:
            self.client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise SkytraceError(f"cannot connect to the MQTT broker at {self.host}:{self.port}: {exc}") from None
        self.client.loop_start()
        if self._receipt_sensor is not None and self._resender is None:
            self._resender = threading.Thread(target=self._resend_loop, name="mqtt-resend", daemon=True)
            self._resender.start()

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
        self._receipt_stop.set()
        if self._resender is not None:
            self._resender.join(5)
        self.client.disconnect()
        self.client.loop_stop()
