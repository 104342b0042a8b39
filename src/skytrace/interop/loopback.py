"""Loopback check of the live outputs: stream track points through the CoT (TCP) and CAT062 (UDP) sinks to
listeners on 127.0.0.1, decode what arrived and compare it with what was sent. Used by the tests and by
``bench/bench_interop.py``; also a quick way to check an installation's output path."""

from __future__ import annotations

import math
import socket
import threading
import time
from collections import defaultdict


class TcpListener:
    """Accepts connections on 127.0.0.1 and collects every byte received (a stand-in TAK server TCP input)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.data = bytearray()
        self.connections = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        with conn:
            while chunk := conn.recv(65536):
                with self._lock:
                    self.data.extend(chunk)

    def received(self) -> bytes:
        with self._lock:
            return bytes(self.data)

    def close(self) -> None:
        self.sock.close()


class UdpListener:
    """Collects datagrams on 127.0.0.1."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.datagrams: list[bytes] = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                d, _ = self.sock.recvfrom(65535)
            except OSError:
                return
            self.datagrams.append(d)

    def close(self) -> None:
        self.sock.close()


def wait_for_delivery(tcp: TcpListener, n_events: int, udp: UdpListener, n_datagrams: int,
                      timeout_s: float = 60.0) -> None:
    """Wait (on conditions, not a fixed time) until the TCP listener holds ``n_events`` CoT events and the UDP
    listener ``n_datagrams`` datagrams, or ``timeout_s`` passes (then the caller's counts show what is missing)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and (tcp.received().count(b"</event>") < n_events
                                           or len(udp.datagrams) < n_datagrams):
        time.sleep(0.05)


def horizontal_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Local flat-Earth distance (m); exact enough for the sub-metre differences compared here."""
    return math.hypot((lat1 - lat2) * 111_320.0, (lon1 - lon2) * 111_320.0 * math.cos(math.radians(lat1)))


def stream_and_decode(points: list, timeout_s: float = 300.0) -> dict:
    """Replay track points (TrackPoint) step by step through CotSink and Cat062UdpSink on loopback; decode and
    match every received event/record to the point it came from; return counts and the largest errors (m)."""
    from skytrace.batch import TrackSnapshot
    from skytrace.interop import asterix, cot
    from skytrace.pipeline import StepResult

    by_t = defaultdict(list)
    for p in points:
        by_t[p.t].append(p)
    tcp, udp = TcpListener(), UdpListener()
    cot_sink = cot.CotSink(cot.CotSinkConfig(url=f"tcp://127.0.0.1:{tcp.port}", max_queue=1_000_000))
    cat_sink = asterix.Cat062UdpSink(asterix.Cat062SinkConfig(port=udp.port, max_queue=1_000_000))
    t0 = time.perf_counter()
    for t in sorted(by_t):
        res = StepResult(t, TrackSnapshot.from_records(t, by_t[t]))
        cot_sink.on_step(res)
        cat_sink.on_step(res)
    t_submit = time.perf_counter() - t0
    cot_sink.close(timeout_s)
    cat_sink.close(timeout_s)
    t_sent = time.perf_counter() - t0
    wait_for_delivery(tcp, len(points), udp, cat_sink.stats["sent"])
    tcp.close()
    udp.close()
    want = {(p.track, round(p.t, 3)): p for p in points}
    tod_to_t = {round((t % 86400.0) * 128): t for t in by_t}  # I062/070 counts 1/128 s
    cot_err, cat_err, alt_err = [0.0], [0.0], [0.0]
    events = cot.parse_events(tcp.received())
    for e in events:
        p = want[(e["uid"].removeprefix("skytrace."), round(e["time"], 3))]
        cot_err.append(horizontal_m(e["lat"], e["lon"], p.lat, p.lon))
    number_to_track = {n: tid for tid, n in cat_sink.numbers.by_id.items()}
    n_cat = 0
    for dgram in udp.datagrams:
        for d in asterix.decode_cat062(dgram):
            t = tod_to_t.get(round(d["tod_s"] * 128))
            p = want.get((number_to_track[d["track_number"]], round(t, 3))) if t is not None else None
            if p is None:
                continue
            cat_err.append(horizontal_m(d["lat"], d["lon"], p.lat, p.lon))
            alt_err.append(abs(d["alt_m"] - p.alt_m))
            n_cat += 1
    return {"points": len(points), "steps": len(by_t), "cot_events": len(events), "cat062_records": n_cat,
            "cat062_datagrams": len(udp.datagrams), "cot_max_m": max(cot_err), "cat062_max_m": max(cat_err),
            "cat062_max_alt_m": max(alt_err), "submit_s": t_submit, "sent_s": t_sent,
            "cot_stats": dict(cot_sink.stats), "cat062_stats": dict(cat_sink.stats)}
