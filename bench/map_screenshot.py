"""Screenshots of the live map mid-wave for docs/: kyiv-night through the real live path, accelerated.

Simulates kyiv-night, starts the service (real tracker, SQLite in a temp dir) with a scaled clock anchored
``--lead-s`` before the chosen instant, feeds the detections in-process by arrival time at ``--speed`` x, lets
the picture build up, and screenshots the map in headless chromium (desktop and phone sizes).

    python bench/map_screenshot.py --at-s 5400 --speed 30 --out docs/img
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from skytrace.io import formats
from skytrace.service.app import create_app
from skytrace.service.clock import ScaledClock
from skytrace.service.core import LiveService
from skytrace.service.replay import InProcessFeed
from skytrace.service.runner import ServerThread
from skytrace.service.stages import pipeline_stage
from skytrace.sim.engine import simulate
from skytrace.sim.scenario import load_scenario
from skytrace.store import open_store
from skytrace.zones import read_zones


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--at-s", type=float, default=5400.0, help="scenario seconds of the screenshot")
    ap.add_argument("--lead-s", type=float, default=900.0, help="scenario seconds fed before it")
    ap.add_argument("--speed", type=float, default=30.0)
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="skytrace-shot-"))
    res = simulate(load_scenario("kyiv-night"), tmp, seed=1, duration_s=args.at_s + 60)
    table = formats.load_sensor_table(tmp / "sensors.json")
    zones = read_zones(tmp / "zones.geojson")
    t_from = res.t_start + args.at_s - args.lead_s
    dets = [d for d in formats.iter_detections(tmp / "detections.jsonl", table)
            if (d.t if d.t_arrival is None else d.t_arrival) >= t_from]
    clock = ScaledClock(args.speed, t_anchor=t_from)
    svc = LiveService(table=table, zones=zones, stage=pipeline_stage(table, zones), store=open_store(
        str(tmp / "h.db")), step_s=0.25, clock=clock, stale_after_s=15 * args.speed)
    args.out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with ServerThread(create_app(svc)) as server, sync_playwright() as p:
        feed = InProcessFeed(svc, dets).start()
        b = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                    "--disable-background-networking", "--disable-component-update",
                                    "--disable-sync"])
        page = b.new_page(viewport={"width": 1280, "height": 800})
        page.goto(server.url + "/")
        while clock() < res.t_start + args.at_s:
            time.sleep(0.5)
        zoom_to_tracks = """() => { const s = window.skytrace;
            const pts = [...s.tracks.values()].map(t => [t.lat, t.lon]);
            if (pts.length) s.map.fitBounds(L.latLngBounds(pts).pad(0.6), {animate: false}); }"""
        page.evaluate(zoom_to_tracks)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(args.out / "map-kyiv-night-zoom.png"))
        page.evaluate("() => { window.skytrace.map.fitBounds(window.skytrace.sensorBounds, {animate: false}); }")
        page.wait_for_timeout(500)
        page.screenshot(path=str(args.out / "map-kyiv-night.png"))
        phone = b.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
        phone.goto(server.url + "/")
        phone.wait_for_timeout(3000)
        phone.screenshot(path=str(args.out / "map-kyiv-night-phone.png"))
        print(f"tracks {len(svc.snapshot)}, detections in {svc.stats.n_in}, stored {svc.store.count_detections()},"
              f" alerts {len(svc.alerts)}")
        feed.stop()
        b.close()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
