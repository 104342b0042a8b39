"""Hostile input, case by case: each attack the fuzzing found gives a clean one-line error, never a crash.

The CLI cases run ``skytrace`` in a subprocess: exit status 2, one line on stderr, no traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys

import msgspec
import pytest

from skytrace.errors import FormatError, ScenarioError
from skytrace.io import formats
from skytrace.io.mqtt import DecodeStats, decode_detections
from skytrace.security.fuzzing import DETECTIONS_SEED, SCENARIO_SEED, SENSORS_SEED, TRACKS_SEED, ZONES_SEED, _table
from skytrace.sim.scenario import load_scenario
from skytrace.zones import read_zones

POLY = [[[30.0, 50.0], [30.5, 50.0], [30.5, 50.5], [30.0, 50.5], [30.0, 50.0]]]


def _zones_doc(geometry: dict) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "Z"}, "geometry": geometry}]}).encode()


@pytest.mark.parametrize("body, words", [
    (b'{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"id":"Z"},"geometry":'
     b'{"type":"Polygon","coordinates":[[[NaN,50],[30.5,50],[30.5,50.5],[NaN,50]]]}}]}', "not a number"),
    (_zones_doc({"type": "LineString", "coordinates": [[30, 50], [31, 51]]}), "Polygon or MultiPolygon"),
    (_zones_doc({"type": "Point", "coordinates": [30, 50]}), "Polygon or MultiPolygon"),
    (_zones_doc({"type": "GeometryCollection", "geometries": []}), "Polygon or MultiPolygon"),
    (_zones_doc({"type": "Polygon", "coordinates": [[[30, 50], [31, 50], [32, 50], [30, 50]]]}), "no area"),
    (_zones_doc({"type": "Polygon", "coordinates": [[[30, 50], [1e308, 50], [31, 51], [30, 50]]]}), "outside"),
    (b"[" * 100_000, "not valid JSON"),
    (b'{"type":"FeatureCollection","features":[\xff]}', "not valid JSON"),
])
def test_hostile_zones_are_rejected(tmp_path, body, words):
    p = tmp_path / "zones.geojson"
    p.write_bytes(body)
    with pytest.raises(FormatError, match=words):
        read_zones(p)


def test_valid_zones_still_read(tmp_path):
    p = tmp_path / "zones.geojson"
    p.write_bytes(ZONES_SEED)
    assert read_zones(p).ids == ["Z1", "Z2"]


@pytest.mark.parametrize("kind, extra, ok", [
    ("radar", {"max_range_m": 1e308}, False),
    ("radar", {"max_range_m": 700_000.0}, False),
    ("radar", {"max_range_m": 400_000.0}, True),
    ("acoustic", {"max_range_m": 50_000.0}, False),
    ("acoustic", {"max_range_m": 8_000.0}, True),
    ("acoustic", {"bearing_sigma_deg": 1e9}, False),
    ("acoustic", {"sound_speed_mps": 1e6}, False),
])
def test_sensor_physical_ranges_per_kind(tmp_path, kind, extra, ok):
    s = {"id": "s1", "kind": kind, "lat": 50.0, "lon": 30.0, "alt_m": 100.0, "bearing_sigma_deg": 1.0,
         "elevation_sigma_deg": 1.0, "range_sigma_m": 30.0, **extra}
    p = tmp_path / "sensors.json"
    p.write_text(json.dumps({"sensors": [s]}))
    if ok:
        assert formats.read_sensors(p)[0].kind == kind
    else:
        with pytest.raises(FormatError, match=r"plausible|outside"):
            formats.read_sensors(p)


@pytest.mark.parametrize("line, field", [
    (b'{"t":1e300,"sensor":"ac-1","bearing_deg":10}', "t"),
    (b'{"t":1.0,"sensor":"rad-1","bearing_deg":10,"elevation_deg":1,"range_m":1e308}', "range_m"),
    (b'{"t":1.0,"sensor":"ac-1","bearing_deg":10,"snr_db":1e308}', "snr_db"),
    (b'{"t":1.0,"sensor":"' + b"x" * 500 + b'","bearing_deg":10}', "sensor"),
    (b"[" * 100_000, None),
    (b'{"t":1.0,"sensor":"ac-1\xff","bearing_deg":10}', None),
])
def test_hostile_detection_lines(tmp_path, line, field):
    p = tmp_path / "d.jsonl"
    p.write_bytes(line + b"\n")
    with pytest.raises(FormatError) as err:
        list(formats.iter_detections(p, _table()))
    assert err.value.line == 1
    if field:
        assert err.value.field == field
    stats = formats.ReadStats()  # skip mode: counted, not raised
    assert list(formats.iter_detections(p, _table(), on_error="skip", stats=stats)) == []
    assert stats.skipped == 1


@pytest.mark.parametrize("payload", [b"[" * 100_000, b'{"t":1,' * 20_000, b"\xff\xfe", b'{"t":NaN}',
                                     b'[{"t":1.0,"sensor":"ac-1","bearing_deg":10}' + b',{}' * 6000 + b']'])
def test_hostile_payloads_are_counted_not_raised(payload):
    stats = DecodeStats()
    assert decode_detections(payload, _table(), stats, source="test") == []
    assert stats.rejected_messages + stats.rejected_detections >= 1


@pytest.mark.parametrize("text, words", [
    (SCENARIO_SEED.replace(b"count = 3", b"count = " + b"9" * 400), "integer of magnitude"),
    (SCENARIO_SEED.replace(b"duration_s = 600.0", b"duration_s = 1e308"), "magnitude"),
    (SCENARIO_SEED.replace(b"fuzz", b"fu\xffzz"), "not UTF-8"),
    (SCENARIO_SEED + b"\nx = " + b"[" * 50_000, "not valid TOML"),
    (SCENARIO_SEED.replace(b"count = 20", b"count = 9000000"), "acoustic nodes"),
])
def test_hostile_scenarios(tmp_path, text, words):
    p = tmp_path / "s.toml"
    p.write_bytes(text)
    with pytest.raises(ScenarioError, match=words):
        load_scenario(str(p))


def _cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from skytrace.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=120, cwd=cwd)


def test_cli_prints_one_line_and_exits_2_on_bad_input(tmp_path):
    (tmp_path / "sensors.json").write_bytes(SENSORS_SEED)
    (tmp_path / "bad_sensors.json").write_bytes(SENSORS_SEED.replace(b"40000.0", b"1e308"))
    (tmp_path / "d.jsonl").write_bytes(DETECTIONS_SEED + b"[" * 50_000 + b"\n")
    (tmp_path / "s.toml").write_bytes(b"name = \"x\xff\"\n")
    (tmp_path / "z.geojson").write_bytes(_zones_doc({"type": "LineString", "coordinates": [[30, 50], [31, 51]]}))
    (tmp_path / "good.jsonl").write_bytes(DETECTIONS_SEED)
    (tmp_path / "tracks.jsonl").write_bytes(TRACKS_SEED)
    cases = [
        ("track", "--sensors", str(tmp_path / "sensors.json"), "--detections", str(tmp_path / "d.jsonl"),
         "--out", str(tmp_path / "t.jsonl")),
        ("track", "--sensors", str(tmp_path / "bad_sensors.json"), "--detections", str(tmp_path / "good.jsonl"),
         "--out", str(tmp_path / "t.jsonl")),
        ("simulate", str(tmp_path / "s.toml"), "--out", str(tmp_path / "sim")),
        ("alerts", "--tracks", str(tmp_path / "tracks.jsonl"), "--zones", str(tmp_path / "z.geojson"),
         "--out", str(tmp_path / "alerts_out")),
    ]
    errors = []
    for args in cases:
        r = _cli(*args)
        assert r.returncode == 2, (args, r.stderr[-2000:])
        assert "Traceback" not in r.stderr
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), (args, r.stderr[-2000:])
        errors.append(lines[0])
    assert "line 4" in errors[0] and "plausible" in errors[1] and "UTF-8" in errors[2] and "Polygon" in errors[3]


def test_seed_sensors_decode():
    from skytrace.model import SensorsFile

    assert len(msgspec.json.decode(SENSORS_SEED, type=SensorsFile).sensors) == 3
