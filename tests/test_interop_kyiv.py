"""A kyiv-night replay streamed live: CoT to a TCP listener and CAT062 over UDP, decoded back, within 1 m."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from skytrace.cli import app
from skytrace.interop.loopback import stream_and_decode
from skytrace.io import formats
from skytrace.model import TrackPoint

runner = CliRunner()


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
    assert r["cot_stats"]["failed"] == r["cat062_stats"]["failed"] == 0
    assert r["cot_max_m"] < 0.02  # 1e-7 degree in the XML
    assert r["cat062_max_m"] < 1.0, r  # I062/105 LSB 180/2^25 deg: <= 0.3 m per axis after rounding
    assert r["cat062_max_alt_m"] <= 6.25 * 0.3048 / 2 + 1e-6  # I062/130 LSB 6.25 ft


def test_kyiv_night_all_targets_streamed(kyiv_short):
    """Every simulated drone of the first 30 min (truth states every 10 s) as tracks: many at once per step."""
    truth = [p for p in formats.read_truth(kyiv_short / "truth.jsonl") if round(p.t) % 10 == 0 and p.t == round(p.t)]
    points = [TrackPoint(t=p.t, track=p.target, status="confirmed", lat=p.lat, lon=p.lon, alt_m=p.alt_m,
                         ve=p.ve, vn=p.vn, vu=p.vu, pos_sigma_m=50.0) for p in truth]
    r = stream_and_decode(points)
    assert r["cot_events"] == r["points"] == r["cat062_records"], r
    assert r["cot_max_m"] < 0.02 and r["cat062_max_m"] < 1.0, r
