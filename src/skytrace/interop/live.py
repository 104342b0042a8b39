"""Live inputs of ``skytrace serve``: ASTERIX radar plots over UDP, SBS over TCP, aircraft.json over HTTP, Remote ID
over MQTT.

Each input runs in its own thread, decodes with the same decoders as ``skytrace import`` (one code path for files
and live feeds), and hands validated detections to the service (:meth:`LiveService.submit`), from where they go
through the one pipeline like every other report. Everything received is hostile until proven otherwise:

- sizes are bounded before parsing (a UDP datagram, an SBS line of ``MAX_SBS_LINE_BYTES``, an aircraft.json body of
  ``MAX_AIRCRAFT_JSON_BYTES``, an MQTT payload of ``skytrace.io.mqtt.MAX_PAYLOAD_BYTES``);
- a malformed message is counted and its reason kept (status ``inputs``), never raised: a broken feed must not stop
  the service;
- decoded detections pass the same cross-checks as MQTT and HTTP reports (:func:`skytrace.io.mqtt.check_detections`:
  known sensor, fields its kind requires); radars must be sensors of sensors.json (ASTERIX carries no position);
- cooperative transmitters (ADS-B aircraft, Remote ID drones) take spare rows of the sensor table
  (:class:`skytrace.io.identity.CooperativeSensors`): bounded, counted when full.

Servers skytrace runs (the UDP listener) bind to 127.0.0.1 unless told otherwise; clients (SBS, HTTP, MQTT)
reconnect with exponential backoff and jitter (0.5 s doubling to 30 s) after any failure.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from skytrace.batch import SensorTable
from skytrace.errors import SkytraceError
from skytrace.interop.asterix import ImportResult
from skytrace.io.identity import CooperativeSensors
from skytrace.io.mqtt import DecodeStats, check_detections
from skytrace.model import Detection

log = logging.getLogger(__name__)

MAX_SBS_LINE_BYTES = 4096  # a BaseStation line is ~150 bytes
MAX_AIRCRAFT_JSON_BYTES = 16 << 20  # readsb's aircraft.json with ~2,000 aircraft is ~1.5 MB
MAX_LINES_PER_PAYLOAD = 1000
REMOTE_ID_TOPIC_PREFIX = "skytrace/v1/remote-id/"
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0


@dataclass
class FeedStats(DecodeStats):
    """Counters of one live input: those of every ingest path, plus the connection and what was skipped on
    purpose (e.g. SBS lines without a position)."""

    connected: bool = False
    connects: int = 0
    failures: int = 0  # failed connection attempts, dropped connections, failed polls
    skipped: int = 0
    last_error: str | None = None
    cooperative_full: int = 0  # reports refused because every spare cooperative row is in use

    def as_dict(self) -> dict:
        d = super().as_dict()
        with self.lock:
            d.update(connected=self.connected, connects=self.connects, failures=self.failures,
                     skipped=self.skipped, last_error=self.last_error, cooperative_full=self.cooperative_full)
        return d


class LiveInput:
    """A feed thread: subclasses implement :meth:`_run` (loop until ``self._stop`` is set) and call
    :meth:`deliver` with what they decoded."""

    kind = "input"

    def __init__(self, table: SensorTable, on_detections: Callable[[list[Detection]], None],
                 coop: CooperativeSensors | None = None, name: str | None = None):
        self.table = table
        self.on_detections = on_detections
        self.coop = coop
        self.name = name or self.kind
        self.stats = FeedStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -------------------------------------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self._thread = threading.Thread(target=self._guarded, name=f"skytrace-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._close()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _close(self) -> None:
        return None

    def _guarded(self) -> None:
        try:
            self._run()
        except Exception:  # a bug must be visible, not a silently dead feed
            log.exception("input %s stopped on an error", self.name)
            with self.stats.lock:
                self.stats.connected = False
                self.stats.last_error = "stopped on an internal error (see the log)"

    def _run(self) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------- plumbing
    def failed(self, what: str) -> None:
        with self.stats.lock:
            self.stats.failures += 1
            self.stats.connected = False
            self.stats.last_error = what[:300]

    def bad_message(self, reason: str) -> None:
        with self.stats.lock:
            self.stats.rejected_messages += 1
        self.stats.reject(f"{self.name}: {reason[:300]}")

    def deliver(self, res: ImportResult) -> int:
        """Validated detections of ``res`` to the service; returns how many."""
        n_skip = sum(res.skipped.values())
        if n_skip:
            with self.stats.lock:
                self.stats.skipped += n_skip
        dets = res.detections
        if not dets:
            return 0
        if self.coop is not None:
            n = len(dets)
            dets = self.coop.admit(dets)
            if len(dets) < n:
                with self.stats.lock:
                    self.stats.cooperative_full += n - len(dets)
                self.stats.reject(f"{self.name}: {n - len(dets)} reports of new transmitters refused: every spare "
                                  "cooperative sensor row is in use", n - len(dets))
        good = check_detections(dets, self.table, self.stats, source=self.name)
        if good:
            self.on_detections(good)
        return len(good)

    def backoff(self, delay_s: float) -> float:
        """Wait ``delay_s`` (with +-25 % jitter, so that many clients do not reconnect in step); the next delay."""
        self._stop.wait(delay_s * random.uniform(0.75, 1.25))
        return min(delay_s * 2.0, BACKOFF_MAX_S)


# ------------------------------------------------------------------------------------------------- ASTERIX / UDP
class AsterixUdpInput(LiveInput):
    """CAT048 and CAT015 data blocks in UDP datagrams (one or more blocks per datagram, as radars send them).

    Each radar must be a ``radar`` sensor of sensors.json with the id ``cat048-<SAC>-<SIC>`` (resp.
    ``cat015-<SAC>-<SIC>``; a CAT015 source reporting WGS-84 positions: the ``position`` sensor
    ``cat015-<SAC>-<SIC>-pos``): its position turns range and azimuth into a detection. Times of day are taken on
    the UTC day nearest to the wall clock.
    """

    kind = "asterix-udp"

    def __init__(self, table: SensorTable, on_detections, host: str = "127.0.0.1", port: int = 8600,
                 clock: Callable[[], float] = time.time, **kw):
        super().__init__(table, on_detections, **kw)
        from skytrace.interop import asterix

        self.asterix = asterix
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        try:
            self.sock.bind((host, port))
        except OSError as exc:
            self.sock.close()
            raise SkytraceError(f"--asterix-udp: cannot listen on {host}:{port} ({exc.strerror})") from None
        self.sock.settimeout(0.5)
        self.address = self.sock.getsockname()
        self.cfg = asterix.RadarImportConfig(site_of=self._site_of, clock=asterix.NearestDayClock(clock))

    def _site_of(self, sensor_id: str):
        row = self.table.index.get(sensor_id)
        if row is None or self.table.records[row].kind != "radar":
            return None
        r = self.table.records[row]
        return self.asterix.RadarSite(float(r.lat), float(r.lon), float(r.alt_m or 0.0))

    def _close(self) -> None:
        self.sock.close()

    def _run(self) -> None:
        a = self.asterix
        with self.stats.lock:
            self.stats.connected = True
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                raise
            with self.stats.lock:
                self.stats.messages += 1
            src = f"datagram from {peer[0]}:{peer[1]}"
            try:
                blocks = a.split_datablocks(data, src)
                res = ImportResult()
                for cat, decode in ((48, a.decode_cat048), (15, a.decode_cat015)):
                    mine = [b for b in blocks if b[0] == cat]
                    if mine:
                        part = decode(mine, self.cfg, src)
                        res.detections += part.detections
                        res.skipped.update(part.skipped)
                other = sum(1 for b in blocks if b[0] not in (48, 15))
                if other:
                    res.skipped["data blocks of other categories"] += other
            except SkytraceError as exc:
                self.bad_message(str(exc))
                continue
            self.deliver(res)


# ------------------------------------------------------------------------------------------------- SBS / TCP
class SbsTcpInput(LiveInput):
    """A client of a BaseStation (SBS) feed, e.g. dump1090/readsb on TCP port 30003; reconnects with backoff, and
    after ``idle_timeout_s`` without a byte (a half-open connection looks alive forever)."""

    kind = "sbs"

    def __init__(self, table: SensorTable, on_detections, host: str = "127.0.0.1", port: int = 30003,
                 idle_timeout_s: float = 60.0, **kw):
        super().__init__(table, on_detections, **kw)
        self.host, self.port, self.idle_timeout_s = host, port, idle_timeout_s
        self._sock: socket.socket | None = None

    def _close(self) -> None:
        s = self._sock
        if s is not None:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def _run(self) -> None:
        delay = BACKOFF_MIN_S
        while not self._stop.is_set():
            try:
                sock = socket.create_connection((self.host, self.port), timeout=5.0)
            except OSError as exc:
                self.failed(f"connect to {self.host}:{self.port}: {exc}")
                delay = self.backoff(delay)
                continue
            self._sock = sock
            t_connected = time.monotonic()
            with self.stats.lock:
                self.stats.connected = True
                self.stats.connects += 1
            log.info("SBS feed %s:%s connected", self.host, self.port)
            try:
                self._read(sock)
                if not self._stop.is_set():
                    self.failed(f"{self.host}:{self.port} closed the connection")
            except OSError as exc:
                if not self._stop.is_set():
                    self.failed(f"{self.host}:{self.port}: {exc}")
            finally:
                self._sock = None
                sock.close()
                with self.stats.lock:
                    self.stats.connected = False
            if self._stop.is_set():
                return
            if time.monotonic() - t_connected > 10.0:  # it worked for a while: come back quickly
                delay = BACKOFF_MIN_S
            delay = self.backoff(delay)

    def _read(self, sock: socket.socket) -> None:
        from skytrace.interop.adsb import sbs_line

        sock.settimeout(0.5)
        buf = b""
        discarding = False  # inside an over-long line: drop bytes up to its end
        idle = 0.0
        while not self._stop.is_set():
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                idle += 0.5
                if idle >= self.idle_timeout_s:
                    raise OSError(f"no data for {self.idle_timeout_s:.0f} s") from None
                continue
            if not chunk:
                return
            idle = 0.0
            buf += chunk
            *lines, buf = buf.split(b"\n")
            if len(buf) > MAX_SBS_LINE_BYTES:
                if not discarding:
                    with self.stats.lock:
                        self.stats.messages += 1
                    self.bad_message(f"line over {MAX_SBS_LINE_BYTES} bytes")
                buf, discarding = b"", True
            res = ImportResult()
            for raw in lines:
                if discarding:  # the tail of the over-long line
                    discarding = False
                    continue
                line = raw.decode("utf-8", "replace").strip()
                if not line:
                    continue
                with self.stats.lock:
                    self.stats.messages += 1
                if len(raw) > MAX_SBS_LINE_BYTES:
                    self.bad_message(f"line over {MAX_SBS_LINE_BYTES} bytes")
                    continue
                try:
                    sbs_line(res, line)
                except (ValueError, IndexError) as exc:
                    self.bad_message(f"bad SBS line: {exc}")
            self.deliver(res)


# ------------------------------------------------------------------------------------------- aircraft.json / HTTP
class AircraftJsonPoller(LiveInput):
    """Polls readsb/dump1090 ``aircraft.json`` over HTTP every ``interval_s``; a position is taken once (the same
    ``now - seen_pos`` in later polls is skipped)."""

    kind = "aircraft-json"

    def __init__(self, table: SensorTable, on_detections, url: str, interval_s: float = 1.0,
                 timeout_s: float = 5.0, **kw):
        super().__init__(table, on_detections, **kw)
        if not url.startswith(("http://", "https://")):
            raise SkytraceError(f"--aircraft-json {url!r}: expected an http:// or https:// URL")
        if not 0.1 <= interval_s <= 600:
            raise SkytraceError(f"aircraft.json poll interval {interval_s} s is outside [0.1, 600]")
        self.url, self.interval_s, self.timeout_s = url, interval_s, timeout_s
        self.last_t: dict[str, float] = {}
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy

    def _fetch(self) -> bytes:
        req = urllib.request.Request(self.url, headers={"User-Agent": "skytrace", "Accept": "application/json"})
        with self._opener.open(req, timeout=self.timeout_s) as resp:
            if resp.status != 200:
                raise OSError(f"HTTP {resp.status}")
            body = resp.read(MAX_AIRCRAFT_JSON_BYTES + 1)
        if len(body) > MAX_AIRCRAFT_JSON_BYTES:
            raise ValueError(f"body over {MAX_AIRCRAFT_JSON_BYTES} bytes")
        return body

    def _run(self) -> None:
        from skytrace.errors import FormatError
        from skytrace.interop.adsb import _no_constant, aircraft_poll

        delay = BACKOFF_MIN_S
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                body = self._fetch()
            except (OSError, urllib.error.URLError) as exc:
                self.failed(f"GET {self.url}: {exc}")
                delay = self.backoff(delay)
                continue
            except ValueError as exc:
                with self.stats.lock:
                    self.stats.messages += 1
                self.bad_message(f"GET {self.url}: {exc}")
                delay = self.backoff(delay)
                continue
            delay = BACKOFF_MIN_S
            with self.stats.lock:
                self.stats.messages += 1
                if not self.stats.connected:
                    self.stats.connects += 1
                self.stats.connected = True
            res = ImportResult()
            try:
                doc = json.loads(body.decode("utf-8", "replace"), parse_constant=_no_constant)
                aircraft_poll(res, doc, self.last_t, on_error="skip")
            except (ValueError, RecursionError, FormatError) as exc:
                self.bad_message(f"bad aircraft.json: {getattr(exc, 'message', exc)}")
                res = ImportResult()
            if res.skipped.get("bad aircraft entries"):
                self.stats.reject(f"{self.name}: {res.skipped['bad aircraft entries']} bad aircraft entries",
                                  res.skipped.pop("bad aircraft entries"))
            self.deliver(res)
            if len(self.last_t) > 50_000:  # forget aircraft not heard for an hour
                newest = max(self.last_t.values())
                self.last_t = {a: t for a, t in self.last_t.items() if t > newest - 3600.0}
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - t0)))


# ------------------------------------------------------------------------------------------------ Remote ID / MQTT
class RemoteIdMqttInput(LiveInput):
    """Remote ID frames forwarded by receivers over MQTT, topic ``skytrace/v1/remote-id/<receiver id>``.

    Payload: text lines in the capture format of ``skytrace import --format remote-id`` (``[T [SOURCE]] HEX``, at
    most ``MAX_LINES_PER_PAYLOAD``), or one binary frame (a 25-byte message or a Message Pack): a payload with a
    byte below 0x09 or above 0x7E is binary (real frames always hold such bytes: padding, small enums). A frame
    without a receive time is timed by its arrival; without a source key it is keyed by the receiver id.
    """

    kind = "remote-id"

    def __init__(self, table: SensorTable, on_detections, host: str = "127.0.0.1", port: int = 1883,
                 username: str | None = None, password: str | None = None, client_id: str = "skytrace-remote-id",
                 clock: Callable[[], float] = time.time, **kw):
        super().__init__(table, on_detections, **kw)
        import paho.mqtt.client as mqtt

        from skytrace.interop.remote_id import RemoteIdDecoder

        self.host, self.port, self.clock = host, port, clock
        self.decoder = RemoteIdDecoder()
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        if username:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(int(BACKOFF_MIN_S) or 1, int(BACKOFF_MAX_S))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.subscribed = threading.Event()

    def start(self, timeout_s: float = 10.0) -> None:
        try:
            self.client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise SkytraceError(f"--remote-id-mqtt: cannot connect to the MQTT broker at {self.host}:{self.port}: "
                                f"{exc}") from None
        self.client.loop_start()
        if not self.subscribed.wait(timeout_s):
            self.stop()
            raise SkytraceError(f"--remote-id-mqtt: the broker at {self.host}:{self.port} did not accept the "
                                "subscription")

    def stop(self, timeout_s: float = 10.0) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.failed(f"MQTT connect refused: {reason_code}")
            return
        client.subscribe(REMOTE_ID_TOPIC_PREFIX + "+", qos=0)  # broadcasts repeat every second: no redelivery
        with self.stats.lock:
            self.stats.connected = True
            self.stats.connects += 1
        self.subscribed.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.failed(f"MQTT disconnected: {reason_code}")

    def _on_message(self, client, userdata, msg) -> None:
        try:
            self.handle(msg.topic, msg.payload)
        except Exception:  # never kill paho's network thread
            log.exception("Remote ID message handling failed")

    def handle(self, topic: str, payload: bytes) -> int:
        """Decode one MQTT message (see the class docstring); returns the detections delivered."""
        from skytrace.interop.remote_id import RemoteIdError
        from skytrace.io.mqtt import MAX_PAYLOAD_BYTES

        with self.stats.lock:
            self.stats.messages += 1
        receiver = topic[len(REMOTE_ID_TOPIC_PREFIX):] if topic.startswith(REMOTE_ID_TOPIC_PREFIX) else ""
        if not receiver or "/" in receiver or len(receiver) > 64:
            self.bad_message(f"unexpected topic {topic[:80]!r}")
            return 0
        if len(payload) > MAX_PAYLOAD_BYTES:
            self.bad_message(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
            return 0
        now = self.clock()
        res = ImportResult()
        binary = any(b < 0x09 or b > 0x7E for b in payload)
        with self._lock:  # the decoder's per-source state
            if binary:
                try:
                    self.decoder.feed(res, now, f"rx:{receiver}", payload)
                except (RemoteIdError, ValueError) as exc:
                    self.bad_message(f"receiver {receiver}: {exc}")
                    return 0
            else:
                lines = payload.decode("ascii").splitlines()
                if len(lines) > MAX_LINES_PER_PAYLOAD:
                    self.bad_message(f"{len(lines)} lines in one payload (max {MAX_LINES_PER_PAYLOAD})")
                    return 0
                for line in lines:
                    try:
                        self.decoder.feed_line(res, line, default_t=now, default_source=f"rx:{receiver}")
                    except (RemoteIdError, ValueError) as exc:
                        self.bad_message(f"receiver {receiver}: {exc}")
        return self.deliver(res)


def asterix_radars(table: SensorTable) -> list[str]:
    """Radars of sensors.json an ASTERIX feed can reference (``cat048-<SAC>-<SIC>``, ``cat015-...``)."""
    return [s.id for s in table.records if s.kind == "radar" and s.id.startswith(("cat048-", "cat015-"))]
