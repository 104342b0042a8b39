"""Kill -9 harness: the real ``skytrace serve`` as a subprocess, signed reports streamed in, SIGKILL mid-stream.

Used by ``tests/test_durability.py`` (small runs in CI) and ``bench/bench_durability.py`` (longer runs with
figures). Every report carries a unique bearing so each stored row can be traced back to the batch it came in.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from skytrace.model import Detection
from skytrace.security.fuzzing import SENSORS_SEED, ZONES_SEED
from skytrace.security.keys import KeyRegistry, generate_private_key, load_private_key
from skytrace.security.signing import Signer

SENSOR = "ac-1"
PER_BATCH = 5  # detections per signed batch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return bool(cond())


@dataclass
class Site:
    """A service directory (sensors, zones, key registry, configuration) and the node's signer."""

    root: Path
    signer: Signer
    config: Path

    @classmethod
    def create(cls, root: Path) -> Site:
        root.mkdir(parents=True, exist_ok=True)
        (root / "sensors.json").write_bytes(SENSORS_SEED)
        (root / "zones.geojson").write_bytes(ZONES_SEED)
        reg = KeyRegistry(path=root / "keys.json")
        reg.register(SENSOR, generate_private_key(root / f"{SENSOR}.key"))
        reg.save()
        config = root / "skytrace.toml"
        # a long send window: a batch resent after a slow restart on a loaded machine is still in time
        config.write_text(f'[service]\nkeys = "{root / "keys.json"}"\nsigned_max_age_s = 3600.0\n')
        return cls(root, Signer(SENSOR, load_private_key(root / f"{SENSOR}.key"), seq0=1_000), config)

    def batch(self, k: int) -> tuple[int, bytes]:
        """Batch number ``k``: (seq, signed bytes); bearings k*PER_BATCH + i (mod 360 with a fraction: unique)."""
        now = time.time()
        dets = [Detection(t=now, sensor=SENSOR, bearing_deg=round((k * PER_BATCH + i) * 1e-3, 3))
                for i in range(PER_BATCH)]
        seq = 1_000 + k
        return seq, self.signer.sign(dets, seq=seq)


class Service:
    """``skytrace serve`` in a subprocess on a free port (stdout/stderr to files in the site directory)."""

    def __init__(self, site: Site, db: str, mqtt_port: int | None = None, port: int | None = None,
                 nats_url: str | None = None, nats_replicas: int = 1):
        self.site, self.db, self.mqtt_port, self.nats_url = site, db, mqtt_port, nats_url
        self.nats_replicas = nats_replicas
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.runs = 0

    def start(self, timeout_s: float = 240.0) -> None:
        self.runs += 1
        cmd = [sys.executable, "-c", "from skytrace.cli import main; main()", "serve", str(self.site.root),
               "--port", str(self.port), "--db", self.db, "--zones", str(self.site.root / "zones.geojson")]
        if self.mqtt_port:  # its own persistent session on the shared test broker
            cmd += ["--mqtt", f"127.0.0.1:{self.mqtt_port}", "--mqtt-client-id", f"svc-{self.site.root.parent.name}"]
        if self.nats_url:
            cmd += ["--nats", self.nats_url, "--nats-replicas", str(self.nats_replicas)]
        env = {**os.environ, "SKYTRACE_CONFIG": str(self.site.config)}
        out = open(self.site.root / f"serve-{self.runs}.out", "w")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, text=True)
        out.close()
        if not wait_for(lambda: self.listening() or self.proc.poll() is not None, timeout_s) or \
                self.proc.poll() is not None:
            raise RuntimeError(f"serve did not start: {self.log()[-2000:]}")

    def log(self) -> str:
        return (self.site.root / f"serve-{self.runs}.out").read_text()

    def listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.5).close()
            return True
        except OSError:
            return False

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> str:
        """SIGINT (a clean stop), then the log."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.log()

    def status(self) -> dict:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/api/v1/status")
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()


def post(port: int, body: bytes, timeout_s: float = 30.0) -> int | None:
    """POST a signed batch; the HTTP status, or None when the connection failed (the service died)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        conn.request("POST", "/api/v1/detections", body, {"Content-Type": "application/json"})
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


@dataclass
class HttpStream:
    """A node posting batches 0, 1, 2, ... in a thread, as a node with a send queue does: a batch that gets no
    answer (connection refused or cut: the service died) or a 503 is sent again, in order, until it is answered.

    ``acked``: answered 202. ``refused_on_retry``: answered 422 ``replayed`` on a retry, i.e. the dead service had
    stored it but died before answering. ``unacked``: not answered when the stream was stopped.
    """

    site: Site
    port: int
    acked: dict[int, bytes] = field(default_factory=dict)
    refused_on_retry: dict[int, bytes] = field(default_factory=dict)
    refused: dict[int, bytes] = field(default_factory=dict)  # 422 on the first try (must stay empty)
    unacked: dict[int, bytes] = field(default_factory=dict)
    failures: int = 0  # attempts without an answer or with a 503
    stop_flag: threading.Event = field(default_factory=threading.Event)
    k: int = 0

    def run(self) -> None:
        while not self.stop_flag.is_set():
            seq, body = self.site.batch(self.k)
            self.k += 1
            retried = False
            while True:
                code = post(self.port, body)
                if code == 202:
                    self.acked[seq] = body
                    break
                if code == 422:
                    (self.refused_on_retry if retried else self.refused)[seq] = body
                    break
                self.failures += 1
                retried = True
                if self.stop_flag.is_set():
                    self.unacked[seq] = body
                    return
                time.sleep(0.05)

    def start(self) -> threading.Thread:
        th = threading.Thread(target=self.run, daemon=True)
        th.start()
        return th

    def sent(self) -> list[int]:
        """Every batch the service answered 202 or 422-on-retry: each must be stored exactly once."""
        return sorted(set(self.acked) | set(self.refused_on_retry))


