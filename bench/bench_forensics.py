"""Forensic link and back-projection on simulated nights: debris placed where the drones came down.

    python bench/bench_forensics.py --scenario kyiv-night --seed 11
    python bench/bench_forensics.py --scenario national --duration 3600 --seed 11

Runs `skytrace simulate` and `skytrace track` (skipped when the run directory already has the files), then
places one debris item at the last truth point of every drone that came down inside the simulated span, moved by
a recovery-position error (Normal, --recovery-sigma-m per axis) and found --delay-h-min..--delay-h-max hours
later; runs `skytrace forensics link` with the built-in launch areas and scores:

- link: the tracks of a drone are those with a confirmed state within 2 km of it during its last 120 s of flight
  (the tracks that followed it as it came down); a debris item is linked correctly when its top hypothesis (the
  best track, or "none" when p_none is larger) is one of them, or "none" when there are none (a drone lost by
  the sensors before it came down: no track can honestly be named);
- launch areas: the true area is the catalogue area nearest to the drone's launch point (meta.json); top-1 and
  top-3 rates of links.jsonl's list;
- stitching: the earlier tracks joined to each correctly linked track (``origin.predecessors``), right when most
  of the earlier track's states lie within 2 km of the same drone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from skytrace.forensics.inputs import read_debris, read_launch_areas
from skytrace.forensics.link import LinkConfig, link_debris
from skytrace.forensics.origin import predecessors, stitch_links
from skytrace.forensics.tracks import read_track_histories
from skytrace.io.formats import iter_jsonl
from skytrace.model import TruthPoint

CLI = [sys.executable, "-c", "from skytrace.cli import main; main()"]
EARTH_R_M = 6_371_000.0


def _run(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(CLI + args, check=True)
    return time.perf_counter() - t0


def _truth_by_target(path: Path) -> dict[str, np.ndarray]:
    """target -> (n, 3) array of t, lat, lon sorted by t."""
    per: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for _, p in iter_jsonl(path, TruthPoint):
        per[p.target].append((p.t, p.lat, p.lon))
    return {k: np.array(sorted(v)) for k, v in per.items()}


def _tracks_at_end(hist, truth: dict[str, np.ndarray], final_s: float = 120.0, gate_m: float = 2000.0
                   ) -> dict[str, set[str]]:
    """target -> tracks that followed it as it came down: a confirmed state within ``gate_m`` of the drone during
    its last ``final_s`` of flight."""
    order = np.argsort(hist.t)
    t_sorted = hist.t[order]
    out: dict[str, set[str]] = defaultdict(set)
    track_of_row = np.repeat(np.arange(len(hist)), hist.stop - hist.start)
    for tid, tr in truth.items():
        t1 = tr[-1, 0]
        lo, hi = np.searchsorted(t_sorted, [t1 - final_s, t1 + 1e-6])
        rows = order[lo:hi]
        rows = rows[hist.confirmed[rows]]
        if rows.size == 0:
            continue
        la = np.interp(hist.t[rows], tr[:, 0], tr[:, 1])
        lo_ = np.interp(hist.t[rows], tr[:, 0], tr[:, 2])
        d = EARTH_R_M * np.hypot(np.radians(la - hist.lat[rows]),
                                 np.radians(lo_ - hist.lon[rows]) * np.cos(np.radians(la)))
        out[tid] = {hist.ids[k] for k in track_of_row[rows[d <= gate_m]]}
    return out


def _follows(hist, k: int, tr: np.ndarray, gate_m: float = 2000.0) -> bool:
    """Do most of track k's states (while the drone flew) lie within ``gate_m`` of that drone (truth ``tr``)?"""
    rows = np.arange(hist.start[k], hist.stop[k])
    rows = rows[(hist.t[rows] >= tr[0, 0]) & (hist.t[rows] <= tr[-1, 0])]  # tentative tracks are stitched too
    if rows.size == 0:
        return False
    la = np.interp(hist.t[rows], tr[:, 0], tr[:, 1])
    lo = np.interp(hist.t[rows], tr[:, 0], tr[:, 2])
    d = EARTH_R_M * np.hypot(np.radians(la - hist.lat[rows]), np.radians(lo - hist.lon[rows]) * np.cos(np.radians(la)))
    return bool(np.mean(d <= gate_m) > 0.5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="kyiv-night")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--duration", type=float, default=None, help="simulate only the first N seconds")
    ap.add_argument("--run", type=Path, default=None, help="run directory (default bench/out/forensics-SCENARIO)")
    ap.add_argument("--every", type=float, default=5.0, help="tracks.jsonl interval (s)")
    ap.add_argument("--recovery-sigma-m", type=float, default=100.0)
    ap.add_argument("--delay-h-min", type=float, default=1.0)
    ap.add_argument("--delay-h-max", type=float, default=12.0)
    args = ap.parse_args()
    run = args.run or Path(f"bench/out/forensics-{args.scenario}")
    timing = {}
    if not (run / "meta.json").exists():
        sim = ["simulate", args.scenario, "--out", str(run), "--seed", str(args.seed), "--quiet"]
        if args.duration:
            sim += ["--duration", str(args.duration)]
        timing["simulate_s"] = round(_run(sim), 1)
    if not (run / "tracks.jsonl").exists():
        timing["track_s"] = round(_run(["track", "--sensors", str(run / "sensors.json"), "--detections",
                                        str(run / "detections.jsonl"), "--out", str(run / "tracks.jsonl"),
                                        "--every", str(args.every)]), 1)
    meta = json.loads((run / "meta.json").read_text())
    truth = _truth_by_target(run / "truth.jsonl")
    rng = np.random.default_rng(args.seed + 1000)
    debris, drone_of = [], {}
    for tgt in meta["targets"]:
        tid = tgt["target"]
        if tgt["t_end"] > meta["t_end"] or tid not in truth:
            continue  # still flying when the simulation stopped
        t_end, lat, lon = truth[tid][-1]
        de, dn = rng.normal(0.0, args.recovery_sigma_m, 2)
        lat += np.degrees(dn / EARTH_R_M)
        lon += np.degrees(de / (EARTH_R_M * np.cos(np.radians(lat))))
        delay_s = rng.uniform(args.delay_h_min, args.delay_h_max) * 3600.0
        did = f"debris-{tid}"
        debris.append({"id": did, "t": round(t_end + delay_s, 1), "lat": round(lat, 6), "lon": round(lon, 6)})
        drone_of[did] = tgt
    (run / "debris.jsonl").write_text("".join(json.dumps(d) + "\n" for d in debris))
    timing["link_s"] = round(_run(["forensics", "link", "--tracks", str(run / "tracks.jsonl"), "--debris",
                                   str(run / "debris.jsonl"), "--out", str(run / "links.jsonl")]), 1)
    links = [json.loads(x) for x in (run / "links.jsonl").read_text().splitlines()]
    hist = read_track_histories(run / "tracks.jsonl")
    tracks_of = _tracks_at_end(hist, truth)
    areas = read_launch_areas(None)
    a_lat = np.array([a.lat for a in areas])
    a_lon = np.array([a.lon for a in areas])
    rows = []
    for ln in links:
        tgt = drone_of[ln["debris"]]
        mine = tracks_of.get(tgt["target"], set())
        best = ln["tracks"][0] if ln["tracks"] else None
        answer = best["track"] if best and best["p"] >= ln["p_none"] else None
        correct = (answer in mine) if mine else answer is None
        lon0, lat0 = tgt["waypoints_lonlat"][0]
        d = np.hypot(a_lat - lat0, (a_lon - lon0) * np.cos(np.radians(lat0)))
        true_area = areas[int(np.argmin(d))].id
        ranked = [a["id"] for a in ln["launch_areas"]]
        rows.append({"debris": ln["debris"], "kind": tgt["kind"], "tracked_at_end": bool(mine), "correct": correct,
                     "answer": answer, "true_area": true_area, "rank": ranked.index(true_area) + 1})
    n = len(rows)
    # stitching: the earlier tracks joined to each correctly linked track
    pred = stitch_links(hist)
    idx = {name: k for k, name in enumerate(hist.ids)}
    stitched = stitched_right = 0
    for r in rows:
        if r["correct"] and r["answer"] is not None:
            tid = drone_of[r["debris"]]["target"]
            for j in predecessors(hist, idx[r["answer"]], links=pred):
                stitched += 1
                stitched_right += _follows(hist, j, truth[tid])
    with_track = [r for r in rows if r["tracked_at_end"]]
    # the same link scored with each association mode (the CLI uses the default, "map")
    by_mode = {}
    items = read_debris(run / "debris.jsonl")
    for mode, name in (("map", "joint_map"), ("bp", "joint_bp"), ("", "item_by_item")):
        ok = 0
        for lk in link_debris(hist, items, LinkConfig(joint=mode)):
            mine = tracks_of.get(drone_of[lk.debris]["target"], set())
            best = hist.ids[lk.tracks[0]] if lk.tracks and lk.p[0] >= lk.p_none else None
            ok += (best in mine) if mine else best is None
        by_mode[name] = round(ok / max(n, 1), 4)
    res = {
        "scenario": args.scenario, "seed": args.seed, "duration_s": args.duration, "debris": n,
        "tracks_in_file": len(hist), "debris_tracked_at_end": len(with_track),
        "link_correct": round(sum(r["correct"] for r in rows) / max(n, 1), 4),
        "link_correct_tracked_at_end": round(sum(r["correct"] for r in with_track) / max(len(with_track), 1), 4),
        "link_correct_by_association": by_mode,
        "area_top1": round(sum(r["rank"] == 1 for r in rows) / max(n, 1), 4),
        "area_top3": round(sum(r["rank"] <= 3 for r in rows) / max(n, 1), 4),
        "area_top1_tracked_at_end": round(sum(r["rank"] == 1 for r in with_track) / max(len(with_track), 1), 4),
        "area_top3_tracked_at_end": round(sum(r["rank"] <= 3 for r in with_track) / max(len(with_track), 1), 4),
        "stitched_tracks": stitched, "stitched_right": stitched_right,
        "true_areas": dict(Counter(r["true_area"] for r in rows)),
        "timing": timing,
        "recovery_sigma_m": args.recovery_sigma_m, "delay_h": [args.delay_h_min, args.delay_h_max],
    }
    (run / "bench_forensics.json").write_text(json.dumps({"summary": res, "rows": rows}, indent=1))
    print(json.dumps(res, indent=1))
    wrong = [r for r in rows if not r["correct"]]
    if wrong:
        print("wrong links:", [(r["debris"], r["answer"], r["tracked_at_end"]) for r in wrong][:20])
    misses = [r for r in rows if r["rank"] > 3]
    if misses:
        print("true area outside top 3:", [(r["debris"], r["true_area"], r["rank"]) for r in misses][:20])


if __name__ == "__main__":
    main()
