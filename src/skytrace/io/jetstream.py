"""NATS JetStream ingest: reports from a replicated, persistent stream, acknowledged only once stored.

Why a second transport next to MQTT: Mosquitto acknowledges a QoS 1 message (PUBACK) before it has written it to
disk, so a ``kill -9`` of the broker can lose a message its publisher already counts as delivered (measured: 2 of
6,000 batches over 10 kills, docs/security.md). A JetStream server answers a publish only after the message is in
its stream's store (file storage; replicated in a cluster), so a killed server loses nothing it acknowledged, and
the stream keeps every report until this service has acknowledged it after its own commit.

Subjects (one token per sensor; sensor ids must not contain ``.``, ``*``, ``>`` or spaces):

- ``skytrace.v1.detections.<sensor>``: the same payloads as MQTT (docs/formats.md: one detection, a list, or a
  signed batch when the service runs with ``--keys``);
- ``skytrace.v1.heartbeat.<sensor>``: heartbeats, as over MQTT.

The service creates the stream ``SKYTRACE`` (file storage, 24 h of retention, a 2 min publish de-duplication window
for ``Nats-Msg-Id``) if it does not exist, and reads it through one durable pull consumer (``skytrace-service``)
with explicit acknowledgement. Every message goes through the durable inbox in arrival order, and is acknowledged
after the commit (a refused one in its turn too). Exactly once: a signed batch is keyed by its (sensor, sequence
number); an unsigned message by the stream's own sequence number (with the stream's creation time, so that a
re-created stream never collides with an old one). A redelivery (the ack was lost, the service died before it)
finds its key stored and adds nothing.

References: NATS JetStream, "Consumers" and "Model deep dive: exactly once" (docs.nats.io).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable

from skytrace.batch import SensorTable
from skytrace.io.mqtt import DecodeStats, decode_detections, open_signed_batch
from skytrace.model import Detection

log = logging.getLogger(__name__)

SUBJECT_PREFIX = "skytrace.v1.detections."
HEARTBEAT_SUBJECT_PREFIX = "skytrace.v1.heartbeat."
STREAM = "SKYTRACE"
DURABLE = "skytrace-service"
RETENTION_S = 24 * 3600.0
DEDUP_WINDOW_S = 120.0
SETUP_TIMEOUT_S = 40.0  # s to get the stream and the consumer (a cluster may be electing a leader meanwhile)


def subject_for(sensor_id: str) -> str:
    """The subject a sensor publishes its reports on."""
    return SUBJECT_PREFIX + sensor_id


def _need_nats():
    try:
        import nats
    except ImportError:
        from skytrace.errors import SkytraceError

        raise SkytraceError("NATS support is not installed: pip install 'skytrace[nats]'") from None
    return nats


def server_list(url: str) -> list[str]:
    """The servers of ``url``: one URL, or the comma-separated URLs of a cluster's servers."""
    return [u.strip() for u in url.split(",") if u.strip()]


async def ensure_stream(js, stream: str = STREAM, replicas: int = 1, timeout_s: float = 30.0) -> str:
    """Create the stream if missing (``replicas`` copies, on as many servers of a cluster); returns its dedup key
    prefix (stream name and creation time). Asks again while a just-started cluster elects its JetStream leader."""
    from nats.js.api import StorageType, StreamConfig
    from nats.js.errors import NotFoundError

    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while True:
        try:
            try:
                info = await js.stream_info(stream)
            except NotFoundError:
                info = await js.add_stream(StreamConfig(
                    name=stream, subjects=[SUBJECT_PREFIX + "*", HEARTBEAT_SUBJECT_PREFIX + "*"],
                    storage=StorageType.FILE, max_age=RETENTION_S, duplicate_window=DEDUP_WINDOW_S,
                    num_replicas=replicas))
            break
        except Exception:  # no JetStream leader yet (503, timeout): ask again until timeout_s
            if loop.time() > end:
                raise
            await asyncio.sleep(0.25)
    created = info.created.timestamp() if info.created is not None else 0.0
    return f"nats:{stream}:{int(created)}"


def logged_at(msg) -> float | None:
    """When the stream stored ``msg`` (the server's clock, UNIX s), never later than now; None if unknown.

    Signed batches are checked against this time, not the time the service reads them: a batch that waited in the
    log through a service outage longer than the signature's time window (``signed_max_age_s``, 120 s) is still
    accepted, once, instead of being refused as ``out_of_window`` and so lost. Safe against replays: whoever
    publishes a captured batch into the log again gets the time of that publication."""
    try:
        t = msg.metadata.timestamp.timestamp()
    except Exception:  # not a JetStream message, or no timestamp: the verifier's own clock
        return None
    return min(t, time.time())


