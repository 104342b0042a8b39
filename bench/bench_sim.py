"""Benchmark: time to simulate one hour of the `national` scenario (target: >= 20x faster than real time, one core).

Measures CPU time (time.process_time) of the simulation proper, for the busiest hour of the night (the hour
starting 1.5 h after the first launches, when most of the ~800 drones are in the air), writing all files.

    python bench/bench_sim.py [--hours 1] [--start-h 1.5] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from skytrace.sim.engine import build_world, simulate
from skytrace.sim.scenario import load_scenario


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--start-h", type=float, default=2.5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sc = load_scenario("national")
    t_build = time.process_time()
    world = build_world(sc, np.random.default_rng(args.seed))
    t_build = time.process_time() - t_build
    active = [(world.fleet.t_launch <= sc.start_t + h * 3600) & (world.fleet.t_end > sc.start_t + h * 3600)
              for h in np.arange(0, sc.duration_s / 3600, 0.5)]
    print(f"national: {len(world.fleet)} drones, {len(world.net.ids)} acoustic nodes, {len(world.radars)} radars; "
          f"world built in {t_build:.1f} s CPU; drones airborne per half hour: {[int(a.sum()) for a in active]}")
    # simulate from the scenario start through the end of the measured hour; time only the measured hour
    with tempfile.TemporaryDirectory() as tmp:
        t_warm = args.start_h * 3600
        res0 = simulate(sc, tmp + "/warm", seed=args.seed, duration_s=t_warm)
        res1 = simulate(sc, tmp + "/full", seed=args.seed, duration_s=t_warm + args.hours * 3600)
        cpu = res1.cpu_s - res0.cpu_s
        dets = res1.n_detections - res0.n_detections
        span = args.hours * 3600
        size = os.path.getsize(tmp + "/full/detections.jsonl") / 1e6
    print(f"hour {args.start_h:.1f}-{args.start_h + args.hours:.1f} h: {dets} detections, {cpu:.1f} s CPU "
          f"-> {span / cpu:.1f}x real time on one core (target >= 20x); detections file {size:.0f} MB total")


if __name__ == "__main__":
    main()
