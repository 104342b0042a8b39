"""ASTERIX: CAT062 out (round trip, independent decoder), CAT048/CAT015 in (raw and final framing), bad input."""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from interop_fixtures import cat048_blocks, sample_tracks
from skytrace import geo
from skytrace.cli import app
from skytrace.errors import FormatError
from skytrace.interop import asterix
from skytrace.io import formats
from skytrace.model import TrackPoint

runner = CliRunner()
LSB_DEG = 180.0 / 2**25
SITE = asterix.RadarSite(50.45, 30.52, 180.0)
DAY = "2026-03-14"
MIDNIGHT = datetime(2026, 3, 14, tzinfo=UTC).timestamp()


def final_records(blocks: list[bytes]) -> bytes:
    out = b""
    for k, b in enumerate(blocks):
        out += (len(b) + 12).to_bytes(2, "big") + bytes([0, 1, 14]) + (k * 100).to_bytes(3, "big") + b + b"\xa5" * 4
    return out


def _targets(n: int = 40, seed: int = 3):
    rng = np.random.default_rng(seed)
    lat = SITE.lat + rng.uniform(-0.6, 0.6, n)
    lon = SITE.lon + rng.uniform(-0.9, 0.9, n)
    alt = rng.uniform(150.0, 3000.0, n)
    az, el, r = geo.aer(SITE.lat, SITE.lon, SITE.alt_m, lat, lon, alt)
    return lat, lon, alt, az, r


@pytest.mark.parametrize("framing", ["raw", "final"])
def test_import_cat048_recovers_the_plots(tmp_path, framing):
    lat, lon, alt, az, r = _targets()
    plots = [{"tod": 3600.0 + k, "range_m": float(r[k]), "az": float(az[k]), "h_ft": float(alt[k]) / 0.3048}
             for k in range(len(r))]
    plots[3]["addr"] = 0x508035
    blocks = cat048_blocks(plots)
    data = b"".join(blocks) if framing == "raw" else final_records(blocks)
    (tmp_path / "radar.ast").write_bytes(data)
    res = runner.invoke(app, ["import", "--format", "cat048", "--in", str(tmp_path / "radar.ast"), "--site",
                              f"{SITE.lat},{SITE.lon},{SITE.alt_m}", "--date", DAY, "--out",
                              str(tmp_path / "detections.jsonl"), "--sensors-out", str(tmp_path / "sensors.json")])
    assert res.exit_code == 0, res.output
    assert runner.invoke(app, ["check", str(tmp_path)]).exit_code == 0
    table = formats.load_sensor_table(tmp_path / "sensors.json")
    dets = list(formats.iter_detections(tmp_path / "detections.jsonl", table))
    assert len(dets) == len(r) and table.ids == ["cat048-7-9"] and table.records[0].kind == "radar"
    assert dets[3].target_id == "icao:508035" and dets[3].cls == "manned" and dets[0].target_id is None
    d_lat, d_lon, d_alt = [], [], []
    for k, d in enumerate(dets):
        assert d.t == pytest.approx(MIDNIGHT + 3600.0 + k, abs=1 / 128)
        e, n, u = (d.range_m * math.cos(math.radians(d.elevation_deg)) * math.sin(math.radians(d.bearing_deg)),
                   d.range_m * math.cos(math.radians(d.elevation_deg)) * math.cos(math.radians(d.bearing_deg)),
                   d.range_m * math.sin(math.radians(d.elevation_deg)))
        la, lo, al = geo.enu_to_geodetic(e, n, u, SITE.lat, SITE.lon, SITE.alt_m)
        d_lat.append(abs(la - lat[k]) * 111_320)
        d_lon.append(abs(lo - lon[k]) * 111_320 * math.cos(math.radians(lat[k])))
        d_alt.append(abs(al - alt[k]))
    # CAT048 quantisation: RHO 1/256 NM (7.2 m), THETA 360/2^16 deg (5.5 mrad.. 0.1 m/km), 3DH 25 ft (7.6 m)
    assert max(d_alt) < 8.0 and max(math.hypot(a, b) for a, b in zip(d_lat, d_lon, strict=True)) < 15.0


def test_cat048_needs_a_site_and_heights(tmp_path):
    blocks = cat048_blocks([{"tod": 10.0, "range_m": 20_000.0, "az": 45.0}])
    (tmp_path / "r.ast").write_bytes(b"".join(blocks))
    args = ["import", "--format", "cat048", "--in", str(tmp_path / "r.ast"), "--out", str(tmp_path / "d.jsonl")]
    res = runner.invoke(app, args)
    assert res.exit_code != 0 and "--site" in str(res.exception)
    res = runner.invoke(app, [*args, "--site", "50,30,100"])
    assert res.exit_code == 0 and "1 2-D plots without height" in res.output
    res = runner.invoke(app, [*args, "--site", "50,30,100", "--assume-alt-m", "500"])
    assert res.exit_code == 0 and "1 detections" in res.output


