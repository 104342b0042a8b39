"""The live half of ``skytrace demo``: a simulated run played through the live service in accelerated time.

``run_live_demo(out_dir, speed)`` takes a directory written by the simulator (sensors.json, detections.jsonl,
zones.geojson), starts the service on embedded defaults (SQLite in ``out_dir``, in-process feed instead of a
broker, real tracker and alerting when installed), anchors a scaled clock at the first report, feeds the
reports by arrival time ``speed`` times faster than real time, serves the map on 127.0.0.1 and returns a summary
when the feed is exhausted (``headless``) or on Ctrl-C. The ``demo`` command wires it in a few lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from skytrace.io import formats
from skytrace.service.app import create_app
from skytrace.service.clock import ScaledClock
from skytrace.service.core import LiveService
from skytrace.service.replay import InProcessFeed
from skytrace.service.runner import ServerThread
from skytrace.service.stages import pipeline_stage
from skytrace.store import open_store


def run_live_demo(out_dir: Path, speed: float = 60.0, port: int = 8080, headless: bool = False,
                  echo: Callable[[str], None] = print, tail_s: float = 120.0) -> dict:
    """Play ``out_dir`` through the live service; returns counts (detections in/stored, tracks, alerts)."""
    import dataclasses

    from skytrace.config import load_config, load_zones

    conf = load_config()
    out_dir = Path(out_dir)
    table = formats.load_sensor_table(out_dir / "sensors.json")
    zones = load_zones(conf)  # the same zones as the offline alerts (default: oblasts + 15 km cells)
    dets = list(formats.iter_detections(out_dir / "detections.jsonl", table))
    if not dets:
        return {"detections_in": 0, "detections_stored": 0, "tracks_max": 0, "alerts": 0}
    t_first = min(d.t if d.t_arrival is None else d.t_arrival for d in dets)
    clock = ScaledClock(speed, t_anchor=t_first)
    db = out_dir / "skytrace.db"
    db.unlink(missing_ok=True)
    svc = LiveService(table=table, zones=zones,
                      stage=pipeline_stage(table, zones,
                                           dataclasses.replace(conf.tracker, frame_s=conf.service.tracker_frame_s),
                                           conf.pipeline.alert_every_s, conf.pipeline, conf.alerting, conf.assess),
                      store=open_store(str(db)), step_s=0.25, clock=clock, stale_after_s=15.0 * speed)
    with ServerThread(create_app(svc), port=port) as server:
        echo(f"live map: {server.url}/  (speed {speed:g}x, store {db})")
        feed = InProcessFeed(svc, dets).start()
        try:
            while not feed.done or clock() < feed.ta[-1] + tail_s:
                time.sleep(0.5)
            # the night is over: stop its clock (else it runs on at speed x and the night slides out of the
            # timeline), and say so on the map instead of "feed stalled"
            t_end = clock.stop()
            svc.replay_done = True
            if not headless:
                echo(f"replay finished at {time.strftime('%H:%M:%S', time.gmtime(t_end))} UTC (scenario time); "
                     "the clock is stopped, the map stays up until Ctrl-C")
                while True:
                    time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            feed.stop()
        time.sleep(2 * svc.step_s)
    summary = {"detections_in": svc.stats.n_in, "detections_stored": svc.store.count_detections(),
               "tracks_max": svc.stats.n_tracks_max, "track_rows": svc.store.count_tracks(),
               "alerts": len(svc.store.alerts()), "step_ms_max": round(svc.stats.step_ms_max, 1),
               "tracker_late_dropped": (svc.status().get("tracker") or {}).get("late_dropped"),
               "rejected_at_edge": svc.stage.stats["rejected_old"] + svc.stage.stats["rejected_future"]}
    svc.store.close()
    return summary
