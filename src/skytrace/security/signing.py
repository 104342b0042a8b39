"""Signed report batches: canonical bytes, Ed25519 signatures, and the verifier with its replay window.

A node sends its reports as one *batch* (HTTP body or MQTT payload)::

    {"v": 1, "sensor": "ac-1", "seq": 42, "t_sent": 1795381200.25, "key": "3f9c...",
     "detections": [{...}, ...], "sig": "<base64 64-byte Ed25519 signature>"}

The signature covers the *canonical bytes*: the header (v, sensor, seq, t_sent, key) and the detections, each
re-encoded by skytrace's own encoder from the decoded, validated values (field order fixed, shortest round-trip
floats, defaults omitted), so that whitespace or key order on the wire cannot change what was signed and both
sides compute the same bytes without a JSON canonicalisation library.

:class:`Verifier` rejects, counted per sensor and per reason (``REASONS``): unsigned payloads, unknown sensors,
unknown/retired/revoked keys, bad signatures, detections of another sensor than the batch's, batches whose
``t_sent`` is outside the time window around the receiver's clock, and replays: a sequence number already seen or
refused by the replay window (IPsec's anti-replay window, RFC 4303 s3.4.3, extended to every sequence number
still inside the time window, so that QoS 1 redelivery and reordering are handled: a redelivered batch is
rejected as ``replayed`` and never stored twice, a delayed one is accepted once).
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Sequence

import msgspec

from skytrace.batch import SensorTable
from skytrace.errors import SkytraceError
from skytrace.model import Detection
from skytrace.security.keys import KeyRegistry, _crypto, key_id, public_raw_of

REASONS = ("unsigned", "malformed", "unknown_sensor", "unknown_key", "retired_key", "revoked_key", "bad_signature",
           "sensor_mismatch", "out_of_window", "replayed")
MAX_SEQ = (1 << 63) - 1
UNKNOWN_SENSOR_BUCKET = "(unregistered)"  # counts of ids not in the registry share one bucket (bounded memory)


class BatchHeader(msgspec.Struct, array_like=True):
    """The signed header, encoded as a fixed-order array."""

    v: int
    sensor: str
    seq: int
    t_sent: float
    key: str


class SignedBatch(msgspec.Struct, forbid_unknown_fields=True):
    v: int
    sensor: str
    seq: int
    t_sent: float
    key: str
    detections: list[Detection]
    sig: str


_ENC = msgspec.json.Encoder()
_BATCH_DECODER = msgspec.json.Decoder(SignedBatch)
_PROBE_DECODER = msgspec.json.Decoder(dict | list)  # only to tell an unsigned payload from a malformed batch


def canonical_bytes(v: int, sensor: str, seq: int, t_sent: float, key: str, detections: Sequence[Detection]) -> bytes:
    """The bytes a batch signature covers (see the module docstring)."""
    return b"skytrace-batch\n" + _ENC.encode(BatchHeader(v, sensor, seq, float(t_sent), key)) + b"\n" + _ENC.encode(
        list(detections))


class Signer:
    """The node side: signs batches with the node's private key and numbers them."""

    def __init__(self, sensor: str, private_key, seq0: int | None = None):
        self.sensor = sensor
        self.private_key = private_key
        self.key = key_id(public_raw_of(private_key))
        # a node that restarts without remembering its counter must still count upwards: start at the clock (us)
        self.seq = int(time.time() * 1e6) if seq0 is None else seq0

    def sign(self, detections: Sequence[Detection], t_sent: float | None = None, seq: int | None = None) -> bytes:
        """One signed batch (JSON bytes) of ``detections``; the sequence number advances by one."""
        if seq is None:
            self.seq += 1
            seq = self.seq
        t_sent = time.time() if t_sent is None else float(t_sent)
        dets = list(detections)
        sig = self.private_key.sign(canonical_bytes(1, self.sensor, seq, t_sent, self.key, dets))
        return _ENC.encode(SignedBatch(1, self.sensor, seq, t_sent, self.key, dets,
                                       base64.b64encode(sig).decode()))


