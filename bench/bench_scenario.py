"""Score skytrace's tracker on a simulated night (kyiv-night, national): accuracy, coverage, ghosts, speed.

Input: a directory written by ``skytrace simulate SCENARIO --out DIR`` (sensors.json, detections.jsonl,
truth.jsonl). The tracker runs through the same path as ``skytrace track`` (arrival order, lag, every DT).

Reported:
- speed: detections per CPU-second and the real-time factor (simulated seconds per CPU-second);
- GOSPA (c = 500 m, p = 2, alpha = 2) with its parts, RMSE, track breaks and ID switches, over all flying drones
  and over the drones *in coverage* (some sensor detected them in the preceding 60 s);
- the "heard" criterion of issue 3: every drone that at least two distinct acoustic nodes hear within 30 s should
  get a confirmed track; reported as the count that did and the delay from the end of the first such window;
- false tracks: confirmed tracks that never came within 1 km of any drone (ghosts from bearing crossings,
  clutter, confusers), as a count of track ids and as a share of reported track points.

The files carry no labels, so a detection is attributed to a drone geometrically: an acoustic bearing belongs to
the drone whose retarded bearing (the position at t - r/c) is within 3 sigma and which is within 10 km; bearings
consistent with two drones are left unattributed. Radar plots and sightings are attributed within 3 sigma / 1 km.

    python bench/bench_scenario.py DIR [--every 5] [--lag 5]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from skytrace.batch import ACOUSTIC, POSITION, RADAR, SensorTable
from skytrace.evaluation import evaluate_tracks
from skytrace.evaluation.tracking import heard_targets
from skytrace.geo import LocalFrame, wrap_deg
from skytrace.io import formats
from skytrace.model import TruthPoint
from skytrace.pipeline import track_files
from skytrace.tracking import TrackerConfig


def truth_arrays(truth: list[TruthPoint], frame: LocalFrame):
    """Per drone: sorted times (n,) and ENU positions (n, 3)."""
    per = defaultdict(list)
    for p in truth:
        per[p.target].append(p)
    out = {}
    for tid, pts in per.items():
        pts.sort(key=lambda p: p.t)
        t = np.array([p.t for p in pts])
        e, n, u = frame.to_enu(np.array([p.lat for p in pts]), np.array([p.lon for p in pts]),
                               np.array([p.alt_m for p in pts]))
        out[tid] = (t, np.column_stack([e, n, u]))
    return out


def interp(tr, t: np.ndarray) -> np.ndarray:
    ts, x = tr
    pos = np.column_stack([np.interp(t, ts, x[:, k]) for k in range(3)])
    pos[(t < ts[0]) | (t > ts[-1])] = np.nan
    return pos


def attribute(table: SensorTable, det, frame: LocalFrame, truth) -> np.ndarray:
    """Index into ``list(truth)`` of the drone each detection came from, -1 if none or ambiguous."""
    ids = list(truth)
    n = len(det)
    sensor_enu = frame.ecef_to_enu(np.nan_to_num(table.ecef_m))
    kind = table.kind[det.sensor]
    s_pos = sensor_enu[det.sensor]
    best = np.full(n, -1)
    n_ok = np.zeros(n, int)
    pos_det = np.full((n, 3), np.nan)
    isp = kind == POSITION
    if isp.any():
        pos_det[isp] = np.column_stack(frame.to_enu(det.lat[isp], det.lon[isp],
                                                    np.nan_to_num(det.alt_m[isp], nan=frame.alt0_m + 300)))
    sig_b = np.nan_to_num(table.bearing_sigma_deg[det.sensor], nan=3.0)
    for k, tid in enumerate(ids):
        p = interp(truth[tid], det.t)
        ac = kind == ACOUSTIC
        if ac.any():  # one fixed-point step for the retarded position
            c = table.sound_speed_mps[det.sensor[ac]]
            r = np.linalg.norm(p[ac] - s_pos[ac], axis=1)
            p_ret = interp(truth[tid], det.t[ac] - r / c)
            p[ac] = p_ret
        d = p - s_pos
        rng_h = np.hypot(d[:, 0], d[:, 1])
        az = np.degrees(np.arctan2(d[:, 0], d[:, 1]))
        ok = np.zeros(n, bool)
        ang = (kind == ACOUSTIC) | (kind == RADAR)
        ok[ang] = (np.abs(wrap_deg(det.bearing_deg[ang] - az[ang])) < 3 * np.maximum(sig_b[ang], 1.0)) & (
            rng_h[ang] < np.where(kind[ang] == RADAR, 1e6, 10_000.0))
        rad = kind == RADAR
        ok[rad] &= np.abs(det.range_m[rad] - np.linalg.norm(d[rad], axis=1)) < 300.0
        ok[isp] = np.hypot(*(pos_det[isp, :2] - p[isp, :2]).T) < np.maximum(3 * det.pos_sigma_m[isp], 1000.0)
        ok &= np.isfinite(p[:, 0])
        best[ok] = k
        n_ok += ok
    best[n_ok != 1] = -1
    return best


def heard(det, label: np.ndarray, table: SensorTable, n_targets: int, window_s: float = 30.0,
          min_nodes: int = 2) -> dict[int, float]:
    """Drone index -> end of the first window_s window in which >= min_nodes distinct acoustic nodes heard it."""
    res = heard_targets(label, det.t, det.sensor, table.kind == ACOUSTIC, [str(k) for k in range(n_targets)],
                        window_s, min_nodes)
    return {int(k): v for k, v in res.items()}


def _parse(default, text: str):
    """A --set value typed like the config default (bools: 1/true/yes)."""
    if isinstance(default, bool):
        return text.strip().lower() in ("1", "true", "yes")
    return type(default)(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("directory", type=Path)
    ap.add_argument("--every", type=float, default=5.0)
    ap.add_argument("--lag", type=float, default=5.0)
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="TrackerConfig overrides")
    ap.add_argument("--tracks-name", default="tracks.jsonl")
    args = ap.parse_args()
    overrides = {k: _parse(getattr(TrackerConfig(), k), v) for k, v in (kv.split("=", 1) for kv in args.set)}
    d = args.directory
    table = formats.load_sensor_table(d / "sensors.json")
    out_tracks = d / args.tracks_name
    wall0 = time.perf_counter()
    cfg = TrackerConfig(lag_s=args.lag, **overrides)
    hb = d / "heartbeats.jsonl"
    res = track_files(d / "sensors.json", d / "detections.jsonl", out_tracks, args.every, cfg,
                      heartbeats_path=hb if hb.is_file() else None)
    wall = time.perf_counter() - wall0
    det = formats.read_detections(d / "detections.jsonl", table)
    truth = formats.read_truth(d / "truth.jsonl")
    all_points = formats.read_tracks(out_tracks)
    tracks = [tp for tp in all_points if tp.status in ("confirmed", "coasting")]  # scored: confirmed tracks
    span_s = float(det.t.max() - det.t.min())
    result: dict = {"config_overrides": overrides, "detections": len(det), "sensors": len(table),
                    "span_s": round(span_s),
                    "cpu_s": round(res["cpu_s"], 1), "wall_s": round(wall, 1),
                    "detections_per_cpu_s": round(len(det) / res["cpu_s"]),
                    "real_time_factor_per_cpu": round(span_s / res["cpu_s"], 1), "tracker": res["tracker"]}
    ok = np.isfinite(table.lat)
    frame = LocalFrame(float(np.mean(table.lat[ok])), float(np.mean(table.lon[ok])), 0.0)
    tr = truth_arrays(truth, frame)
    ids = list(tr)
    label = attribute(table, det, frame, tr)
    result["attributed_share"] = round(float(np.mean(label >= 0)), 3)
    # coverage: times at which some sensor had detected the drone within the last 60 s
    covered = []
    by_target = defaultdict(list)
    for q in truth:
        by_target[q.target].append(q)
    for k, tid in enumerate(ids):
        td = np.sort(det.t[label == k])
        pts = by_target[tid]
        tq = np.array([q.t for q in pts])
        j = np.searchsorted(td, tq, side="right")
        last = np.where(j > 0, td[np.maximum(j - 1, 0)] if td.size else np.nan, np.nan)
        covered.extend(q for q, keep in zip(pts, tq - last <= 60.0, strict=True) if keep)
    all_score = evaluate_tracks(truth, tracks, dt=args.every)
    result["all_drones"] = all_score.summary()
    result["in_coverage"] = evaluate_tracks(covered, tracks, dt=args.every).summary() if covered else None
    # the 'heard by two nodes for 30 s' criterion
    hd = heard(det, label, table, len(ids))
    by_track = defaultdict(list)
    for tp in tracks:
        by_track[tp.track].append(tp)
    tp_t = np.array([tp.t for tp in tracks])
    tp_enu = np.column_stack(frame.to_enu(np.array([tp.lat for tp in tracks]), np.array([tp.lon for tp in tracks]),
                                          np.array([tp.alt_m for tp in tracks]))) if tracks else np.zeros((0, 3))
    delays, missing = [], []
    near_any = np.zeros(len(tracks), bool)
    for k, tid in enumerate(ids):
        p = interp(tr[tid], tp_t)
        close = np.isfinite(p[:, 0]) & (np.hypot(*(tp_enu[:, :2] - p[:, :2]).T) < 1000.0)
        near_any |= close
        if k in hd:
            t_start = hd[k] - 30.0
            got = tp_t[close & (tp_t >= t_start)]
            if got.size:
                delays.append(float(got.min() - t_start))
            else:
                missing.append(tid)
    false_ids = {tracks[i].track for i in range(len(tracks))} - {tracks[i].track for i in np.flatnonzero(near_any)}
    result["heard_by_2_nodes_30s"] = {"drones": len(hd), "confirmed_track": len(delays), "missing": missing,
                                      "median_delay_s": float(np.median(delays)) if delays else None,
                                      "p90_delay_s": float(np.percentile(delays, 90)) if delays else None}
    result["false_tracks"] = {"track_ids": len(false_ids), "track_ids_total": len(by_track),
                              "share_of_points": round(float(np.mean(~near_any)), 4) if tracks else 0.0}
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