def test_import_cat015_positions_and_polar(tmp_path):
    import asterix.generated as gen

    C = gen.Cat_015_1_2
    lat, lon, alt, az, r = _targets(5)
    recs = []
    for k in range(5):
        recs.append(C.cv_record.create({
            "010": (("SAC", 1), ("SIC", 2)), "000": (("MT", 1), ("RG", 0)), "145": (100.0 + k, "s"),
            "600": {"P84": (("LATITUDE", (float(lat[k]), "°")), ("LONGITUDE", (float(lon[k]), "°"))),
                    "HPP": (("SDHPX", (3.0, "m")), ("SDHPY", (4.0, "m")), ("COSDHPXY", 0))},
            "601": {"GH": (float(alt[k]), "m")},
            "625": {"R": (float(r[k]), "m")}, "627": {"AZ": (float(az[k]), "°")}}))
    (tmp_path / "c15.ast").write_bytes(C.create(recs).unparse().to_bytes())
    base = ["import", "--format", "cat015", "--in", str(tmp_path / "c15.ast"), "--date", DAY,
            "--out", str(tmp_path / "d.jsonl"), "--sensors-out", str(tmp_path / "s.json")]
    assert runner.invoke(app, base).exit_code == 0
    table = formats.load_sensor_table(tmp_path / "s.json")
    dets = list(formats.iter_detections(tmp_path / "d.jsonl", table))
    assert [d.sensor for d in dets] == ["cat015-1-2-pos"] * 5
    for k, d in enumerate(dets):
        assert abs(d.lat - lat[k]) < 1e-6 and abs(d.lon - lon[k]) < 1e-6 and d.pos_sigma_m == pytest.approx(5.0)
        assert abs(d.alt_m - alt[k]) < 1.0
    assert runner.invoke(app, [*base, "--site", f"{SITE.lat},{SITE.lon},{SITE.alt_m}"]).exit_code == 0
    table = formats.load_sensor_table(tmp_path / "s.json")
    dets = list(formats.iter_detections(tmp_path / "d.jsonl", table))
    assert table.records[0].kind == "radar"
    for k, d in enumerate(dets):
        assert abs(d.range_m - r[k]) < 1.0 and abs(d.bearing_deg - az[k]) < 0.01


def _states():
    return sample_tracks()


def test_cat062_round_trip_within_the_lsb():
    states = _states()
    numbers = asterix.TrackNumbers()
    data = b"".join(asterix.encode_cat062(states, numbers=numbers))
    dec = asterix.decode_cat062(data)
    assert len(dec) == len(states)
    for s, d in zip(states, dec, strict=True):
        assert d["track_number"] == numbers(s.track) == int(s.track[1:])
        assert abs(d["lat"] - s.lat) <= LSB_DEG / 2 and abs(d["lon"] - s.lon) <= LSB_DEG / 2
        assert abs(d["alt_m"] - s.alt_m) <= 6.25 * 0.3048 / 2 + 1e-9
        assert abs(d["ve"] - s.ve) <= 0.125 and abs(d["vn"] - s.vn) <= 0.125
        assert d["tod_s"] == pytest.approx(s.t % 86400, abs=1 / 256)
        assert d["coasting"] == (s.status == "coasting") and d["confirmed"]


@settings(max_examples=60, deadline=None)
@given(lat=st.floats(-89.99, 89.99), lon=st.floats(-179.99, 179.99), alt=st.floats(-400, 15000),
       ve=st.floats(-400, 400), vn=st.floats(-400, 400), vu=st.floats(-60, 60), sig=st.floats(0, 8000),
       t=st.floats(0, 4e9), status=st.sampled_from(["confirmed", "coasting", "tentative"]))
def test_cat062_round_trip_property(lat, lon, alt, ve, vn, vu, sig, t, status):
    s = TrackPoint(t=t, track="T1", status=status, lat=lat, lon=lon, alt_m=alt, ve=ve, vn=vn, vu=vu, pos_sigma_m=sig)
    (d,) = asterix.decode_cat062(b"".join(asterix.encode_cat062([s])))
    assert abs(d["lat"] - lat) <= LSB_DEG / 2 + 1e-12 and abs(d["lon"] - lon) <= LSB_DEG / 2 + 1e-12
    assert abs(d["sigma_x_m"] - sig / math.sqrt(2)) <= 0.25 + 1e-9
    assert d["confirmed"] == (status != "tentative") and d["coasting"] == (status == "coasting")