class ReplayWindow:
    """Anti-replay state of one sensor: which sequence numbers were seen.

    Count mode (``check_and_mark(seq)``): the sliding window of RFC 4303 s3.4.3, a sequence number more than
    ``size`` below the highest is taken as a replay. Time mode (``check_and_mark(seq, t_sent, keep_after)``, what
    the verifier uses): every sequence number whose batch is still inside the verifier's time window
    (``t_sent >= keep_after``) is remembered, however far below the highest, so a batch delayed behind more than
    ``size`` newer ones (a node's backlog sent after a broker outage, QoS 1 retransmissions) is accepted once and
    a replay of it is still refused; older ones are refused by the time window itself. Memory: what the sensor
    sent within the time window, at most ``cap`` numbers (beyond that the lowest are forgotten and everything at
    or below them is refused, as in count mode).
    """

    __slots__ = ("_next_prune", "cap", "floor", "highest", "seen", "size")

    def __init__(self, size: int, cap: int | None = None):
        self.size = size
        self.cap = cap if cap is not None else 64 * size
        self.highest = -1
        self.floor = -1  # every number at or below is refused (forgotten for the cap)
        self.seen: dict[int, float | None] = {}  # seq -> t_sent (None: count mode / seeded)
        self._next_prune = 2 * size

    def check_and_mark(self, seq: int, t_sent: float | None = None, keep_after: float | None = None) -> bool:
        """True (and remembered) if ``seq`` is new; False if seen before or too old (see the class doc)."""
        if seq in self.seen or seq <= self.floor:
            return False
        if keep_after is None and seq <= self.highest - self.size:
            return False
        self.seen[seq] = t_sent if keep_after is not None else None
        self.highest = max(self.highest, seq)
        if len(self.seen) > self._next_prune:
            self._prune(keep_after)
        return True

    def _prune(self, keep_after: float | None) -> None:
        lo = self.highest - self.size
        drop = [s for s, t in self.seen.items()
                if s <= lo and (t is None or keep_after is None or t < keep_after)]
        for s in drop:
            del self.seen[s]
        if len(self.seen) > self.cap:
            order = sorted(self.seen)
            for s in order[:len(order) - self.cap]:
                del self.seen[s]
            self.floor = order[len(order) - self.cap - 1]
        self._next_prune = max(2 * self.size, 2 * len(self.seen))


