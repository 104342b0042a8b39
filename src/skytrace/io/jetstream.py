"""NATS JetStream ingest of detections (nats-py): a persistent log between the nodes and the service.

Subjects (version 1), one stream ``SKYTRACE`` on file storage::

    skytrace.v1.detections.<sensor-id>    the same payloads as MQTT (signed batch, or detections when unsigned)
    skytrace.v1.heartbeat.<sensor-id>     "alive, heard nothing" (:mod:`skytrace.io.heartbeat`)

A node publishes with a JetStream publish acknowledgement: the server answers only once the message is in the
stream, so a node that got its acknowledgement may forget the message; a node without one publishes it again (with
the header ``Nats-Msg-Id: <sensor>:<seq>``, so the stream keeps one copy within its duplicate window).

The service reads through a **durable pull consumer** (explicit acknowledgement). A message is acknowledged only
after the service's inbox (:mod:`skytrace.service.inbox`) has committed it to the store: the same contract as an
MQTT QoS 1 PUBACK or an HTTP 202. A service killed at any instant has acknowledged only what is on disk; the
server redelivers the rest after ``ack_wait`` to the next instance that binds to the same durable consumer.
Exactly once: a redelivered signed batch already stored is refused by the verifier's replay window (seeded from
the store at start) or by the store's batch key (sensor, seq), and acknowledged without a second copy.

Every payload is hostile: the MQTT decode path validates it (size cap, msgspec decoding, record checks, signature,
the subject's sensor must be the batch's). A bad message is counted, logged at a bounded rate and acknowledged
(a hostile payload must not be redelivered forever); one that cannot be handled at all is not acknowledged.

nats-py is asyncio; the ingest runs its own event loop in its own thread (not the web server's loop), so signature
checks never delay an HTTP answer or a websocket update.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from skytrace.batch import SensorTable
from skytrace.errors import SkytraceError
from skytrace.io.mqtt import MAX_PAYLOAD_BYTES, DecodeStats, handle_payload
from skytrace.model import Detection

log = logging.getLogger(__name__)

STREAM = "SKYTRACE"
SUBJECT_PREFIX = "skytrace.v1.detections."
HEARTBEAT_SUBJECT_PREFIX = "skytrace.v1.heartbeat."
DURABLE = "skytrace-service"
STREAM_MAX_AGE_S = 7 * 86400.0  # the log keeps a week (fail-over, forensics), then drops the oldest
STREAM_MAX_BYTES = 8 << 30
DUPLICATE_WINDOW_S = 120.0  # a node's resend with the same Nats-Msg-Id within this window is not stored twice
FETCH_BATCH = 256
_BAD_SUBJECT_CHARS = set(".*> \t\r\n\0")


def require_nats():
    """The ``nats`` package, or a one-line error naming the extra."""
    try:
        import nats
    except ImportError:
        raise SkytraceError("NATS JetStream needs nats-py: pip install 'skytrace[nats]'") from None
    return nats


def subject_for(sensor_id: str, heartbeat: bool = False) -> str:
    """The subject a sensor publishes its detections (or heartbeats) on."""
    if not sensor_id or set(sensor_id) & _BAD_SUBJECT_CHARS:
        raise ValueError(f"sensor id {sensor_id!r} cannot be used in a NATS subject")
    return (HEARTBEAT_SUBJECT_PREFIX if heartbeat else SUBJECT_PREFIX) + sensor_id


def server_list(url: str) -> list[str]:
    """``nats://a:4222,nats://b:4222`` (the servers of a cluster; ``host:port`` means ``nats://host:port``)."""
    return [u if "://" in u else f"nats://{u}" for u in (p.strip() for p in url.split(",")) if u]


def msg_id(sensor_id: str, seq: int) -> str:
    """The ``Nats-Msg-Id`` of a signed batch: the stream refuses a second copy within its duplicate window."""
    return f"{sensor_id}:{seq}"


async def ensure_stream(js, replicas: int = 1, timeout_s: float = 30.0) -> None:
    """Create the ``SKYTRACE`` stream (file storage, ``replicas`` copies on as many servers of a cluster) if it does
    not exist; an existing one is left as it is. Retries while a just-started cluster elects its JetStream leader."""
    from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
    from nats.js.errors import NotFoundError

    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while True:
        try:
            try:
                await js.stream_info(STREAM)
                return
            except NotFoundError:
                pass
            await js.add_stream(StreamConfig(
                name=STREAM, subjects=[SUBJECT_PREFIX + "*", HEARTBEAT_SUBJECT_PREFIX + "*"],
                retention=RetentionPolicy.LIMITS, storage=StorageType.FILE, discard=DiscardPolicy.OLD,
                max_age=STREAM_MAX_AGE_S, max_bytes=STREAM_MAX_BYTES, max_msg_size=MAX_PAYLOAD_BYTES,
                duplicate_window=DUPLICATE_WINDOW_S, num_replicas=replicas))
            return
        except Exception:  # a cluster without a JetStream leader yet answers 503 or not at all: ask again
            if loop.time() > end:
                raise
            await asyncio.sleep(0.25)


