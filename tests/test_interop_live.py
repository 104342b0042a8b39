"""Live inputs of ``skytrace serve`` over real loopback sockets: ASTERIX over UDP, SBS over TCP (with reconnects),
aircraft.json over HTTP, Remote ID over MQTT (the real Mosquitto broker); hostile input counted, never raised."""

from __future__ import annotations

import contextlib
import http.server
import json
import math
import socket
import threading
import time

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interop_fixtures import cat048_blocks
from skytrace import geo
from skytrace.batch import SensorTable
from skytrace.errors import SkytraceError
from skytrace.interop import live, remote_id
from skytrace.interop.adsb import write_sbs_position
from skytrace.io.identity import CooperativeSensors, IdentityMap, reserve_slots
from skytrace.model import Sensor

SITE = (50.45, 30.52, 180.0)


def wait_for(cond, timeout_s: float = 60.0, what: str = "condition") -> None:
    """Poll ``cond`` until true (never a fixed sleep: the machine may be loaded)."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Collector:
    def __init__(self) -> None:
        self.dets: list = []
        self.lock = threading.Lock()

    def __call__(self, dets) -> None:
        with self.lock:
            self.dets.extend(dets)

    def __len__(self) -> int:
        with self.lock:
            return len(self.dets)


def _table(n_slots: int = 8) -> SensorTable:
    radar = Sensor(id="cat048-7-9", kind="radar", lat=SITE[0], lon=SITE[1], alt_m=SITE[2], bearing_sigma_deg=0.15,
                   range_sigma_m=60.0, elevation_sigma_deg=1.0)
    node = Sensor(id="node-1", kind="acoustic", lat=50.5, lon=30.5, alt_m=150.0, bearing_sigma_deg=3.0)
    return SensorTable.from_sensors([radar, node, *reserve_slots(n_slots)])


# ------------------------------------------------------------------------------------------------------ ASTERIX UDP
def test_asterix_udp_input_decodes_plots_of_known_radars_and_counts_garbage():
    table = _table()
    got = Collector()
    inp = live.AsterixUdpInput(table, got, "127.0.0.1", 0)
    inp.start()
    try:
        rng = np.random.default_rng(5)
        now = time.time()
        tod = now % 86400.0
        lat = SITE[0] + rng.uniform(-0.3, 0.3, 10)
        lon = SITE[1] + rng.uniform(-0.4, 0.4, 10)
        alt = rng.uniform(300.0, 2000.0, 10)
        az, _el, rng_m = geo.aer(SITE[0], SITE[1], SITE[2], lat, lon, alt)
        plots = [{"tod": tod, "range_m": float(r), "az": float(a), "h_ft": float(h) / 0.3048}
                 for r, a, h in zip(rng_m, az, alt, strict=True)]
        blocks = cat048_blocks(plots)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx.sendto(b"".join(blocks[:5]), inp.address)  # several data blocks in one datagram
        for b in blocks[5:]:
            tx.sendto(b, inp.address)
        tx.sendto(b"\x30\x00\x40garbage", inp.address)  # declares 64 bytes, has 10
        tx.sendto(cat048_blocks([{"tod": tod, "range_m": 9000.0, "az": 10.0, "h_ft": 1000.0}], sac=1, sic=1)[0],
                  inp.address)  # a radar that is not in sensors.json
        tx.sendto(bytes(rng.integers(0, 256, 200, dtype=np.uint8)), inp.address)
        tx.close()
        wait_for(lambda: inp.stats.messages >= 9, what="9 datagrams")
        wait_for(lambda: len(got) == 10, what="10 plots")
    finally:
        inp.stop()
    dets = sorted(got.dets, key=lambda d: d.bearing_deg)
    assert all(d.sensor == "cat048-7-9" for d in dets)
    np.testing.assert_allclose([d.bearing_deg for d in dets], np.sort(az), atol=0.01)
    assert all(abs(d.t - now) < 1.0 for d in dets)  # the time of day on today's date
    s = inp.stats.as_dict()
    assert s["accepted"] == 10 and s["rejected_messages"] >= 2
    assert any("not a radar of sensors.json" in r for r in s["recent_reasons"])
    assert any("truncated" in r for r in s["recent_reasons"])


def test_asterix_udp_refuses_a_taken_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        with pytest.raises(SkytraceError, match="cannot listen"):
            live.AsterixUdpInput(_table(), Collector(), "127.0.0.1", s.getsockname()[1])


def test_nearest_day_clock_keeps_reports_across_midnight():
    from skytrace.interop.asterix import NearestDayClock

    midnight = 1_790_000_000 - 1_790_000_000 % 86400
    clock = NearestDayClock(lambda: midnight + 5.0)  # received just after midnight
    assert clock(86395.0) == midnight - 5.0  # sent just before: yesterday
    assert clock(3.0) == midnight + 3.0


# ------------------------------------------------------------------------------------------------------ SBS over TCP
class SbsServer:
    """A BaseStation feed on 127.0.0.1: each connection gets the next list of byte chunks, then is closed (the
    last one stays open)."""

    def __init__(self, sessions: list[list[bytes]]):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.sessions = list(sessions)
        self.accepted = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            chunks = self.sessions.pop(0) if self.sessions else []
            with conn:
                for c in chunks:
                    conn.sendall(c)
                if not self.sessions:
                    while conn.recv(1024):  # the last session stays open until the client leaves
                        pass

    def close(self) -> None:
        self.sock.close()


def _flight(addr: str, n: int, t0: float, lat0: float = 50.40, lon0: float = 30.30, vn_mps: float = 100.0):
    return [(t0 + k, lat0 + vn_mps * k / 111_320.0, lon0) for k in range(n)]


def test_sbs_client_reads_lines_reconnects_and_counts_bad_lines():
    t0 = math.floor(time.time()) - 20.0
    pts = _flight("4b43ac", 20, t0)
    lines = [write_sbs_position("4b43ac", t, la, lo, 3000.0) + "\r\n" for t, la, lo in pts]
    first = "".join(lines[:10]).encode()
    second = "".join(lines[10:]).encode()
    sessions = [
        [first[:37], first[37:],
         b"MSG,1,1,1,4B43AC,1,2026/03/14,10:00:00.000,2026/03/14,10:00:00.000,AFL123,,,,,,,,,,,\r\n",
         b"NOPE,1,2\r\n", b"MSG,3,1,1,4B43AC,1,2026/13/99,99:00:00.000,,,,3000,,,50.1,30.1,,,,,,\r\n",
         b"X" * (live.MAX_SBS_LINE_BYTES + 10) + b"\r\n"],  # then the server closes: the client reconnects
        [second],
        [],
    ]
    server = SbsServer(sessions)
    table = _table()
    coop = CooperativeSensors(table, IdentityMap())
    got = Collector()
    inp = live.SbsTcpInput(table, got, "127.0.0.1", server.port, coop=coop)
    inp.start()
    try:
        wait_for(lambda: len(got) == 20, what="20 SBS positions over two connections")
        wait_for(lambda: inp.stats.connects >= 2, what="a reconnect")
    finally:
        inp.stop()
        server.close()
    assert [d.t for d in got.dets] == [p[0] for p in pts]
    assert {d.sensor for d in got.dets} == {"adsb:4b43ac"} and got.dets[0].target_id == "icao:4b43ac"
    assert got.dets[0].cls == "manned"
    assert "adsb:4b43ac" in table.index and table.records[table.index["adsb:4b43ac"]].trusted
    assert coop.identities.by_sensor["adsb:4b43ac"].cls == "manned"
    s = inp.stats.as_dict()
    assert s["skipped"] == 1  # MSG,1 carries no position: skipped on purpose, counted
    assert s["rejected_messages"] == 3  # unknown type, bad date, over-long line
    assert s["failures"] >= 1  # the server closed the first connection


def test_sbs_client_backs_off_while_nobody_listens():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    inp = live.SbsTcpInput(_table(), Collector(), "127.0.0.1", port, coop=CooperativeSensors(_table()))
    inp.start()
    try:
        wait_for(lambda: inp.stats.failures >= 3, what="three failed connection attempts")
    finally:
        inp.stop()
    s = inp.stats.as_dict()
    assert s["connected"] is False and "connect to" in s["last_error"] and s["failures"] < 10  # backing off


def test_cooperative_rows_are_bounded_and_reused_after_silence():
    table = _table(n_slots=2)
    clock = [0.0]
    coop = CooperativeSensors(table, IdentityMap(), idle_s=100.0, clock=lambda: clock[0])
    from skytrace.model import Detection

    def det(addr):
        return Detection(t=1.7e9, sensor=f"adsb:{addr}", lat=50.0, lon=30.0, pos_sigma_m=30.0, cls="manned",
                         target_id=f"icao:{addr}")

    assert len(coop.admit([det("000001"), det("000002")])) == 2
    assert coop.admit([det("000003")]) == [] and coop.full == 1  # every row in use: refused, counted
    clock[0] = 50.0
    assert len(coop.admit([det("000002")])) == 1  # still heard
    clock[0] = 120.0
    assert len(coop.admit([det("000003")])) == 1  # 000001 silent for 120 s > 100 s: its row is reused
    assert "adsb:000001" not in table.index and "adsb:000001" not in coop.identities.by_sensor
    assert table.ids.count("adsb:000003") == 1 and len(table) == 4


# ------------------------------------------------------------------------------------------------- aircraft.json
class JsonServer:
    """Serves the next body of ``bodies`` at every GET (the last one repeats) on 127.0.0.1."""

    def __init__(self, bodies: list[bytes]):
        outer = self
        self.bodies = list(bodies)
        self.gets = 0

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.gets += 1
                body = outer.bodies.pop(0) if len(outer.bodies) > 1 else outer.bodies[0]
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                return None

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/data/aircraft.json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_aircraft_json_poller_takes_each_position_once_and_survives_bad_bodies():
    now = time.time()

    def poll(t, seen_pos, lat):
        return json.dumps({"now": t, "aircraft": [
            {"hex": "508035", "lat": lat, "lon": 30.3, "alt_geom": 9000, "seen_pos": seen_pos, "nac_p": 9},
            {"hex": "~2a0001", "flight": "NOPOS"},  # no position: skipped, counted
        ]}).encode()

    bodies = [poll(now - 3, 0.0, 50.40), poll(now - 2, 1.0, 50.40),  # the same position again: taken once
              b"{not json", json.dumps({"now": "x", "aircraft": []}).encode(), b"[" * 100_000,
              poll(now - 1, 0.0, 50.41), json.dumps({"now": now, "aircraft": [{"hex": "zz", "lat": 1, "lon": 2}]
                                                     }).encode()]
    server = JsonServer(bodies)
    table = _table()
    got = Collector()
    inp = live.AircraftJsonPoller(table, got, server.url, interval_s=0.1, coop=CooperativeSensors(table))
    inp.start()
    try:
        wait_for(lambda: server.gets >= 8, what="8 polls")
    finally:
        inp.stop()
        server.close()
    assert [round(d.lat, 2) for d in got.dets] == [50.40, 50.41]
    assert got.dets[0].alt_sigma_m == 30.0 and got.dets[0].target_id == "icao:508035"
    s = inp.stats.as_dict()
    assert s["rejected_messages"] >= 3 and s["rejected_detections"] >= 1  # 3 bad bodies; a bad hex address
    assert s["connected"] is True
    with pytest.raises(SkytraceError, match="http"):
        live.AircraftJsonPoller(table, got, "file:///etc/passwd")


# ------------------------------------------------------------------------------------------------- Remote ID / MQTT
def _rid_pack(uas_id: str, lat: float, lon: float, t: float) -> bytes:
    tenths = round((t % 3600.0) * 10)
    return remote_id.encode_pack([remote_id.encode_basic_id(uas_id),
                                  remote_id.encode_location(lat, lon, 120.0, tenths, 90.0, 12.0)])


def test_remote_id_over_mqtt_text_and_binary_frames(mqtt_port):
    table = _table()
    coop = CooperativeSensors(table, IdentityMap())
    got = Collector()
    inp = live.RemoteIdMqttInput(table, got, "127.0.0.1", mqtt_port, coop=coop,
                                 client_id=f"skytrace-rid-test-{time.monotonic_ns()}")
    inp.start()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    pub.connect("127.0.0.1", mqtt_port)
    pub.loop_start()
    try:
        now = time.time()
        pack = _rid_pack("SERIAL-A1", 50.45, 30.52, now - 1)
        pub.publish("skytrace/v1/remote-id/rx-1", pack, qos=1).wait_for_publish(10)
        text = f"{now:.3f} aa:bb:cc:dd:ee:01 {_rid_pack('SERIAL-B2', 50.46, 30.53, now).hex(' ')}\n"
        text += "00 11 22\n"  # a truncated frame: counted, the other line still used
        pub.publish("skytrace/v1/remote-id/rx-2", text.encode(), qos=1).wait_for_publish(10)
        pub.publish("skytrace/v1/remote-id/rx-3", b"\x01" * 10, qos=1).wait_for_publish(10)  # 10-byte "message"
        pub.publish("skytrace/v1/remote-id/a/b", b"x", qos=1).wait_for_publish(10)  # outside the topic scheme
        wait_for(lambda: len(got) == 2 and inp.stats.rejected_messages >= 2, what="two drones, two bad frames")
    finally:
        pub.loop_stop()
        pub.disconnect()
        inp.stop()
    by_id = {d.target_id: d for d in got.dets}
    assert set(by_id) == {"rid:SERIAL-A1", "rid:SERIAL-B2"}
    assert by_id["rid:SERIAL-A1"].cls == "cooperative-uav" and abs(by_id["rid:SERIAL-A1"].t - (now - 1)) < 0.2
    assert abs(by_id["rid:SERIAL-B2"].lat - 50.46) < 1e-6
    assert coop.identities.by_sensor["rid:SERIAL-B2"].cls == "cooperative-uav"
    assert any("truncated" in r or "bytes" in r for r in inp.stats.as_dict()["recent_reasons"])
    # the handler itself: oversized payloads and too many lines are refused whole
    from skytrace.io.mqtt import MAX_PAYLOAD_BYTES

    assert inp.handle("skytrace/v1/remote-id/rx", b"0" * (MAX_PAYLOAD_BYTES + 1)) == 0
    assert inp.handle("skytrace/v1/remote-id/rx", b"00\n" * (live.MAX_LINES_PER_PAYLOAD + 1)) == 0


# ------------------------------------------------------------------------------------------------ through the service
def test_serve_tracks_an_sbs_aircraft_as_manned_without_alerts(tmp_path):
    """build_service + add_live_inputs (what ``skytrace serve --sbs`` does): an aircraft over Kyiv is tracked,
    its track carries class and identity in the websocket message, and no zone is alerted."""
    from skytrace.io import formats
    from skytrace.service.build import add_live_inputs, build_service

    formats.write_sensors(tmp_path / "sensors.json", [Sensor(id="node-1", kind="acoustic", lat=49.0, lon=36.0,
                                                             alt_m=100.0, bearing_sigma_deg=3.0)])
    t_end = math.floor(time.time())
    pts = _flight("508035", 60, t_end - 59.0, lat0=50.30, lon0=30.52, vn_mps=90.0)
    server = SbsServer([["".join(write_sbs_position("508035", t, la, lo, 2500.0) + "\r\n"
                                 for t, la, lo in pts).encode()]])
    svc = build_service(tmp_path, None, cooperative_slots=4)
    (inp,) = add_live_inputs(svc, sbs=f"127.0.0.1:{server.port}")
    inp.start()
    try:
        wait_for(lambda: svc.stats.n_in == 60, what="60 SBS positions in the service")
        msgs = []
        for k in range(12):
            msgs = svc.step_once(t_end + 1.0 * k)
    finally:
        inp.stop()
        server.close()
    tracks = msgs[0]
    assert tracks["type"] == "tracks"
    mine = [i for i, tid in enumerate(tracks["target_id"]) if tid == "icao:508035"]
    assert len(mine) == 1 and tracks["class"][mine[0]] == "manned" and tracks["identity_flag"][mine[0]] is None
    assert tracks["status"][mine[0]] in ("confirmed", "coasting")
    assert abs(tracks["lat"][mine[0]] - pts[-1][1]) < 0.02
    assert svc.alerts == []
    status = svc.status()
    assert status["inputs"]["sbs"]["accepted"] == 60 and status["inputs"]["sbs"]["connects"] == 1
    assert status["identity"]["slots_in_use"] == 1 and status["identity"]["cooperative_tracks"] == 1
    stored = {s.id for s in svc.store.sensors()}
    assert "adsb:508035" in stored and not any(i.startswith("coop-slot-") for i in stored)  # real names only
    with pytest.raises(SkytraceError, match="spare sensor rows"):
        add_live_inputs(build_service(tmp_path, None), sbs="127.0.0.1:1")


def test_serve_refuses_bad_input_options_in_one_line(tmp_path):
    import subprocess
    import sys

    from skytrace.io import formats

    formats.write_sensors(tmp_path / "sensors.json", [Sensor(id="node-1", kind="acoustic", lat=49.0, lon=36.0,
                                                             alt_m=100.0, bearing_sigma_deg=3.0)])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for opt, value, why in (("--asterix-udp", "127.0.0.1:notaport", "bad port"),
                            ("--sbs", "127.0.0.1:99999", "expected host:port"),
                            ("--aircraft-json", "ftp://127.0.0.1/aircraft.json", "http")):
        res = subprocess.run([sys.executable, "-c", "from skytrace.cli import main; main()", "serve", str(tmp_path),
                              "--port", str(port), opt, value], capture_output=True, text=True, timeout=120)
        assert res.returncode == 2, res.stderr
        assert why in res.stderr and "Traceback" not in res.stderr


_RID_INPUT = None


def _rid_input():
    global _RID_INPUT
    if _RID_INPUT is None:  # not connected: handle() is the whole decoding path of an MQTT message
        table = _table()
        _RID_INPUT = live.RemoteIdMqttInput(table, Collector(), coop=CooperativeSensors(table))
    return _RID_INPUT


@settings(max_examples=300, deadline=None)
@given(payload=st.one_of(st.binary(max_size=300), st.text(alphabet="0123456789abcdefABCDEF :.\n-x", max_size=300)
                         .map(str.encode)))
def test_remote_id_handler_counts_any_payload_and_never_raises(payload):
    inp = _rid_input()
    before = inp.stats.messages
    assert inp.handle("skytrace/v1/remote-id/rx-9", payload) >= 0
    assert inp.stats.messages == before + 1


@settings(max_examples=300, deadline=None)
@given(line=st.text(max_size=200) | st.lists(st.text(alphabet="0123456789.,-/: AMSGE", max_size=12), min_size=10,
                                              max_size=24).map(",".join))
def test_sbs_line_raises_only_value_errors(line):
    from skytrace.interop.adsb import sbs_line
    from skytrace.interop.asterix import ImportResult

    with contextlib.suppress(ValueError, IndexError):  # anything else would reach the feed thread
        sbs_line(ImportResult(), line)