class Verifier:
    """Checks signed batches against a :class:`KeyRegistry`; thread-safe; counts rejections per sensor and reason.

    ``max_future_s`` / ``max_age_s``: a batch whose ``t_sent`` is more than this ahead of / behind the receiver's
    clock is ``out_of_window`` (bounds how long a captured batch can be replayed after the receiver forgets its
    sequence numbers, e.g. after a restart). ``replay_window``: how many recent sequence numbers per sensor are
    remembered for reordered delivery.
    """

    def __init__(self, registry: KeyRegistry, table: SensorTable | None = None, max_future_s: float = 5.0,
                 max_age_s: float = 120.0, replay_window: int = 1024, clock: Callable[[], float] = time.time):
        ed25519, _ = _crypto()
        self._ed25519 = ed25519
        self.registry = registry
        self.table = table
        self.max_future_s, self.max_age_s = max_future_s, max_age_s
        self.replay_window = replay_window
        self.clock = clock
        self.lock = threading.Lock()
        self.windows: dict[str, ReplayWindow] = {}
        self.rejected: dict[str, dict[str, int]] = {}
        self.accepted: dict[str, int] = {}
        self._pub: dict[str, object] = {}

    def _count(self, sensor: str, reason: str) -> str:
        bucket = sensor if sensor in self.registry.sensors else UNKNOWN_SENSOR_BUCKET
        with self.lock:
            per = self.rejected.setdefault(bucket, {})
            per[reason] = per.get(reason, 0) + 1
        return reason

    def seed(self, seen: dict[str, list[int]]) -> None:
        """Restore the replay windows from the store's record of batches (:meth:`Store.recent_batch_seqs`), so
        that a restart does not open a replay window: a batch stored before is ``replayed``, a newer one fresh."""
        with self.lock:
            for sensor, seqs in seen.items():
                win = self.windows.setdefault(sensor, ReplayWindow(self.replay_window))
                for seq in seqs:
                    win.check_and_mark(int(seq))

    def forget(self, sensor: str, seq: int) -> None:
        """Un-see an accepted batch that could not be taken after all (refused for overload): it may come again."""
        with self.lock:
            if (win := self.windows.get(sensor)) is not None:
                win.seen.pop(seq, None)

    def open(self, payload: bytes, topic_sensor: str | None = None) -> tuple[list[Detection], str | None]:
        """The detections of a valid signed batch and None, or ([], the rejection reason) (counted)."""
        dets, reason, _ = self.open_batch(payload, topic_sensor)
        return dets, reason

    def open_batch(self, payload: bytes, topic_sensor: str | None = None, now: float | None = None
                   ) -> tuple[list[Detection], str | None, tuple[str, int] | None]:
        """As :meth:`open`, plus the accepted batch's id (sensor, seq) for exactly-once storage; for an authentic
        batch refused as ``replayed`` (seen before), its id too.

        ``now``: when the batch reached the system, if not now (the time a persistent log stored it, read later
        after an outage); the time window is checked against it. Default: the verifier's clock."""
        try:
            batch = _BATCH_DECODER.decode(payload)
        except (msgspec.ValidationError, msgspec.DecodeError, ValueError, RecursionError):
            try:
                probe = _PROBE_DECODER.decode(payload)
            except (msgspec.ValidationError, msgspec.DecodeError, ValueError, RecursionError):
                return [], self._count(topic_sensor or "", "malformed"), None
            signed_looking = isinstance(probe, dict) and "sig" in probe
            return [], self._count(topic_sensor or "", "malformed" if signed_looking else "unsigned"), None
        sensor = batch.sensor
        if topic_sensor is not None and sensor != topic_sensor:
            return [], self._count(topic_sensor, "sensor_mismatch"), None
        keys = self.registry.sensors.get(sensor)
        if not keys:
            return [], self._count(sensor, "unknown_sensor"), None
        entry = self.registry.lookup(sensor, batch.key)
        if entry is None:
            return [], self._count(sensor, "unknown_key"), None
        if entry.status != "active":
            return [], self._count(sensor, f"{entry.status}_key"), None
        try:
            sig = base64.b64decode(batch.sig, validate=True)
        except ValueError:
            return [], self._count(sensor, "bad_signature"), None
        pub = self._pub.get(entry.key_id)
        if pub is None:
            pub = self._pub[entry.key_id] = self._ed25519.Ed25519PublicKey.from_public_bytes(entry.public_key)
        msg = canonical_bytes(batch.v, sensor, batch.seq, batch.t_sent, batch.key, batch.detections)
        try:
            pub.verify(sig, msg)  # type: ignore[attr-defined]
        except Exception:  # cryptography raises InvalidSignature (and ValueError for a wrong length)
            return [], self._count(sensor, "bad_signature"), None
        # authentic from here on: what remains is whether it is fresh and consistent
        if batch.v != 1 or any(d.sensor != sensor for d in batch.detections):
            return [], self._count(sensor, "sensor_mismatch"), None
        now = self.clock() if now is None else now
        if not (now - self.max_age_s <= batch.t_sent <= now + self.max_future_s) or not 0 <= batch.seq <= MAX_SEQ:
            return [], self._count(sensor, "out_of_window"), None
        with self.lock:
            win = self.windows.get(sensor)
            if win is None:
                win = self.windows[sensor] = ReplayWindow(self.replay_window)
            fresh = win.check_and_mark(batch.seq, batch.t_sent, now - self.max_age_s)
        if not fresh:  # authentic and seen before: its id comes back (a stored receipt may be sent again)
            return [], self._count(sensor, "replayed"), (sensor, batch.seq)
        with self.lock:
            self.accepted[sensor] = self.accepted.get(sensor, 0) + 1
        return batch.detections, None, (sensor, batch.seq)

    def rejected_total(self, reason: str | None = None) -> int:
        with self.lock:
            return sum(n for per in self.rejected.values() for r, n in per.items() if reason in (None, r))

    def as_dict(self) -> dict:
        """For the service status: batches accepted per sensor, rejected per sensor and reason, totals."""
        with self.lock:
            totals: dict[str, int] = {}
            for per in self.rejected.values():
                for r, n in per.items():
                    totals[r] = totals.get(r, 0) + n
            return {"batches_accepted": sum(self.accepted.values()), "rejected_by_reason": totals,
                    "rejected_by_sensor": {s: dict(per) for s, per in self.rejected.items()},
                    "registered_sensors": len(self.registry.sensors)}


def make_verifier(path: str, table: SensorTable | None = None, **kw) -> Verifier:
    """A verifier over the key registry at ``path`` (a one-line error if it is missing or invalid)."""
    reg = KeyRegistry.load(path)
    if not reg.sensors:
        raise SkytraceError(f"{path}: the key registry has no sensors")
    return Verifier(reg, table, **kw)
