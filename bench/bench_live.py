"""Live-service benchmark: MQTT publish -> websocket update latency, loss, and the map's frame time.

Part 1 (transport + pipeline): a real Mosquitto broker on 127.0.0.1, the live service (uvicorn, SQLite store by
default) subscribed to it, one publisher playing ``--targets`` drones flying straight lines seen by 50 position
sensors (plots), at ``--rates`` detections/s for ``--duration`` s each, published in 10 Hz batches per sensor at
QoS 1. Latency of detection k = receipt time of the first websocket ``tracks`` message whose ``n_in >= k`` minus
the publish time of k (one publisher, so the broker keeps order and the k-th published is the k-th accepted).
It is the ingest-to-broadcast latency: the detection has been validated, stored and pushed through a pipeline
step. The tracker holds reports ``lag_s`` (5 s by default) to use late ones in order, so a report *moves* a track
``lag_s`` later; that is a tracking choice, reported separately. Loss: count published vs count stored.

With ``--alerts`` (assessment and alerting on the 27 oblasts): **alert latency**, per oblast that holds a drone
when publishing starts (every drone is reported from the first 0.1 s tick on): wall time from the start of
publishing to the oblast's first alert raise, as decided by the pipeline (a sink records the events), and to its
first event of certainty Observed (resting on a confirmed track: it includes the tracker's confirmation and its
``lag_s``; the first raise may rest on lone sightings, certainty Possible). At 5x the rate the same drones are
reported 5x as often.

Part 2 (``--browser``): the web map in headless chromium with ``--browser-tracks`` tracks updating at 1 Hz
(truth replay of synthetic straight-line drones); frame intervals from requestAnimationFrame over 20 s.

Usage::

    python bench/bench_live.py --rates 1000 5000 --duration 60 --stage tracker --browser
    python bench/bench_live.py --rates 1000 --duration 10 --stage truth   # quick

Writes bench/out/bench_live.json and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from skytrace.batch import SensorTable
from skytrace.io.mqtt import MqttIngest, MqttPublisher
from skytrace.model import Detection, Sensor, TruthPoint
from skytrace.service.app import create_app
from skytrace.service.core import LiveService
from skytrace.service.runner import ServerThread
from skytrace.service.stages import TruthReplayStage, pipeline_stage
from skytrace.store import open_store
from skytrace.zones import builtin_oblasts

LAT0, LON0 = 50.45, 30.52
N_SENSORS = 50


def start_broker() -> tuple[subprocess.Popen, int, Path]:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = Path(tempfile.mkdtemp(prefix="bench-mqtt-"))
    (tmp / "m.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                                "max_queued_messages 1000000\nmax_inflight_messages 0\n")
    proc = subprocess.Popen([exe, "-c", str(tmp / "m.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, port, tmp


def sensors() -> list[Sensor]:
    return [Sensor(id=f"plot-{i:02d}", kind="position") for i in range(N_SENSORS)]


class Fleet:
    """Drones on straight lines at 50 m/s around Kyiv (local flat-earth offsets: fine over a few minutes)."""

    def __init__(self, n: int, seed: int = 1):
        rng = np.random.default_rng(seed)
        self.lat0 = LAT0 + rng.uniform(-1.0, 1.0, n)
        self.lon0 = LON0 + rng.uniform(-1.5, 1.5, n)
        hdg = rng.uniform(0, 2 * np.pi, n)
        self.ve, self.vn = 50 * np.sin(hdg), 50 * np.cos(hdg)
        self.rng = rng

    def positions(self, dt_s: float):
        lat = self.lat0 + self.vn * dt_s / 111_320.0
        lon = self.lon0 + self.ve * dt_s / (111_320.0 * np.cos(np.radians(self.lat0)))
        return lat, lon


def run_rate(rate: int, duration_s: float, port: int, stage_name: str, n_targets: int, db: str | None,
             frame_s: float = 1.0, with_alerts: bool = False, max_queued: int | None = None,
             step_load_max: float | None = None) -> dict:
    from skytrace.tracking.tracker import TrackerConfig

    table = SensorTable.from_sensors(sensors())
    if stage_name == "tracker":
        stage = pipeline_stage(table, builtin_oblasts() if with_alerts else None, TrackerConfig(frame_s=frame_s))
    else:  # transport only: an empty truth replay (no tracks), to separate transport from tracking cost
        stage = TruthReplayStage([TruthPoint(t=0.0, target="none", lat=LAT0, lon=LON0, alt_m=0, ve=0, vn=0, vu=0)],
                                 wall0=0.0)
    store = open_store(db)
    svc = LiveService(table=table, zones=None, stage=stage, store=store, step_s=0.1)
    if max_queued:
        svc.max_queued_reports = max_queued
    if step_load_max is not None:
        svc.step_load_max = step_load_max
    import psutil

    proc_mem = psutil.Process()
    rss_mb: list[float] = []
    ingest = MqttIngest(table, svc.submit, "127.0.0.1", port, client_id=f"bench-svc-{time.time_ns()}")
    ingest.stats = svc.ingest_stats
    fleet = Fleet(n_targets)
    raised: dict[str, float] = {}  # zone id -> wall time of its first raise
    observed: dict[str, float] = {}  # zone id -> wall time of its first event with certainty Observed (a track)
    n_raises = [0]
    if with_alerts and stage_name == "tracker":
        from skytrace.pipeline import CallbackSink

        def on_events(res) -> None:
            for e in res.events:
                if e.kind == "raise":
                    n_raises[0] += 1
                    raised.setdefault(e.zone, time.time())
                if e.kind in ("raise", "update") and e.certainty == "Observed":
                    observed.setdefault(e.zone, time.time())

        sink = CallbackSink(on_events)
        sink.critical = False
        stage.sinks.append(sink)
        zones = stage.alerts.zones
        lat_s, lon_s = fleet.positions(0.0)
        _pts, zi = zones.containing(lat_s, lon_s)
        expected = sorted({zones.zones[int(i)].id for i in np.unique(zi)})
    else:
        expected = []
    pub_times: list[np.ndarray] = []
    recv: list[tuple[float, int]] = []
    done = threading.Event()
    with ServerThread(create_app(svc, ingest)) as server:
        async def listen():
            import websockets

            async with websockets.connect(server.url.replace("http", "ws") + "/api/v1/ws",
                                          max_size=None) as ws:
                ready.set()
                while not done.is_set() or (recv and recv[-1][1] < n_pub[0]):
                    try:
                        raw = await asyncio.wait_for(ws.recv(), 5)
                    except TimeoutError:
                        break
                    t_rx = time.time()
                    if raw.startswith('{"type":"tracks"'):
                        n_in = json.loads(raw[: raw.index(',"t_newest_in"')] + "}")["n_in"]
                        recv.append((t_rx, n_in))

        ready = threading.Event()
        n_pub = [0]
        th = threading.Thread(target=lambda: asyncio.run(listen()), daemon=True)
        th.start()
        ready.wait(10)
        pub = MqttPublisher("127.0.0.1", port, client_id=f"bench-pub-{time.time_ns()}", max_inflight=5000)
        pub.start()
        tick = 0.1
        per_tick = int(round(rate * tick))
        t_start = time.time()
        next_t = time.monotonic()
        last_info = None
        k = 0
        while time.time() - t_start < duration_s:
            now = time.time()
            lat, lon = fleet.positions(now - t_start)
            tgt = (np.arange(per_tick) + k) % n_targets
            k += per_tick
            sens = fleet.rng.integers(0, N_SENSORS, per_tick)
            noise = fleet.rng.normal(0, 50.0 / 111_320.0, (per_tick, 2))
            batch_t = []
            for s in np.unique(sens):
                idx = np.flatnonzero(sens == s)
                dets = [Detection(t=now, sensor=f"plot-{s:02d}", lat=float(lat[tgt[i]] + noise[i, 0]),
                                  lon=float(lon[tgt[i]] + noise[i, 1]), alt_m=300.0, pos_sigma_m=50.0)
                        for i in idx]
                last_info = pub.publish(f"plot-{s:02d}", dets)
                batch_t.append(np.full(len(dets), time.time()))
            pub_times.append(np.concatenate(batch_t))
            n_pub[0] += per_tick
            if k % (per_tick * 10) == 0:
                rss_mb.append(proc_mem.memory_info().rss / 2**20)
            next_t += tick
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        if last_info is not None:
            last_info.wait_for_publish(60)
        pub.stop()
        published = n_pub[0]
        end = time.monotonic() + 30
        while svc.stats.n_stored < published and time.monotonic() < end:
            time.sleep(0.1)
        time.sleep(0.5)
        done.set()
        th.join(15)
        stored = store.count_detections()
        step_max = svc.stats.step_ms_max
        final = svc.status()
        rss_mb.append(proc_mem.memory_info().rss / 2**20)
        n_tracks = len(svc.snapshot) if svc.snapshot is not None else 0
    store.close()
    pt = np.concatenate(pub_times)
    rx = np.array(recv)
    lat_ms = np.array([])
    if rx.size:
        idx = np.searchsorted(rx[:, 1], np.arange(1, published + 1), side="left")
        ok = idx < len(rx)
        lat_ms = (rx[idx[ok], 0] - pt[ok]) * 1e3
    wall = time.time() - t_start
    alert_lat = np.array([raised[z] - t_start for z in expected if z in raised])
    obs_lat = np.array([observed[z] - t_start for z in expected if z in observed])
    alerts = {"zones_with_a_drone_at_start": len(expected), "raised_of_those": int(alert_lat.size),
              "alert_latency_s_p50": round(float(np.median(alert_lat)), 1) if alert_lat.size else None,
              "alert_latency_s_max": round(float(alert_lat.max()), 1) if alert_lat.size else None,
              "observed_of_those": int(obs_lat.size),
              "observed_latency_s_p50": round(float(np.median(obs_lat)), 1) if obs_lat.size else None,
              "observed_latency_s_max": round(float(obs_lat.max()), 1) if obs_lat.size else None,
              "raises_total": n_raises[0], "active_at_end": final.get("n_active_alerts")} if with_alerts else None
    return {"alerts": alerts, "rate_per_s": rate, "duration_s": duration_s, "stage": stage_name, "targets": n_targets,
            "tracker_frame_s": frame_s, "alerting": with_alerts,
            "published": published, "accepted": svc.ingest_stats.accepted, "stored": stored,
            "lost": published - stored, "achieved_rate_per_s": round(published / duration_s, 1),
            "latency_ms_p50": round(float(np.percentile(lat_ms, 50)), 1) if lat_ms.size else None,
            "latency_ms_p99": round(float(np.percentile(lat_ms, 99)), 1) if lat_ms.size else None,
            "latency_ms_max": round(float(lat_ms.max()), 1) if lat_ms.size else None,
            "latency_measured": int(lat_ms.size), "step_ms_max": round(step_max, 1), "tracks_at_end": n_tracks,
            "wall_s": round(wall, 1), "shed": final["shed"], "queued_max": final["queued_max"],
            "shed_for_time": final["shed_for_time"], "step_load_max": svc.step_load_max,
            "inbox": {k: final["inbox"][k] for k in ("commits", "commit_ms_max", "queued_max", "duplicates")},
            "rss_mb_start": round(rss_mb[0], 1) if rss_mb else None, "rss_mb_max": round(max(rss_mb), 1),
            "rss_mb_end": round(rss_mb[-1], 1), "steps": svc.stats.n_steps,
            "pipeline": {k: int(v) for k, v in getattr(stage, "stats", {}).items()},
            "tracker": {k: int(v) for k, v in getattr(getattr(stage, "tracker", None), "stats", {}).items()
                        if k in ("late_dropped", "processed", "frames", "tracks_confirmed")}}


def run_browser(n_tracks: int, seconds: float) -> dict:
    from playwright.sync_api import sync_playwright

    fleet = Fleet(n_tracks, seed=2)
    t0 = time.time()
    truth = []
    for k in range(int(seconds) + 40):
        lat, lon = fleet.positions(float(k))
        truth += [TruthPoint(t=t0 + k, target=f"D{i:04d}", lat=float(lat[i]), lon=float(lon[i]), alt_m=300.0,
                             ve=float(fleet.ve[i]), vn=float(fleet.vn[i]), vu=0.0) for i in range(n_tracks)]
    table = SensorTable.from_sensors(sensors())
    stage = TruthReplayStage(truth, wall0=t0, t0=t0, speed=1.0, hold_s=1.5)
    svc = LiveService(table=table, zones=builtin_oblasts(), stage=stage, store=open_store(None), step_s=1.0)
    with ServerThread(create_app(svc)) as server, sync_playwright() as p:
        b = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                    "--disable-background-networking", "--disable-component-update",
                                    "--disable-sync"])
        page = b.new_page(viewport={"width": 1280, "height": 800})
        page.goto(server.url + "/")
        page.wait_for_function(f"window.skytrace.tracks.size >= {int(n_tracks * 0.95)}", timeout=60_000)
        page.evaluate("window.skytrace.frameMs.length = 0")
        page.wait_for_timeout(seconds * 1000)
        frames = np.array(page.evaluate("window.skytrace.frameMs.slice()"))
        shown = page.evaluate("window.skytrace.tracks.size")
        Path("bench/out").mkdir(parents=True, exist_ok=True)
        page.screenshot(path="bench/out/map-1000-tracks.png")
        b.close()
    return {"tracks": shown, "seconds": seconds, "frames": int(frames.size),
            "frame_ms_p50": round(float(np.percentile(frames, 50)), 1),
            "frame_ms_p95": round(float(np.percentile(frames, 95)), 1),
            "frame_ms_p99": round(float(np.percentile(frames, 99)), 1),
            "frame_ms_max": round(float(frames.max()), 1),
            "fps_mean": round(1000.0 / float(frames.mean()), 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--stage", choices=["tracker", "truth"], default="tracker")
    ap.add_argument("--targets", type=int, default=200)
    ap.add_argument("--frame-s", type=float, default=1.0, help="tracker processing frame (s of sensor time)")
    ap.add_argument("--alerts", action="store_true", help="run assessment + alerting on the 27 oblasts too")
    ap.add_argument("--db", default=None, help="store URL (default: a temporary SQLite file)")
    ap.add_argument("--max-queued", type=int, default=None, help="bound of the report queue (default: config)")
    ap.add_argument("--step-load-max", type=float, default=None,
                    help="share of wall time a step may use before reports are shed (default: the service's; 0 off)")
    ap.add_argument("--hogs", type=int, default=0, help="busy processes run alongside (a loaded machine)")
    ap.add_argument("--out", default="bench/out/bench_live.json")
    ap.add_argument("--browser", action="store_true")
    ap.add_argument("--browser-tracks", type=int, default=1000)
    ap.add_argument("--browser-seconds", type=float, default=20.0)
    args = ap.parse_args(argv)
    out: dict = {"live": [], "browser": None}
    proc, port, tmp = start_broker()
    # a loaded machine: busy processes compete with the service for the cores
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hogs)]
    try:
        for rate in args.rates:
            db = args.db or str(tmp / f"bench-{rate}.db")
            r = run_rate(rate, args.duration, port, args.stage, args.targets, db, args.frame_s, args.alerts,
                         args.max_queued, args.step_load_max) | {"hogs": args.hogs}
            out["live"].append(r)
            print(json.dumps(r), flush=True)
    finally:
        for h in hogs:
            h.kill()
            h.wait(10)
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    if args.browser:
        out["browser"] = run_browser(args.browser_tracks, args.browser_seconds)
        print(json.dumps(out["browser"]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
