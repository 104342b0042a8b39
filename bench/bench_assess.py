"""Assessment cost on a national picture: ~1,000 tracks x all zones (oblasts + 15 km grid, ~3,300 zones).

Tracks are the national scenario's truth at its busiest instant (drones in the air), topped up to N with copies
shifted by a few km if fewer are airborne. Reports CPU seconds (time.process_time) per full re-assessment and per
alert-engine update (assessment + state machine), median of ``--repeat`` runs. Target: < 1 s on one core.

    python bench/bench_assess.py [--n 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from skytrace.alerting import AlertEngine
from skytrace.assess import Assessor
from skytrace.batch import TrackSnapshot
from skytrace.sim.engine import build_world
from skytrace.sim.scenario import load_scenario
from skytrace.zones_grid import default_zones


def national_snapshot(n: int) -> TrackSnapshot:
    sc = load_scenario("national")
    world = build_world(sc, np.random.default_rng(0))
    f = world.fleet
    t = sc.start_t + 3.0 * 3600
    live = np.flatnonzero((f.t_launch <= t) & (f.t_end > t))
    lat, lon, alt, v = f.state_geodetic(live, np.full(live.size, t))
    rng = np.random.default_rng(1)
    while lat.size < n:
        k = min(n - lat.size, live.size)
        lat = np.concatenate([lat, lat[:k] + rng.normal(0, 0.03, k)])
        lon = np.concatenate([lon, lon[:k] + rng.normal(0, 0.03, k)])
        alt = np.concatenate([alt, alt[:k]])
        v = np.vstack([v, v[:k]])
    lat, lon, alt, v = lat[:n], lon[:n], alt[:n], v[:n]
    return TrackSnapshot(t, [f"T{i:05d}" for i in range(n)], ["confirmed"] * n, lat, lon, alt, v[:, 0], v[:, 1],
                         v[:, 2], np.full(n, 300.0)), int(live.size)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    zones = default_zones()
    c0 = time.process_time()
    assessor = Assessor(zones)
    build = time.process_time() - c0
    snap, airborne = national_snapshot(args.n)
    times, pairs = [], 0
    for _ in range(args.repeat):
        c0 = time.process_time()
        res = assessor.assess(snap)
        times.append(time.process_time() - c0)
        pairs = res.track_idx.size
    engine = AlertEngine(zones)
    eng_times = []
    for k in range(args.repeat):
        c0 = time.process_time()
        engine.update(snap.t + 10 * k, snap)
        eng_times.append(time.process_time() - c0)
    print(f"{len(zones)} zones (raster built once in {build:.2f} s CPU); {args.n} tracks ({airborne} airborne in "
          f"the national scenario at +3 h); {pairs} track-zone pairs with a non-zero entry probability")
    print(f"full re-assessment: median {np.median(times):.3f} s CPU (min {min(times):.3f}); "
          f"alert-engine update incl. assessment: median {np.median(eng_times):.3f} s CPU; target < 1 s")


if __name__ == "__main__":
    main()
