"""Shared helpers of the interop tests: loopback listeners and track fixtures."""

from __future__ import annotations

import socket
import threading

from skytrace.model import TrackPoint


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
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

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
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                d, _ = self.sock.recvfrom(65535)
            except OSError:
                return
            self.datagrams.append(d)

    def close(self) -> None:
        self.sock.close()


def sample_tracks(t0: float = 1_790_000_000.0) -> list[TrackPoint]:
    """Three tracks over Kyiv oblast: unknown, classified hostile (coasting at the end), manned (ADS-B)."""
    pts = []
    for k in range(10):
        t = t0 + 2.0 * k
        pts.append(TrackPoint(t=t, track="T000001", status="confirmed", lat=50.40 + 0.0005 * k, lon=30.60,
                              alt_m=300.0, ve=0.0, vn=45.0, vu=0.0, pos_sigma_m=120.0))
        pts.append(TrackPoint(t=t, track="T000002", status="coasting" if k > 7 else "confirmed", lat=50.10,
                              lon=30.90 - 0.0007 * k, alt_m=900.0, ve=-50.0, vn=0.0, vu=-1.0, pos_sigma_m=300.0,
                              cls="shahed", covariance=[float(i == j) * 400.0 for i in range(6) for j in range(6)]))
        pts.append(TrackPoint(t=t, track="T000003", status="confirmed", lat=50.30, lon=30.20 + 0.001 * k,
                              alt_m=1500.0, ve=70.0, vn=0.0, vu=0.0, pos_sigma_m=20.0, cls="manned",
                              target_id="icao:508035"))
    return pts
