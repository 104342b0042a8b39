"""Confirmation delays and ghost track ids of a tracks file against a simulation run directory.

    python bench/track_quality.py RUN_DIR [--tracks tracks.jsonl]

- heard by >= K acoustic nodes within W s (K, W = 2, 30 and 3, 10; labelled detections) -> the first confirmed
  or coasting track point within 500 m (the GOSPA cut-off) of the drone: count, median and p90 delay (for K = 2
  from the start of the window, as ``skytrace evaluate`` does; for K = 3 from its end);
- ghosts: confirmed track ids whose reported points never came within 1 km (horizontal; 1 s of time counted as
  100 m) of any drone.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from skytrace.batch import ACOUSTIC, SensorTable
from skytrace.evaluation.tracking import heard_targets
from skytrace.geo import LocalFrame
from skytrace.io import formats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("directory", type=Path)
    ap.add_argument("--tracks", default="tracks.jsonl")
    args = ap.parse_args()
    d = args.directory
    table = SensorTable.from_sensors(formats.read_sensors(d / "sensors.json"))
    dets = formats.read_detections(d / "detections.jsonl", table)
    labels = np.load(d / "detection_labels.npy")
    ids = [t["target"] for t in json.loads((d / "meta.json").read_text())["targets"]]
    truth: dict[str, list] = defaultdict(list)
    for q in formats.read_truth(d / "truth.jsonl"):
        truth[q.target].append((q.t, q.lat, q.lon))
    ok = np.isfinite(table.lat)
    frame = LocalFrame(float(np.mean(table.lat[ok])), float(np.mean(table.lon[ok])), 0.0)
    by_t: dict[int, list] = defaultdict(list)
    by_id: dict[str, list] = defaultdict(list)
    for tp in formats.read_tracks(d / args.tracks):
        if tp.status in ("confirmed", "coasting"):
            by_t[round(tp.t)].append((tp.lat, tp.lon))
            by_id[tp.track].append((tp.t, tp.lat, tp.lon))
    tkeys = np.array(sorted(by_t))
    for k_nodes, window_s in ((2, 30.0), (3, 10.0)):
        heard = heard_targets(labels, dets.t, dets.sensor, table.kind == ACOUSTIC, ids, window_s=window_s,
                              min_nodes=k_nodes)
        delays = []
        for tid, t_heard in heard.items():
            tr = np.array(truth[tid])
            start = t_heard - window_s if k_nodes == 2 else t_heard
            for t in tkeys[(tkeys >= start) & (tkeys <= tr[-1, 0])]:
                e0, n0, _ = frame.to_enu(np.interp(t, tr[:, 0], tr[:, 1]), np.interp(t, tr[:, 0], tr[:, 2]), 0.0)
                pts = np.array(by_t[t])
                e, n, _ = frame.to_enu(pts[:, 0], pts[:, 1], np.zeros(len(pts)))
                if np.min(np.hypot(np.atleast_1d(e) - e0, np.atleast_1d(n) - n0)) < 500.0:
                    delays.append(t - start)
                    break
        med = f"{np.median(delays):.0f}" if delays else "-"
        p90 = f"{np.percentile(delays, 90):.0f}" if delays else "-"
        print(f"heard by >= {k_nodes} nodes within {window_s:.0f} s: {len(heard)} drones, {len(delays)} got a "
              f"confirmed track within 500 m, median {med} s, p90 {p90} s")
    rows = []
    for v in truth.values():
        a = np.array(v)
        tg = np.arange(a[0, 0], a[-1, 0] + 1, 1.0)
        e, n, _ = frame.to_enu(np.interp(tg, a[:, 0], a[:, 1]), np.interp(tg, a[:, 0], a[:, 2]), np.zeros(tg.size))
        rows.append(np.column_stack([tg * 100.0, e, n]))
    pts_truth = np.vstack(rows)
    t0 = pts_truth[:, 0].min()
    pts_truth[:, 0] -= t0
    tree = cKDTree(pts_truth)
    ghosts = 0
    for v in by_id.values():
        a = np.array(v)
        e, n, _ = frame.to_enu(a[:, 1], a[:, 2], np.zeros(len(a)))
        dist, _ = tree.query(np.column_stack([a[:, 0] * 100.0 - t0, e, n]), distance_upper_bound=1000.0)
        ghosts += not np.isfinite(dist).any()
    print(f"confirmed track ids never within 1 km of a drone: {ghosts} of {len(by_id)}")


if __name__ == "__main__":
    main()