def stored_bearings(db: str) -> list[float]:
    """Every stored detection's bearing (to count each report's copies)."""
    from skytrace.store import open_store

    store = open_store(db)
    try:
        return [d.bearing_deg for d in store.detections(0, 1e12, limit=200_000)]
    finally:
        store.close()


def bearings_of(seq: int) -> list[float]:
    k = seq - 1_000
    return [round((k * PER_BATCH + i) * 1e-3, 3) for i in range(PER_BATCH)]


class KillableServer:
    """A server process on 127.0.0.1:``port`` that a test kills -9 and restarts on the same state (``command``)."""

    name = "server"

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.kills = 0

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout_s: float = 30.0) -> None:
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up() -> bool:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return True
            except OSError:
                return False

        if not wait_for(up, timeout_s):
            raise RuntimeError(f"{self.name} did not start")

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self.kills += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class NatsServer(KillableServer):
    """A private ``nats-server`` with JetStream (file storage under ``root``) on 127.0.0.1; survives a kill -9 and
    restarts on the same store, as a JetStream node does."""

    name = "nats-server"

    def __init__(self, root: Path, port: int | None = None, name: str = "n0", cluster_port: int | None = None,
                 routes: tuple[int, ...] = ()):
        super().__init__(port)
        self.exe = shutil.which("nats-server") or "/usr/sbin/nats-server"
        if not Path(self.exe).exists():
            raise RuntimeError("no nats-server: apt-get install nats-server")
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.conf: Path | None = None
        if cluster_port is not None:  # one server of a JetStream cluster (routes: the others' cluster ports)
            self.conf = root / "nats.conf"
            route_list = ", ".join(f"nats-route://127.0.0.1:{p}" for p in routes)
            self.conf.write_text(f'server_name: {name}\nlisten: "127.0.0.1:{self.port}"\n'
                                 f'jetstream {{ store_dir: "{root / "store"}" }}\n'
                                 f'cluster {{ name: skytrace, listen: "127.0.0.1:{cluster_port}",\n'
                                 f'  routes: [{route_list}] }}\n')

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        if self.conf is not None:
            return [self.exe, "-c", str(self.conf)]
        return [self.exe, "-js", "-sd", str(self.root), "-a", "127.0.0.1", "-p", str(self.port)]


class NatsCluster:
    """``n`` nats-servers forming one JetStream cluster on 127.0.0.1 (a stream with 3 replicas lives on while one
    of them is down). ``url``: every server, comma-separated (``serve --nats`` takes that)."""

    def __init__(self, root: Path, n: int = 3):
        ports, cports = [free_port() for _ in range(n)], [free_port() for _ in range(n)]
        self.nodes = [NatsServer(root / f"n{i}", ports[i], f"n{i}", cports[i],
                                 tuple(p for j, p in enumerate(cports) if j != i)) for i in range(n)]
        self.url = ",".join(node.url for node in self.nodes)

    @property
    def kills(self) -> int:
        return sum(node.kills for node in self.nodes)

    def start(self) -> None:
        for node in self.nodes:
            node.start()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


async def js_publish(url: str, items, kill_at: dict | None = None, deadline_s: float = 120.0,
                     rate_per_s: float | None = None, replicas: int = 1, stall: list | None = None) -> int:
    """Publish ``items`` ((subject, msg id, payload), in order) to JetStream, each retried until the server
    acknowledged it (stored in the stream; the same ``Nats-Msg-Id`` makes a retry of a stored one a no-op).
    ``kill_at``: {index: callable} run before publishing that item (kill -9 and restart a server). Returns the
    number of retries. ``rate_per_s``: pace the items (the service then consumes while the server dies).
    ``url``: one server or a cluster's, comma-separated; ``replicas``: of the stream if this creates it.
    ``stall``: receives the longest time (s) between two acknowledgements."""
    import asyncio

    import nats

    async def quiet(_exc: Exception) -> None:  # the server's kills are expected: the retries count them
        return None

    retries = 0
    from skytrace.io.jetstream import ensure_stream, server_list

    nc = await nats.connect(server_list(url), max_reconnect_attempts=-1, reconnect_time_wait=0.2, connect_timeout=5,
                            error_cb=quiet)
    js = nc.jetstream()
    await ensure_stream(js, replicas=replicas)  # a publisher that comes first creates the stream as the service would
    t_ack = time.monotonic()
    longest = 0.0
    end = time.monotonic() + deadline_s
    try:
        t_start = time.monotonic()
        for i, (subject, msg_id, payload) in enumerate(items):
            if rate_per_s and (ahead := t_start + i / rate_per_s - time.monotonic()) > 0:
                await asyncio.sleep(ahead)
            if kill_at and i in kill_at:
                await asyncio.to_thread(kill_at[i])
            while True:
                try:
                    await js.publish(subject, payload, headers={"Nats-Msg-Id": msg_id}, timeout=2.0)
                    now = time.monotonic()
                    longest, t_ack = max(longest, now - t_ack), now
                    break
                except Exception:
                    retries += 1
                    if time.monotonic() > end:
                        raise
                    await asyncio.sleep(0.1)
    finally:
        await nc.close()
    if stall is not None:
        stall.append(longest)
    return retries
