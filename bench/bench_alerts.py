"""Alert quality on kyiv-night: skytrace's zone policy vs today's oblast practice, with truth and with own tracks.

Both policies are scored on the same leaf zones (the 15 km grid cells inside the oblasts): an oblast alert covers
all its cells. Per cell entry by a drone: lead time (alert start -> entry), missed entries; false-alert
cell-minutes and km^2-minutes (alerted while no drone enters within the 20 min horizon).

    python bench/bench_alerts.py [--run DIR] [--seed 1] [--every 10]

Without --run, simulates kyiv-night and tracks it first (a few minutes). The row `skytrace*` counts only the
entries of drones that skytrace had tracked through the 5 minutes before they entered the cell; `sky/L` is
skytrace's policy with lead_target_s = L (on top of each zone's 60 s shelter time).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from skytrace.alerting import AlertPolicy
from skytrace.commands.alerts import run_alerts
from skytrace.commands.track import track_files
from skytrace.evaluation.alerts import (
    expand_to_children,
    oblast_baseline,
    score_alerts,
    truth_as_tracks,
    zone_entries,
)
from skytrace.evaluation.tracking import evaluate_tracks
from skytrace.io import formats
from skytrace.sim.engine import simulate
from skytrace.sim.scenario import load_scenario
from skytrace.zones import builtin_oblasts
from skytrace.zones_grid import default_zones


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--every", type=float, default=10.0)
    ap.add_argument("--radius-km", type=float, default=30.0)
    ap.add_argument("--leads", type=float, nargs="+", default=[300.0, 900.0],
                    help="lead_target_s values of skytrace's policy to compare")
    args = ap.parse_args()
    run = args.run or Path("bench/out/kyiv-night")
    if args.run is None:
        simulate(load_scenario("kyiv-night"), run, seed=args.seed)
        track_files(run / "sensors.json", run / "detections.jsonl", run / "tracks.jsonl", 1.0)
    truth = formats.read_truth(run / "truth.jsonl")
    zones = default_zones()
    oblasts = builtin_oblasts()
    cells = {z.id for z in zones if z.parent}
    entries = zone_entries(truth, zones)
    formats.write_jsonl(run / "truth_tracks.jsonl", truth_as_tracks(truth, 1.0))
    inputs = {"truth tracks": run / "truth_tracks.jsonl", "skytrace tracks": run / "tracks.jsonl"}
    # entries whose drone had been tracked (assigned to a confirmed track) through the 5 minutes before entry
    score = evaluate_tracks(truth, formats.read_tracks(run / "tracks.jsonl"), dt=1.0)
    tracked_5min = set()
    for (tgt, zid), te in entries.items():
        hist = [(t, tr) for t, tr in score.history.get(tgt, []) if te - 300.0 <= t < te]
        if len(hist) >= 270 and sum(tr is not None for _, tr in hist) >= 0.9 * len(hist):
            tracked_5min.add((tgt, zid))
    print(f"{'input':>16} {'policy':>9} {'entries':>7} {'missed':>6} {'med lead s':>10} {'p10 lead s':>10} "
          f"{'false cell-min':>14} {'false km2-min':>14} {'cpu s':>6}")
    for name, path in inputs.items():
        base_periods = oblast_baseline(formats.read_tracks(path), oblasts, radius_km=args.radius_km,
                                       step_s=args.every)
        base = score_alerts(expand_to_children(base_periods, zones), entries, zones, zone_ids=cells).summary()
        rows = [("oblast", base, 0.0)]
        for lead in args.leads:
            c0 = time.process_time()
            res = run_alerts(path, zones, run / f"alerts-{name.split()[0]}-{lead:.0f}", args.every,
                             AlertPolicy(lead_target_s=lead), write_cap=False)
            cpu = time.process_time() - c0
            rows.append((f"sky/{lead:.0f}", score_alerts(res["periods"], entries, zones, zone_ids=cells).summary(),
                         cpu))
            if name == "skytrace tracks":
                rows.append((f"sky/{lead:.0f}*", score_alerts(res["periods"], entries, zones, zone_ids=cells,
                                                              entry_filter=tracked_5min).summary(), cpu))
        for pol, sm, c in rows:
            print(f"{name:>16} {pol:>9} {sm['entries']:>7} {sm['missed']:>6} {sm['median_lead_s']!s:>10} "
                  f"{sm['p10_lead_s']!s:>10} {sm['false_alert_zone_min']:>14} {sm['false_alert_km2_min']:>14} "
                  f"{c:>6.1f}", flush=True)


if __name__ == "__main__":
    main()
