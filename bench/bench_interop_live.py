"""Live inputs of ``skytrace serve``: throughput of each feed over loopback, end to end (socket -> decoder -> checks).

    python bench/bench_interop_live.py [--aircraft 200] [--positions 50] [--plots 3000] [--mqtt HOST:PORT]

SBS: one TCP connection sends aircraft x positions MSG,3 lines at once; ASTERIX: CAT048 plots (one record per data
block, 20 blocks per datagram) over UDP; aircraft.json: one HTTP poll of ``--aircraft`` aircraft; Remote ID: Message
Packs (Basic ID + Location) published on the broker (with --mqtt). Each figure is reports delivered per second of
wall time on this machine, from the first byte sent to the last detection handed to the service.
"""

from __future__ import annotations

import argparse
import http.server
import json
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


class Count:
    def __init__(self) -> None:
        self.n = 0
        self.t_last = 0.0

    def __call__(self, dets) -> None:
        self.n += len(dets)
        self.t_last = time.perf_counter()


def wait(cond, timeout_s: float = 600.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.01)


def table(n_slots: int):
    from skytrace.batch import SensorTable
    from skytrace.io.identity import reserve_slots
    from skytrace.model import Sensor

    radar = Sensor(id="cat048-7-9", kind="radar", lat=50.45, lon=30.52, alt_m=180.0, bearing_sigma_deg=0.15,
                   range_sigma_m=60.0, elevation_sigma_deg=1.0)
    return SensorTable.from_sensors([radar, *reserve_slots(n_slots)])


def bench_sbs(n_ac: int, n_pos: int) -> None:
    from skytrace.interop import live
    from skytrace.interop.adsb import write_sbs_position
    from skytrace.io.identity import CooperativeSensors

    t0 = time.time() - n_pos
    data = "".join(write_sbs_position(f"{0x500000 + a:06x}", t0 + k, 50.0 + a * 0.01, 30.0 + k * 1e-3, 3000.0)
                   + "\r\n" for k in range(n_pos) for a in range(n_ac)).encode()
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    tab = table(n_ac)
    got = Count()
    inp = live.SbsTcpInput(tab, got, "127.0.0.1", srv.getsockname()[1], coop=CooperativeSensors(tab))
    inp.start()
    conn, _ = srv.accept()
    t_start = time.perf_counter()
    conn.sendall(data)
    wait(lambda: got.n >= n_ac * n_pos)
    dt = got.t_last - t_start
    inp.stop()
    conn.close()
    srv.close()
    print(f"SBS/TCP: {got.n} positions of {n_ac} aircraft in {dt:.2f} s = {got.n / dt:,.0f} reports/s")


def bench_asterix(n_plots: int) -> None:
    from interop_fixtures import cat048_blocks
    from skytrace.interop import live

    rng = np.random.default_rng(1)
    tod = time.time() % 86400.0
    blocks = cat048_blocks([{"tod": tod, "range_m": float(r), "az": float(a), "h_ft": 3000.0}
                            for r, a in zip(rng.uniform(5e3, 80e3, n_plots), rng.uniform(0, 360, n_plots),
                                            strict=True)])
    got = Count()
    inp = live.AsterixUdpInput(table(0), got, "127.0.0.1", 0)
    inp.start()
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t_start = time.perf_counter()
    for k in range(0, n_plots, 20):
        tx.sendto(b"".join(blocks[k:k + 20]), inp.address)
        if k % 400 == 0:
            wait(lambda k=k: got.n >= k - 400, 60)  # pace the sender so the socket buffer never overflows
    wait(lambda: got.n >= n_plots, 120)
    dt = got.t_last - t_start
    inp.stop()
    print(f"ASTERIX CAT048/UDP: {got.n} of {n_plots} plots in {dt:.2f} s = {got.n / dt:,.0f} plots/s "
          f"(libasterix decoding, pure Python)")


def bench_aircraft_json(n_ac: int) -> None:
    from skytrace.interop import live
    from skytrace.io.identity import CooperativeSensors

    body = json.dumps({"now": time.time(), "aircraft": [
        {"hex": f"{0x500000 + a:06x}", "lat": 50 + a * 1e-3, "lon": 30.0, "alt_geom": 30000, "seen_pos": 0.4,
         "nac_p": 9, "category": "A3"} for a in range(n_ac)]}).encode()

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            return None

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    tab = table(n_ac)
    got = Count()
    inp = live.AircraftJsonPoller(tab, got, f"http://127.0.0.1:{httpd.server_address[1]}/aircraft.json", 60.0,
                                  coop=CooperativeSensors(tab))
    t_start = time.perf_counter()
    inp.start()
    wait(lambda: got.n >= n_ac)
    dt = got.t_last - t_start
    inp.stop()
    httpd.shutdown()
    print(f"aircraft.json/HTTP: one poll of {n_ac} aircraft ({len(body) / 1e3:.0f} kB) delivered in {dt * 1e3:.0f} ms")


def bench_remote_id(hostport: str, n_frames: int) -> None:
    import paho.mqtt.client as mqtt

    from skytrace.interop import live, remote_id
    from skytrace.io.identity import CooperativeSensors

    host, port = hostport.rsplit(":", 1)
    tab = table(100)
    got = Count()
    inp = live.RemoteIdMqttInput(tab, got, host, int(port), coop=CooperativeSensors(tab),
                                 client_id=f"bench-rid-{time.monotonic_ns()}")
    inp.start()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    pub.max_inflight_messages_set(1000)
    pub.connect(host, int(port))
    pub.loop_start()
    now = time.time()
    frames = [remote_id.encode_pack([remote_id.encode_basic_id(f"SN-{k % 100:04d}"),
                                     remote_id.encode_location(50.0 + k * 1e-5, 30.0, 120.0,
                                                               round((now % 3600) * 10) % 36000)])
              for k in range(n_frames)]
    t_start = time.perf_counter()
    for k, f in enumerate(frames):
        pub.publish(f"skytrace/v1/remote-id/rx-{k % 4}", f, qos=0)  # what the input subscribes with
    wait(lambda: got.n >= n_frames, 120)
    dt = got.t_last - t_start
    pub.loop_stop()
    pub.disconnect()
    inp.stop()
    print(f"Remote ID/MQTT: {got.n} of {n_frames} Message Packs of 100 drones in {dt:.2f} s = {got.n / dt:,.0f} "
          "frames/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--aircraft", type=int, default=200)
    ap.add_argument("--positions", type=int, default=50)
    ap.add_argument("--plots", type=int, default=3000)
    ap.add_argument("--mqtt", default="", help="HOST:PORT of a broker for the Remote ID figure")
    args = ap.parse_args()
    bench_sbs(args.aircraft, args.positions)
    bench_aircraft_json(args.aircraft * 5)
    bench_asterix(args.plots)
    if args.mqtt:
        bench_remote_id(args.mqtt, 5000)


if __name__ == "__main__":
    main()
