"""Fast manned aircraft from ADS-B: are airliners (> 120 m/s) tracked, confirmed and tagged as manned?

    python bench/bench_airliners.py [--out DIR] [--speeds 80,150,230,260]

For each ground speed, a straight flight over Kyiv oblast (10 min, 1 SBS position per second, at ``--alt-ft``,
positions rounded to 5 decimals as dump1090 writes them) goes through ``skytrace import --format sbs`` and
``skytrace track --every 2``; printed per speed: share of the flight covered by confirmed track points, number of
track ids, median position error, and whether every point carries ``manned`` and the aircraft's address; then
``skytrace alerts`` over all of them (expected: no alert).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


def flights(speeds: list[float], t0: float = 1_790_000_000.0, dur_s: int = 600):
    out = []
    for k, v in enumerate(speeds):
        t = t0 + np.arange(dur_s, dtype=float)
        hdg = np.radians(60.0 + 40.0 * k)
        lat = 50.2 + 0.15 * k + v * t.__sub__(t0) * np.cos(hdg) / 111_320.0
        lon = 29.8 + v * (t - t0) * np.sin(hdg) / (111_320.0 * np.cos(np.radians(50.3)))
        out.append((f"{0x508000 + k:06x}", v, t, lat, lon))
    return out


def main() -> None:
    from typer.testing import CliRunner

    from skytrace.cli import app
    from skytrace.interop.adsb import write_sbs_position
    from skytrace.io import formats

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--speeds", default="80,150,230,260")
    ap.add_argument("--alt-ft", type=float, default=36_000.0, help="flight level in feet (cruise 36,000; approach "
                                                                   "3,000)")
    args = ap.parse_args()
    d = args.out or Path(tempfile.mkdtemp(prefix="airliners-"))
    d.mkdir(parents=True, exist_ok=True)
    fl = flights([float(s) for s in args.speeds.split(",")])
    lines = sorted((t, write_sbs_position(a, t, la, lo, args.alt_ft)) for a, _v, ts, lat, lon in fl
                   for t, la, lo in zip(ts, lat, lon, strict=True))
    (d / "adsb.sbs").write_text("\n".join(line for _t, line in lines) + "\n")
    runner = CliRunner()
    for args_ in (["import", "--format", "sbs", "--in", str(d / "adsb.sbs"), "--out", str(d / "detections.jsonl"),
                   "--sensors-out", str(d / "sensors.json")],
                  ["track", "--sensors", str(d / "sensors.json"), "--detections", str(d / "detections.jsonl"),
                   "--out", str(d / "tracks.jsonl"), "--every", "2"],
                  ["alerts", "--tracks", str(d / "tracks.jsonl"), "--sensors", str(d / "sensors.json"),
                   "--detections", str(d / "detections.jsonl"), "--out", str(d / "alerts")]):
        if args_[0] == "alerts" and not (d / "tracks.jsonl").stat().st_size:
            print("no track point at all: nothing to alert on")
            break
        res = runner.invoke(app, args_)
        if res.exit_code != 0:
            raise SystemExit(f"{args_[0]} failed: {res.output}")
    tracks = formats.read_tracks(d / "tracks.jsonl") if (d / "tracks.jsonl").stat().st_size else []
    print(f"{len(tracks)} track points in {d / 'tracks.jsonl'}")
    for addr, v, t, lat, lon in fl:
        mine = [p for p in tracks if p.target_id == f"icao:{addr}"]
        conf = [p for p in mine if p.status == "confirmed"]
        covered = len({p.t for p in conf}) * 2.0 / (t[-1] - t[0])
        err = [np.hypot((p.lat - np.interp(p.t, t, lat)) * 111_320,
                        (p.lon - np.interp(p.t, t, lon)) * 111_320 * np.cos(np.radians(p.lat))) for p in conf]
        tagged = all(p.cls == "manned" for p in mine)
        print(f"  {v:5.0f} m/s: confirmed over {covered:5.1%} of the flight, {len({p.track for p in conf})} track "
              f"id(s), median error {np.median(err) if err else float('nan'):6.1f} m, all tagged manned: {tagged}")
    if (d / "alerts" / "alerts.jsonl").exists():
        print(f"alerts raised: {len(formats.read_alerts(d / 'alerts' / 'alerts.jsonl'))}")


if __name__ == "__main__":
    main()