@dataclass
class JetStreamStats(DecodeStats):
    """Counters of the JetStream ingest (``/api/v1/status`` → ``inputs`` → ``nats``)."""

    acked: int = 0  # messages acknowledged to the server (after their commit)
    redelivered: int = 0  # messages delivered more than once (the server's count)
    fetch_errors: int = 0  # failed pulls (server down, restarting): retried
    disconnects: int = 0

    def as_dict(self) -> dict:
        d = super().as_dict()
        with self.lock:
            d.update(acked=self.acked, redelivered=self.redelivered, fetch_errors=self.fetch_errors,
                     disconnects=self.disconnects)
        return d


def logged_at(msg) -> float | None:
    """When the stream stored ``msg`` (the server's clock, UNIX s), never later than now; None if unknown.

    Signed batches are checked against this time, not the time the service reads them: a batch that waited in the
    log through a service outage longer than the signature's time window (``signed_max_age_s``) is still accepted,
    once. Safe against replays: whoever publishes a captured batch into the log now gets now as its log time."""
    try:
        t = msg.metadata.timestamp.timestamp()
    except Exception:  # not a JetStream message, or no timestamp: the verifier's own clock
        return None
    return min(t, time.time())


class JetStreamIngest:
    """Pulls ``skytrace.v1.*`` from the stream through a durable consumer; acknowledges after the store's commit.

    A live input of the service (``name``, ``stats``, :meth:`start`, :meth:`stop`, as
    :class:`skytrace.interop.live.LiveInput`). ``on_detections`` / ``on_heartbeats`` are called from the ingest's
    thread and must be quick (the service queues). With ``inbox`` (a
    :class:`skytrace.service.inbox.DurableInbox`) each message is acknowledged by the inbox's writer after the
    commit; without one, on receipt (at most once for the store then; the service always has an inbox).
    """

    name = "nats"

    def __init__(self, table: SensorTable, on_detections: Callable[[list[Detection]], None],
                 url: str = "nats://127.0.0.1:4222", durable: str = DURABLE, verifier=None, inbox=None,
                 on_heartbeats: Callable[[list[tuple[str, float]]], None] | None = None, ack_wait_s: float = 30.0,
                 max_ack_pending: int = 20_000, user: str | None = None, password: str | None = None,
                 tls_ca: str | None = None, replicas: int = 1):
        require_nats()
        self.table, self.on_detections, self.on_heartbeats = table, on_detections, on_heartbeats
        self.url, self.durable, self.verifier, self.inbox = url, durable, verifier, inbox
        self.ack_wait_s, self.max_ack_pending = ack_wait_s, max_ack_pending
        self.user, self.password, self.tls_ca = user, password, tls_ca
        self.replicas = replicas  # copies of the stream when the service creates it (3 on a 3-server cluster)
        self.stats = JetStreamStats()
        self.heartbeat_stats = DecodeStats()
        self.ready = threading.Event()
        self._error: BaseException | None = None
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._nc = None

    # ----------------------------------------------------------------------------------------------- lifecycle
    def check(self, timeout_s: float = 5.0) -> None:
        """Pre-flight (before the web server starts): the server answers and has JetStream, else one SkytraceError
        line (the CLI prints it and exits 2)."""
        import nats

        async def probe() -> None:
            opts: dict = {"allow_reconnect": False, "connect_timeout": timeout_s, "max_reconnect_attempts": 0}
            if self.user:
                opts.update(user=self.user, password=self.password)
            if self.tls_ca:
                import ssl

                opts["tls"] = ssl.create_default_context(cafile=self.tls_ca)

            async def quiet(_exc: Exception) -> None:
                pass

            nc = await nats.connect(server_list(self.url), error_cb=quiet, **opts)
            try:
                for _ in range(int(timeout_s / 0.25)):  # a just-started cluster has no JetStream leader yet
                    try:
                        await nc.jetstream().account_info()
                        return
                    except Exception:  # 503 until then: ask again
                        await asyncio.sleep(0.25)
                await nc.jetstream().account_info()
            finally:
                await nc.close()

        try:
            asyncio.run(asyncio.wait_for(probe(), 2 * timeout_s + 2.0))
        except Exception as exc:  # any failure to reach or use the server is the user's set-up: one line
            detail = str(exc) or type(exc).__name__
            raise SkytraceError(f"NATS JetStream at {self.url} is not usable: {detail} (is nats-server running with "
                                "-js?)") from None

    def start(self, timeout_s: float = 45.0) -> None:
        """Connect, create the stream and the durable consumer if missing, start pulling; a SkytraceError when the
        server cannot be reached or has no JetStream within ``timeout_s``."""
        self._thread = threading.Thread(target=self._run, name="skytrace-nats", daemon=True)
        self._thread.start()
        if not self.ready.wait(timeout_s) or self._error is not None:
            err = self._error
            self.stop()
            raise SkytraceError(f"NATS JetStream at {self.url} is not usable: {err or 'no answer'}")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Let the queued messages be committed and acknowledged, then disconnect."""
        if self.inbox is not None and self.ready.is_set():
            self.inbox.drain()
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:  # reported by start(), or logged once running
            if not self.ready.is_set():
                self._error = exc
                self.ready.set()
            else:
                log.exception("NATS ingest stopped on an error")
        finally:
            self._loop.close()

    async def _main(self) -> None:
        import nats
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
        from nats.js.errors import NotFoundError

        async def on_disconnect() -> None:
            with self.stats.lock:
                self.stats.disconnects += 1

        async def on_error(exc: Exception) -> None:
            log.debug("NATS: %s", exc)

        opts: dict = {"allow_reconnect": True, "max_reconnect_attempts": -1, "reconnect_time_wait": 0.2,
                      "connect_timeout": 2, "disconnected_cb": on_disconnect, "error_cb": on_error,
                      "name": self.durable}
        if self.user:
            opts.update(user=self.user, password=self.password)
        if self.tls_ca:
            import ssl

            opts["tls"] = ssl.create_default_context(cafile=self.tls_ca)
        self._nc = nc = await nats.connect(server_list(self.url), **opts)
        try:
            js = nc.jetstream()
            await ensure_stream(js, self.replicas)
            try:
                await js.consumer_info(STREAM, self.durable)
            except NotFoundError:
                await js.add_consumer(STREAM, ConsumerConfig(
                    durable_name=self.durable, ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
                    ack_wait=self.ack_wait_s, max_ack_pending=self.max_ack_pending))
            psub = await js.pull_subscribe_bind(self.durable, STREAM)
            self.ready.set()
            log.info("NATS JetStream ingest: stream %s, durable consumer %s at %s", STREAM, self.durable, self.url)
            while not self._stopping.is_set():
                if self.inbox is not None and not self.inbox.has_room():  # backpressure: the log keeps them
                    await asyncio.sleep(0.05)
                    continue
                try:
                    msgs = await psub.fetch(FETCH_BATCH, timeout=1.0)
                except TimeoutError:
                    continue
                except Exception as exc:  # server restarting, connection lost: pull again
                    with self.stats.lock:
                        self.stats.fetch_errors += 1
                    log.debug("NATS fetch failed: %s", exc)
                    await asyncio.sleep(0.2)
                    continue
                for msg in msgs:
                    self._handle(msg)
        finally:
            await nc.close()

    # ----------------------------------------------------------------------------------------------- messages
    def _handle(self, msg) -> None:
        with contextlib.suppress(Exception):  # not a JetStream message (no metadata): handled as usual below
            if msg.metadata.num_delivered > 1:
                with self.stats.lock:
                    self.stats.redelivered += 1
        subject = msg.subject
        heartbeat = subject.startswith(HEARTBEAT_SUBJECT_PREFIX)
        prefix = HEARTBEAT_SUBJECT_PREFIX if heartbeat else SUBJECT_PREFIX
        sensor = subject[len(prefix):] if subject.startswith(prefix) else None
        try:
            if sensor is None or not sensor or "." in sensor:
                with self.stats.lock:
                    self.stats.messages += 1
                    self.stats.rejected_messages += 1
                self.stats.reject(f"nats: unexpected subject {subject[:200]!r}")
                dets, batch_id = [], None
            else:
                dets, batch_id = handle_payload(
                    msg.data, sensor, heartbeat, self.table, self.verifier, self.stats, self.heartbeat_stats,
                    self.on_detections, self.on_heartbeats, "nats", now=logged_at(msg))
        except Exception:  # a bug here must not stop the ingest; not acknowledged: redelivered after ack_wait
            log.exception("NATS message handling failed")
            return
        if self.inbox is None:
            self._ack(msg)
            return
        seq_sensor, seq = batch_id if batch_id is not None else (None, None)
        # a rejected message is acknowledged in its turn too (nothing to store; it must not come back forever)
        self.inbox.put(seq_sensor, seq, dets, lambda _fresh, m=msg: self._ack(m), block=True)

    def _ack(self, msg) -> None:
        """Acknowledge ``msg`` (any thread). A lost acknowledgement only means a redelivery, refused as a replay."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        async def ack() -> None:
            try:
                await msg.ack()
                with self.stats.lock:
                    self.stats.acked += 1
            except Exception as exc:  # connection lost: the server redelivers after ack_wait
                log.debug("NATS ack failed: %s", exc)

        if threading.current_thread() is self._thread:
            loop.create_task(ack())
        else:
            with contextlib.suppress(RuntimeError):  # the loop has stopped: the server redelivers
                asyncio.run_coroutine_threadsafe(ack(), loop)
