"""Interoperability figures: live outputs on a kyiv-night run, encoder throughput, real ADS-B flights as manned.

    python bench/bench_interop.py --run DIR [--adsb]

DIR holds a kyiv-night run with tracks.jsonl (``skytrace simulate kyiv-night --out DIR`` then ``skytrace track
... --out DIR/tracks.jsonl --every 2``). Prints: every track point streamed step by step as CoT over TCP and as
CAT062 over UDP to listeners on 127.0.0.1, decoded back, with the largest position differences; CoT and CAT062
encoding rates; with --adsb, three real helicopter flights of the traffic package replayed as SBS, imported,
tracked with --imm and scored (coverage of each flight by confirmed track points, median and 95th percentile
position error, alerts raised).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def live_outputs(run: Path) -> None:
    from skytrace.interop.loopback import stream_and_decode
    from skytrace.io import formats

    pts = formats.read_tracks(run / "tracks.jsonl")
    r = stream_and_decode(pts)
    print(f"live outputs: {r['points']} track points of {len({p.track for p in pts})} tracks in {r['steps']} steps")
    print(f"  CoT/TCP: {r['cot_events']} events received, max horizontal difference {r['cot_max_m'] * 1000:.2f} mm")
    print(f"  CAT062/UDP: {r['cat062_records']} records in {r['cat062_datagrams']} datagrams, max horizontal "
          f"difference {r['cat062_max_m']:.3f} m, max altitude difference {r['cat062_max_alt_m']:.3f} m")
    print(f"  on_step calls (both sinks) took {r['submit_s']:.2f} s in all; everything sent after {r['sent_s']:.1f} s"
          f"; failures: CoT {r['cot_stats']['failed']}, CAT062 {r['cat062_stats']['failed']}, dropped "
          f"{r['cot_stats']['dropped'] + r['cat062_stats']['dropped']}")


def encoding_rates(run: Path) -> None:
    from skytrace.interop import asterix, cot
    from skytrace.io import formats

    states = formats.read_tracks(run / "tracks.jsonl")[:5000]
    t0 = time.process_time()
    data = b"".join(asterix.encode_cat062(states))
    t1 = time.process_time()
    asterix.decode_cat062(data)
    t2 = time.process_time()
    for s in states:
        cot.to_bytes(cot.track_event(s, 6.0))
    t3 = time.process_time()
    n = len(states)
    print(f"encoding ({n} track states, CPU): CAT062 encode {n / (t1 - t0):,.0f}/s, decode {n / (t2 - t1):,.0f}/s "
          f"(libasterix, pure Python); CoT {n / (t3 - t2):,.0f} events/s (lxml)")


def adsb_flights() -> None:
    import pandas as pd
    import traffic
    from typer.testing import CliRunner

    from skytrace.cli import app
    from skytrace.interop import adsb
    from skytrace.io import formats

    base = Path(traffic.__file__).parent / "data" / "samples" / "ambulances"
    runner = CliRunner()
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="bench-adsb-"))
    flights, rows = [], []
    for k, name in enumerate(("rega_zh", "rega_sg", "samu31")):
        f = pd.read_json(base / f"{name}.json.gz").dropna(subset=["latitude", "longitude"])
        f["t"] = (f["last_position"] / 1e3).fillna(f["timestamp"].astype("datetime64[ns]").astype("int64") / 1e9)
        f = f.drop_duplicates(subset=["icao24", "t"]).sort_values("t")
        f["latitude"] += 50.45 - f["latitude"].mean() + 0.1 * k  # moved over Kyiv, shape and timing kept
        f["longitude"] += 30.52 - f["longitude"].mean()
        flights.append((name, f))
        for r in f.itertuples():
            alt = None if r.altitude != r.altitude else r.altitude
            rows.append((r.t, adsb.write_sbs_position(r.icao24, r.t, r.latitude, r.longitude, alt)))
    (d / "feed.sbs").write_text("\n".join(x for _, x in sorted(rows)) + "\n")
    for args in (["import", "--format", "sbs", "--in", str(d / "feed.sbs"), "--out", str(d / "det.jsonl"),
                  "--sensors-out", str(d / "sensors.json")],
                 ["track", "--sensors", str(d / "sensors.json"), "--detections", str(d / "det.jsonl"), "--out",
                  str(d / "tracks.jsonl"), "--every", "2", "--imm"],
                 ["alerts", "--tracks", str(d / "tracks.jsonl"), "--out", str(d / "alerts")]):
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
    tracks = formats.read_tracks(d / "tracks.jsonl")
    n_alerts = len(formats.read_alerts(d / "alerts" / "alerts.jsonl"))
    tagged = sum(p.cls == "manned" for p in tracks)
    print(f"ADS-B: {len(rows)} SBS positions of 3 real helicopter flights -> {len(tracks)} track points "
          f"({tagged} tagged manned), {len({p.track for p in tracks})} track ids, {n_alerts} alerts")
    for name, f in flights:
        t0, t1 = f["t"].min(), f["t"].max()
        mine = [p for p in tracks if p.target_id == f"icao:{f['icao24'].iloc[0]}" and t0 - 10 <= p.t <= t1 + 10
                and p.status == "confirmed"]
        tt = np.array([p.t for p in mine])
        err = np.hypot((np.array([p.lat for p in mine]) - np.interp(tt, f["t"], f["latitude"])) * 111_320,
                       (np.array([p.lon for p in mine]) - np.interp(tt, f["t"], f["longitude"])) * 71_000)
        print(f"  {name}: {(t1 - t0) / 60:.1f} min, covered {len(set(tt)) * 2.0 / (t1 - t0):.0%} by confirmed "
              f"points of {len({p.track for p in mine})} tracks; error median {np.median(err):.0f} m, "
              f"p95 {np.percentile(err, 95):.0f} m")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--adsb", action="store_true")
    a = ap.parse_args()
    live_outputs(a.run)
    encoding_rates(a.run)
    if a.adsb:
        adsb_flights()


if __name__ == "__main__":
    main()