# ---------------------------------------------------------------------------- an independent decoder, own venv
DECODER_VENV = Path(os.environ.get("SKYTRACE_ASTERIX_DECODER_VENV",
                                   Path(tempfile.gettempdir()) / "skytrace-asterix-decoder-venv"))


@pytest.fixture(scope="session")
def independent_decoder() -> Path:
    """Python of a separate venv with CroatiaControl's asterix-decoder (C++; its module is also named `asterix`,
    so it cannot share skytrace's environment). Built once and reused; a failure to build fails the test."""
    py = DECODER_VENV / "bin" / "python"
    probe = [str(py), "-c", "import asterix; asterix.parse(b'')"]
    if not (py.exists() and subprocess.run(probe, capture_output=True).returncode == 0):
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(DECODER_VENV)], check=True)
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", "asterix-decoder"], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.fail(f"cannot install asterix-decoder in {DECODER_VENV}: {r.stderr[-2000:]}")
    return py


def test_cat062_decodes_with_the_independent_decoder(tmp_path, independent_decoder):
    states = _states()
    data = b"".join(asterix.encode_cat062(states))
    (tmp_path / "t.ast").write_bytes(data)
    script = ("import asterix, json, sys\n"
              "print(json.dumps(asterix.parse(open(sys.argv[1], 'rb').read()), default=str))\n")
    r = subprocess.run([str(independent_decoder), "-c", script, str(tmp_path / "t.ast")], capture_output=True,
                       text=True, check=True)
    recs = json.loads(r.stdout)
    assert len(recs) == len(states) and all(x["category"] == 62 for x in recs)
    for s, x in zip(states, recs, strict=True):
        assert abs(x["I105"]["Lat"]["val"] - s.lat) <= LSB_DEG / 2 and abs(x["I105"]["Lon"]["val"] - s.lon) <= LSB_DEG
        assert x["I040"]["TrkN"]["val"] == int(s.track[1:])
        assert abs(x["I185"]["Vx"]["val"] - s.ve) <= 0.125 and abs(x["I185"]["Vy"]["val"] - s.vn) <= 0.125
        assert abs(x["I130"]["Alt"]["val"] * 0.3048 - s.alt_m) <= 1.0
        assert x["I070"]["ToT"]["val"] == pytest.approx(s.t % 86400, abs=1 / 128)
        assert x["I080"]["CNF"]["val"] == 0


# ----------------------------------------------------------------------------------------------- hostile input
GOOD = cat048_blocks([{"tod": 1.0, "range_m": 9000.0, "az": 10.0, "h_ft": 1000.0}])[0]


@pytest.mark.parametrize("data, why", [
    (GOOD[:-3], "truncated data block"),
    (GOOD[:2], "truncated data block header"),
    (b"\x30\x00\x01" + GOOD, "declares length 1"),
    (b"\x30\xff\xff" + GOOD, "truncated data block"),
    (os.urandom(0) + b"\x30\x00\x05\xff\xff", "CAT048"),
    (bytes(range(256)) * 4, ""),
])
def test_bad_asterix_is_one_clear_line(tmp_path, data, why):
    (tmp_path / "bad.ast").write_bytes(data)
    res = runner.invoke(app, ["import", "--format", "cat048", "--framing", "raw", "--in", str(tmp_path / "bad.ast"),
                              "--site", "50,30,100", "--out", str(tmp_path / "d.jsonl")])
    assert res.exit_code != 0 and isinstance(res.exception, FormatError)
    assert why in str(res.exception) and "\n" not in str(res.exception)


def test_bad_final_records(tmp_path):
    rec = final_records([GOOD])
    for bad, why in [(rec[:-1], "bad byte count"), (rec[:-4] + b"\0\0\0\0", "padding"), (rec[:5], "truncated")]:
        with pytest.raises(FormatError, match=why):
            asterix.split_final(bad)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_never_crash_the_decoders(data):
    cfg = asterix.RadarImportConfig(site=SITE)
    for decode in (asterix.decode_cat048, asterix.decode_cat015):
        with contextlib.suppress(FormatError):
            decode(asterix.split_datablocks(data), cfg)
    with contextlib.suppress(FormatError):
        asterix.decode_cat062(data)


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=200), st.integers(0, 2))
def test_mutated_records_never_crash(noise, where):
    data = bytearray(b"".join(asterix.encode_cat062(_states()[:3])))
    pos = [3, len(data) // 2, len(data) - len(noise)][where]
    data[pos:pos + len(noise)] = noise
    with contextlib.suppress(FormatError):
        asterix.decode_cat062(bytes(data))
