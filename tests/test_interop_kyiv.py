"""A kyiv-night replay streamed live: CoT to a TCP listener and CAT062 over UDP, decoded back, within 1 m."""

from __future__ import annotations

import math
import time
from collections import defaultdict

import pytest
from typer.testing import CliRunner

from interop_helpers import TcpListener, UdpListener
from skytrace.batch import TrackSnapshot
from skytrace.cli import app
from skytrace.interop import asterix, cot
from skytrace.io import formats
from skytrace.model import TrackPoint
from skytrace.pipeline import StepResult

runner = CliRunner()


def _metres(lat1, lon1, lat2, lon2) -> float:
    return math.hypot((lat1 - lat2) * 111_320.0, (lon1 - lon2) * 111_320.0 * math.cos(math.radians(lat1)))


def stream_and_decode(points) -> dict:
    """Replay track points step by step through both live sinks; decode what the listeners got."""
    by_t = defaultdict(list)
    for p in points:
        by_t[p.t].append(p)
    tcp, udp = TcpListener(), UdpListener()
    cot_sink = cot.CotSink(cot.CotSinkConfig(url=f"tcp://127.0.0.1:{tcp.port}", max_queue=100_000))
    cat_sink = asterix.Cat062UdpSink(asterix.Cat062SinkConfig(port=udp.port, max_queue=100_000))
    for t in sorted(by_t):
        res = StepResult(t, TrackSnapshot.from_records(t, by_t[t]))
        cot_sink.on_step(res)
        cat_sink.on_step(res)
    cot_sink.close(timeout_s=300)
    cat_sink.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and tcp.received().count(b"</event>") < len(points):
        time.sleep(0.05)
    time.sleep(0.3)  # the last datagrams
    tcp.close()
    udp.close()
    want = {(p.track, round(p.t, 3)): p for p in points}
    cot_err, cat_err, alt_err = [], [], []
    events = cot.parse_events(tcp.received())
    for e in events:
        p = want[(e["uid"].removeprefix("skytrace."), round(e["time"], 3))]
        cot_err.append(_metres(e["lat"], e["lon"], p.lat, p.lon))
    number_to_track = {n: tid for tid, n in cat_sink.numbers.by_id.items()}
    n_cat = 0
    for dgram in udp.datagrams:
        for d in asterix.decode_cat062(dgram):
            tid = number_to_track[d["track_number"]]
            cands = [p for p in (want.get((tid, round(t, 3))) for t in by_t if abs(t % 86400 - d["tod_s"]) < 0.005)
                     if p is not None]
            assert len(cands) == 1
            p = cands[0]
            cat_err.append(_metres(d["lat"], d["lon"], p.lat, p.lon))
            alt_err.append(abs(d["alt_m"] - p.alt_m))
            n_cat += 1
    return {"points": len(points), "cot_events": len(events), "cat062_records": n_cat,
            "cot_max_m": max(cot_err), "cat062_max_m": max(cat_err), "cat062_max_alt_m": max(alt_err),
            "cot_stats": cot_sink.stats, "cat062_stats": cat_sink.stats}


@pytest.fixture(scope="module")
def kyiv_tracks(kyiv_short, tmp_path_factory):
    out = tmp_path_factory.mktemp("kyiv-interop") / "tracks.jsonl"
    res = runner.invoke(app, ["track", "--sensors", str(kyiv_short / "sensors.json"), "--detections",
                              str(kyiv_short / "detections.jsonl"), "--out", str(out), "--every", "2"])
    assert res.exit_code == 0, res.output
    return formats.read_tracks(out)


def test_kyiv_night_tracks_streamed_as_cot_and_cat062(kyiv_tracks):
    assert kyiv_tracks
    r = stream_and_decode(kyiv_tracks)
    assert r["cot_events"] == r["points"] == r["cat062_records"], r
    assert r["cot_max_m"] < 0.02  # 1e-7 degree in the XML
    assert r["cat062_max_m"] < 1.0, r  # I062/105 LSB 180/2^25 deg: <= 0.3 m per axis after rounding
    assert r["cat062_max_alt_m"] <= 6.25 * 0.3048 / 2 + 1e-6  # I062/130 LSB 6.25 ft


def test_kyiv_night_all_targets_streamed(kyiv_short):
    """Every simulated drone of the first 30 min (truth states every 10 s) as tracks: many at once per step."""
    truth = [p for p in formats.read_truth(kyiv_short / "truth.jsonl") if round(p.t) % 10 == 0]
    points = [TrackPoint(t=p.t, track=p.target, status="confirmed", lat=p.lat, lon=p.lon, alt_m=p.alt_m,
                                 ve=p.ve, vn=p.vn, vu=p.vu, pos_sigma_m=50.0) for p in truth]
    r = stream_and_decode(points)
    assert r["cot_events"] == r["points"] == r["cat062_records"], r
    assert r["cot_max_m"] < 0.02 and r["cat062_max_m"] < 1.0, r
