"""History store benchmark: write rate of track states and detections, and the spatial history query, for SQLite
and PostgreSQL + PostGIS.

A night of ``--tracks`` drones on straight lines around Kyiv, one state per track per second for ``--hours``,
written in 1-second snapshots as the live service writes them; then "what flew within 2 km of this point last
night" for 20 random points (median and worst time, rows returned; both back-ends must return the same rows).

    python bench/bench_store.py --tracks 200 --hours 1 --pg postgresql://postgres@127.0.0.1:18832/postgres
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from skytrace.batch import TrackSnapshot
from skytrace.store import open_store

T0 = 1_795_381_200.0


def snapshots(n_tracks: int, seconds: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    lat0 = 50.45 + rng.uniform(-1, 1, n_tracks)
    lon0 = 30.52 + rng.uniform(-1.5, 1.5, n_tracks)
    hdg = rng.uniform(0, 2 * np.pi, n_tracks)
    ve, vn = 50 * np.sin(hdg), 50 * np.cos(hdg)
    ids = [f"T{i:05d}" for i in range(n_tracks)]
    z = np.zeros(n_tracks)
    for k in range(seconds):
        lat = lat0 + vn * k / 111_320.0
        lon = lon0 + ve * k / (111_320.0 * np.cos(np.radians(lat0)))
        yield TrackSnapshot(t=T0 + k, track=ids, status=["confirmed"] * n_tracks, lat=lat, lon=lon,
                            alt_m=z + 300, ve=ve, vn=vn, vu=z, pos_sigma_m=z + 80)


def run(url: str, n_tracks: int, seconds: int, queries: np.ndarray) -> tuple[dict, list]:
    store = open_store(url)
    t = time.perf_counter()
    rows = sum(store.put_tracks(s) for s in snapshots(n_tracks, seconds))
    write_s = time.perf_counter() - t
    times, results = [], []
    for lat, lon in queries:
        t = time.perf_counter()
        got = store.tracks_near(float(lat), float(lon), 2000.0, T0, T0 + seconds)
        times.append(time.perf_counter() - t)
        results.append(sorted((p.track, p.t) for p in got))
    store.close()
    return {"store": url.split("@")[-1] if "://" in url else "sqlite", "rows": rows,
            "write_rows_per_s": round(rows / write_s), "query_ms_median": round(1e3 * float(np.median(times)), 1),
            "query_ms_max": round(1e3 * max(times), 1),
            "rows_returned_median": int(np.median([len(r) for r in results]))}, results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tracks", type=int, default=200)
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--pg", default=None, help="postgresql:// URL of an empty database (optional)")
    args = ap.parse_args()
    seconds = int(args.hours * 3600)
    rng = np.random.default_rng(5)
    queries = np.column_stack([50.45 + rng.uniform(-0.5, 0.5, 20), 30.52 + rng.uniform(-0.8, 0.8, 20)])
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        r, ref = run(str(Path(tmp) / "bench.db"), args.tracks, seconds, queries)
        out.append(r)
        print(json.dumps(r), flush=True)
    if args.pg:
        r, got = run(args.pg, args.tracks, seconds, queries)
        r["same_rows_as_sqlite"] = got == ref
        out.append(r)
        print(json.dumps(r), flush=True)
    Path("bench/out").mkdir(parents=True, exist_ok=True)
    Path("bench/out/bench_store.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
