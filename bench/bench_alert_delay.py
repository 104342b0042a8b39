"""Live alert delay: from the pipeline step that decides an alert to its CAP message and its websocket event.

The live service (uvicorn on 127.0.0.1, default evidence policy on the built-in zones: oblasts + 15 km cells)
is fed, on the wall clock, reports of ``--drones`` drones flying straight at 45 m/s over Kyiv oblast, each seen
by two of 50 position sensors every second (``LiveService.submit``, the path MQTT and HTTP ingest use). One
websocket client listens. For every step whose alert policy returns events:

- ``decided``: wall time when the policy's ``update`` returned them (the step that decides);
- ``cap``: wall time when the last CAP 1.2 message of the step was built and put in the feed
  (``GET /api/v1/cap`` serves it from then on);
- ``websocket``: wall time when the client received the step's ``alerts`` message.

Prints and writes bench/out/bench_alert_delay.json with p50/p99/max of cap - decided and websocket - decided.

    python bench/bench_alert_delay.py --duration 60 --drones 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

from skytrace.batch import SensorTable
from skytrace.model import Detection, Sensor
from skytrace.service.app import create_app
from skytrace.service.core import LiveService
from skytrace.service.runner import ServerThread
from skytrace.service.stages import pipeline_stage
from skytrace.store import open_store
from skytrace.zones_grid import default_zones

LAT0, LON0 = 50.45, 30.52
N_SENSORS = 50


def percentiles(x: list[float]) -> dict:
    a = np.array(x) * 1e3
    if not a.size:
        return {"n": 0}
    return {"n": int(a.size), "p50_ms": round(float(np.percentile(a, 50)), 1),
            "p99_ms": round(float(np.percentile(a, 99)), 1), "max_ms": round(float(a.max()), 1)}


def run(duration_s: float, n_drones: int, alert_every_s: float, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    table = SensorTable.from_sensors([Sensor(id=f"plot-{i:02d}", kind="position") for i in range(N_SENSORS)])
    zones = default_zones()
    stage = pipeline_stage(table, zones, alert_every_s=alert_every_s)
    svc = LiveService(table=table, zones=zones, stage=stage, store=open_store(None), step_s=0.25)
    policy = stage.alerts
    decided: dict[float, float] = {}
    cap_t: dict[float, float] = {}
    ws_t: dict[float, float] = {}
    update = policy.update

    def timed_update(t, *a, **k):
        events = update(t, *a, **k)
        if events:
            decided[float(t)] = time.time()
        return events

    policy.update = timed_update
    cap = svc._cap

    def timed_cap(ev):
        n = svc._cap_seq
        cap(ev)
        if svc._cap_seq > n:  # a message was built and is in the feed
            cap_t[float(ev.t)] = time.time()

    svc._cap = timed_cap
    lat0 = LAT0 + rng.uniform(-0.8, 0.8, n_drones)
    lon0 = LON0 + rng.uniform(-1.2, 1.2, n_drones)
    hdg = rng.uniform(0, 2 * np.pi, n_drones)
    ve, vn = 45 * np.sin(hdg), 45 * np.cos(hdg)
    done = threading.Event()
    ready = threading.Event()
    with ServerThread(create_app(svc)) as server:
        async def listen():
            import websockets

            async with websockets.connect(server.url.replace("http", "ws") + "/api/v1/ws", max_size=None) as ws:
                ready.set()
                while not done.is_set():
                    try:
                        raw = await asyncio.wait_for(ws.recv(), 1.0)
                    except TimeoutError:
                        continue
                    t_rx = time.time()
                    if raw.startswith('{"type":"alerts"'):
                        ws_t.setdefault(float(json.loads(raw)["t"]), t_rx)

        th = threading.Thread(target=lambda: asyncio.run(listen()), daemon=True)
        th.start()
        ready.wait(10)
        t_start = time.time()
        next_t = time.monotonic()
        while time.time() - t_start < duration_s:
            now = time.time()
            dt = now - t_start
            lat = lat0 + vn * dt / 111_320.0
            lon = lon0 + ve * dt / (111_320.0 * np.cos(np.radians(lat0)))
            dets = []
            for i in range(n_drones):
                for s in rng.choice(N_SENSORS, 2, replace=False):
                    e = rng.normal(0, 100.0 / 111_320.0, 2)
                    dets.append(Detection(t=now, sensor=f"plot-{s:02d}", lat=float(lat[i] + e[0]),
                                          lon=float(lon[i] + e[1]), alt_m=300.0, pos_sigma_m=100.0))
            svc.submit(dets)
            next_t += 1.0
            time.sleep(max(0.0, next_t - time.monotonic()))
        time.sleep(2.0)
        done.set()
        th.join(5)
    common = sorted(set(decided) & set(ws_t))
    return {"duration_s": duration_s, "drones": n_drones, "alert_every_s": alert_every_s,
            "steps_with_alert_events": len(decided), "cap_messages": svc._cap_seq,
            "cap_delay": percentiles([cap_t[t] - decided[t] for t in decided if t in cap_t]),
            "websocket_delay": percentiles([ws_t[t] - decided[t] for t in common]),
            "step_ms_max": round(svc.stats.step_ms_max, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=60.0, help="s of wall clock")
    ap.add_argument("--drones", type=int, default=20)
    ap.add_argument("--alert-every", type=float, default=1.0, help="s between alert steps")
    args = ap.parse_args(argv)
    out = run(args.duration, args.drones, args.alert_every)
    print(json.dumps(out, indent=1))
    Path("bench/out").mkdir(parents=True, exist_ok=True)
    Path("bench/out/bench_alert_delay.json").write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