class NatsIngest:
    """Reads ``skytrace.v1.detections.*`` (and heartbeats) from JetStream; the same contract as
    :class:`skytrace.io.mqtt.MqttIngest`: ``start``, ``stop``, ``use_inbox``, ``stats``, ``heartbeat_stats``.

    Runs its own asyncio loop in a thread. With an inbox, messages are acknowledged after the commit; without one,
    after ``on_detections`` took them.
    """

    def __init__(self, table: SensorTable, on_detections: Callable[[list[Detection]], None],
                 url: str = "nats://127.0.0.1:4222", verifier=None, inbox=None,
                 on_heartbeats: Callable[[list[tuple[str, float]]], None] | None = None,
                 user: str | None = None, password: str | None = None, stream: str = STREAM,
                 durable: str = DURABLE, fetch_batch: int = 256, replicas: int = 1):
        _need_nats()
        self.table = table
        self.on_detections = on_detections
        self.on_heartbeats = on_heartbeats
        self.url, self.user, self.password = url, user, password
        self.verifier = verifier
        self.inbox = inbox
        self.stream, self.durable, self.fetch_batch = stream, durable, fetch_batch
        self.replicas = replicas  # copies of the stream if this service creates it (3 on a 3-server cluster)
        self.stats = DecodeStats()
        self.heartbeat_stats = DecodeStats()
        self.connected = threading.Event()
        self.redelivered = 0  # messages the server delivered more than once (their keys dedup them)
        self._key_prefix = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    def use_inbox(self, inbox) -> None:
        """Acknowledge messages only once ``inbox`` has stored them (call before :meth:`start`)."""
        self.inbox = inbox

    # ------------------------------------------------------------------------------------------------ lifecycle
    def check(self, timeout_s: float = 3.0) -> None:
        """Pre-flight, before the web server starts: a server answers and has JetStream (a cluster gets
        ``SETUP_TIMEOUT_S`` to elect its leader), else one SkytraceError line (the CLI prints it, exit status 2)."""
        from skytrace.errors import SkytraceError

        nats = _need_nats()

        async def quiet(_exc: Exception) -> None:
            return None

        async def probe() -> None:
            # bounded: the client keeps trying a refused connection on its own
            nc = await asyncio.wait_for(nats.connect(server_list(self.url), user=self.user, password=self.password,
                                                     allow_reconnect=False, max_reconnect_attempts=0,
                                                     connect_timeout=timeout_s, error_cb=quiet), 2 * timeout_s)
            try:
                loop = asyncio.get_running_loop()
                end = loop.time() + SETUP_TIMEOUT_S
                while True:
                    try:
                        await nc.jetstream().account_info()
                        return
                    except Exception:  # 503 while a cluster has no JetStream leader; none at all: -js missing
                        if loop.time() > end:
                            raise
                        await asyncio.sleep(0.25)
            finally:
                await nc.close()

        try:
            asyncio.run(asyncio.wait_for(probe(), SETUP_TIMEOUT_S + 3 * timeout_s))
        except Exception as exc:
            if isinstance(exc, TimeoutError):
                exc = TimeoutError("no answer")
            raise SkytraceError(f"NATS JetStream at {self.url} is not usable: {str(exc) or type(exc).__name__} "
                                "(is nats-server running, with -js?)") from None

    def start(self, timeout_s: float = SETUP_TIMEOUT_S + 5.0) -> None:
        from skytrace.errors import SkytraceError

        self._thread = threading.Thread(target=self._run, name="nats-ingest", daemon=True)
        self._thread.start()
        if not self.connected.wait(timeout_s):
            self.stop()
            raise SkytraceError(f"NATS JetStream at {self.url} did not accept the connection and consumer in "
                                f"{timeout_s:g} s (is nats-server running there, with -js?)"
                                + (f": {self._error}" if self._error else ""))

    def stop(self) -> None:
        if self.inbox is not None:  # let queued messages be committed and their acks sent while connected
            self.inbox.drain()
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended meanwhile (a failed start)
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:  # a client still trying its first connection is a daemon thread: let it be
            self._thread.join(10 if self.connected.is_set() else 1)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._main())
        except Exception as exc:  # reported by start(); a running ingest logs and ends
            self._error = exc
            log.error("NATS ingest stopped: %s", exc)
        finally:
            self._loop.close()

    async def _main(self) -> None:
        nats = _need_nats()
        self._stop = asyncio.Event()

        async def disconnected() -> None:
            if not self._stop.is_set():
                log.warning("NATS disconnected from %s; reconnecting", self.url)

        async def error(exc: Exception) -> None:
            log.debug("NATS client error: %s", exc)

        nc = await nats.connect(server_list(self.url), user=self.user, password=self.password,
                                max_reconnect_attempts=-1, reconnect_time_wait=0.5, connect_timeout=5,
                                allow_reconnect=True,
                                disconnected_cb=disconnected, error_cb=error)
        try:
            js = nc.jetstream()
            subject = SUBJECT_PREFIX[:-1] + ".>" if self.on_heartbeats is None else "skytrace.v1.>"
            loop = asyncio.get_running_loop()
            end = loop.time() + SETUP_TIMEOUT_S
            while True:  # a cluster electing a new leader (a server just died) answers nothing for seconds
                try:
                    self._key_prefix = await ensure_stream(js, self.stream, self.replicas)
                    psub = await js.pull_subscribe(subject, durable=self.durable, stream=self.stream)
                    break
                except Exception as exc:
                    if self._stop.is_set() or loop.time() > end:
                        raise
                    log.debug("NATS stream or consumer not ready (%s); asking again", exc)
                    await asyncio.sleep(0.5)
            self.connected.set()
            while not self._stop.is_set():
                try:
                    msgs = await psub.fetch(self.fetch_batch, timeout=0.5)
                except TimeoutError:  # nats.errors.TimeoutError too: nothing new
                    continue
                except Exception as exc:  # the server restarts: the client reconnects, fetch again
                    log.debug("NATS fetch failed (%s); retrying", exc)
                    await asyncio.sleep(0.2)
                    continue
                for msg in msgs:
                    await self._handle(msg)
        finally:
            await self._close(nc)

    async def _close(self, nc) -> None:
        """Flush the acknowledgements sent so far, then close (bounded: a dead server must not hold the stop)."""
        try:
            if nc.is_connected:
                await asyncio.wait_for(nc.flush(), 2.0)
        except Exception as exc:  # unacknowledged messages are redelivered at the next start (and dedup'd)
            log.debug("NATS flush at stop failed: %s", exc)
        try:
            await asyncio.wait_for(nc.close(), 5.0)
        except Exception as exc:
            log.debug("NATS close failed: %s", exc)

    # ------------------------------------------------------------------------------------------------- messages
    async def _handle(self, msg) -> None:
        dets: list[Detection] = []
        key: tuple[str | None, int | None] = (None, None)
        try:
            meta = msg.metadata
            if meta.num_delivered and meta.num_delivered > 1:
                self.redelivered += 1
            subject = msg.subject
            if subject.startswith(HEARTBEAT_SUBJECT_PREFIX):
                key = self._heartbeat(subject[len(HEARTBEAT_SUBJECT_PREFIX):], msg.data, logged_at(msg)) or key
            elif subject.startswith(SUBJECT_PREFIX) and "." not in subject[len(SUBJECT_PREFIX):]:
                sensor = subject[len(SUBJECT_PREFIX):]
                if self.verifier is not None:  # the signature's time window: judged by when the log stored it
                    dets, batch_id = open_signed_batch(self.verifier, msg.data, self.table, self.stats, sensor, "nats",
                                                       now=logged_at(msg))
                    key = batch_id if batch_id is not None else key
                else:
                    dets = decode_detections(msg.data, self.table, self.stats, sensor, source=f"nats {subject}")
                    key = (self._key_prefix, int(meta.sequence.stream))
            else:
                with self.stats.lock:
                    self.stats.messages += 1
                    self.stats.rejected_messages += 1
                self.stats.reject(f"nats: unexpected subject {subject!r}")
        except Exception:  # a bug here must not stop the ingest
            log.exception("NATS message handling failed")
        if self.inbox is None:
            if dets:
                self.on_detections(dets)
            await msg.ack()
            return
        loop = asyncio.get_running_loop()

        def acked(_fresh: bool) -> None:  # on the inbox's writer thread, after the commit
            loop.call_soon_threadsafe(lambda: loop.create_task(self._ack(msg)))

        # fresh reports go to the pipeline only once: a redelivered batch's key is found stored and adds nothing
        def done(fresh: bool) -> None:
            if fresh and dets:
                self.on_detections(dets)
            acked(fresh)

        # in arrival order; waits (in a worker thread, keeping this loop free to send acks) while the inbox is full
        await asyncio.to_thread(self.inbox.put, key[0], key[1], dets, done, True)

    @staticmethod
    async def _ack(msg) -> None:
        try:
            await msg.ack()
        except Exception as exc:  # not acknowledged: the server redelivers it, and its stored key dedups it
            log.debug("NATS ack failed: %s", exc)

    def _heartbeat(self, sensor: str, payload: bytes, now: float | None = None) -> tuple[str, int] | None:
        from skytrace.io.heartbeat import decode_heartbeats, open_signed_heartbeat

        if self.on_heartbeats is None or "." in sensor:
            return None
        batch_id = None
        if self.verifier is not None:
            beats, batch_id = open_signed_heartbeat(self.verifier, payload, self.table, self.heartbeat_stats,
                                                    sensor, "nats", now)
        else:
            beats = decode_heartbeats(payload, self.table, self.heartbeat_stats, sensor, f"nats {sensor}")
        if beats:
            self.on_heartbeats(beats)
        return batch_id
