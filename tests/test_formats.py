"""The interchange formats: round trips, and every kind of bad input gives a clear error naming file/line/field."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from skytrace.batch import DetectionBatch, SensorTable
from skytrace.cli import app
from skytrace.errors import FormatError
from skytrace.io import formats
from skytrace.model import Alert, Detection, Sensor, TrackPoint, TruthPoint
from skytrace.zones import builtin_oblasts, read_zones, zones_from_geojson

SENSORS = [
    Sensor(id="ac-1", kind="acoustic", lat=50.4, lon=30.5, alt_m=160.0, bearing_sigma_deg=2.5, max_range_m=3000.0),
    Sensor(id="rad-1", kind="radar", lat=50.6, lon=30.9, alt_m=175.0, bearing_sigma_deg=0.8,
           elevation_sigma_deg=1.0, range_sigma_m=30.0, max_range_m=40000.0),
    Sensor(id="sight", kind="position"),
]


@pytest.fixture
def table():
    return SensorTable.from_sensors(SENSORS)


@pytest.fixture
def sensors_file(tmp_path):
    formats.write_sensors(tmp_path / "sensors.json", SENSORS)
    return tmp_path / "sensors.json"


def test_sensors_round_trip(sensors_file):
    assert formats.read_sensors(sensors_file) == SENSORS


def test_detections_round_trip_records_and_batch(tmp_path, table):
    dets = [
        Detection(t=1.5, sensor="ac-1", bearing_deg=12.25, snr_db=9.0, t_arrival=1.9),
        Detection(t=2.0, sensor="rad-1", bearing_deg=359.9, elevation_deg=2.0, range_m=12000.0),
        Detection(t=0.5, sensor="sight", lat=50.1, lon=30.2, alt_m=400.0, pos_sigma_m=2000.0, alt_sigma_m=500.0,
                  cls="shahed", class_conf=0.7),
    ]
    p = tmp_path / "detections.jsonl"
    assert formats.write_jsonl(p, dets) == 3
    back = list(formats.iter_detections(p, table))
    assert back == dets
    assert '"class":"shahed"' in p.read_text()  # the on-disk name is `class`
    batch = formats.read_detections(p, table)
    assert len(batch) == 3 and batch.sensor.tolist() == [0, 1, 2]
    assert np.isnan(batch.range_m[0]) and batch.range_m[1] == 12000.0
    assert batch.to_records(table)[0].bearing_deg == 12.25
    assert DetectionBatch.concat([batch, batch.take(np.array([2]))]).lat[-1] == 50.1


def test_truth_tracks_alerts_round_trip(tmp_path):
    truth = [TruthPoint(t=1.0, target="D1", lat=50.0, lon=30.0, alt_m=300.0, ve=40.0, vn=-3.0, vu=0.0, kind="jet")]
    tracks = [TrackPoint(t=1.0, track="T1", status="confirmed", lat=50.0, lon=30.0, alt_m=300.0, ve=1.0, vn=2.0,
                         vu=0.0, pos_sigma_m=55.0, sensors=["ac-1", "rad-1"])]
    alerts = [Alert(zone="UA-KC", start=10.0, end=None, level="warning", tracks=["T1"]),
              Alert(zone="UA-KV", start=10.0, end=70.0, level="warning", tracks=["T1", "T2"])]
    cases = (("truth.jsonl", truth, formats.read_truth), ("tracks.jsonl", tracks, formats.read_tracks),
             ("alerts.jsonl", alerts, formats.read_alerts))
    for name, recs, reader in cases:
        formats.write_jsonl(tmp_path / name, recs)
        assert reader(tmp_path / name) == recs
    assert '"end":null' in (tmp_path / "alerts.jsonl").read_text()  # end is explicit null while active


BAD_DETECTION_LINES = [
    ("{not json", None, "malformed"),
    ('{"sensor": "ac-1", "bearing_deg": 10}', "t", "missing"),
    ('{"t": "noon", "sensor": "ac-1", "bearing_deg": 10}', "t", "Expected `float`"),
    ('{"t": NaN, "sensor": "ac-1", "bearing_deg": 10}', None, "malformed"),
    ('{"t": 1e999, "sensor": "ac-1", "bearing_deg": 10}', "t", "out of range"),
    ('{"t": 1, "sensor": "ac-1", "bearing_deg": 360}', "bearing_deg", "outside"),
    ('{"t": 1, "sensor": "ac-1", "bearing_deg": -0.5}', "bearing_deg", "outside"),
    ('{"t": 1, "sensor": "ac-1", "bearing_deg": 10, "elevation_deg": 91}', "elevation_deg", "outside"),
    ('{"t": 1, "sensor": "nobody", "bearing_deg": 10}', "sensor", "unknown sensor id"),
    ('{"t": 1, "sensor": "ac-1"}', "bearing_deg", "required"),
    ('{"t": 1, "sensor": "rad-1", "bearing_deg": 10, "elevation_deg": 1}', "range_m", "required"),
    ('{"t": 1, "sensor": "sight", "lat": 95, "lon": 30, "pos_sigma_m": 100}', "lat", "outside"),
    ('{"t": 1, "sensor": "sight", "lat": 50, "lon": 30, "pos_sigma_m": -1}', "pos_sigma_m", "> 0"),
    ('{"t": 1, "sensor": "rad-1", "bearing_deg": 10, "elevation_deg": 1, "range_m": -5}', "range_m", "> 0"),
    ("[1, 2, 3]", None, "Expected `object`"),
    ('{"t": 1, "sensor": "", "bearing_deg": 10}', "sensor", "non-empty"),
]


@pytest.mark.parametrize(("line", "field", "text"), BAD_DETECTION_LINES)
def test_bad_detection_line_names_file_line_field(tmp_path, table, line, field, text):
    p = tmp_path / "detections.jsonl"
    good = '{"t": 0, "sensor": "ac-1", "bearing_deg": 1}'
    p.write_text(f"{good}\n\n{line}\n{good}\n")
    with pytest.raises(FormatError) as ei:
        list(formats.iter_detections(p, table))
    err = ei.value
    assert err.line == 3 and err.path == str(p)
    assert err.field == field
    assert text.lower() in str(err).lower()
    assert f"{p}, line 3" in str(err)


def test_skip_mode_counts_every_bad_line(tmp_path, table):
    p = tmp_path / "detections.jsonl"
    good = '{"t": 0, "sensor": "ac-1", "bearing_deg": 1}'
    p.write_text("\n".join([good] + [b[0] for b in BAD_DETECTION_LINES] + [good]) + "\n")
    stats = formats.ReadStats()
    kept = list(formats.iter_detections(p, table, on_error="skip", stats=stats))
    assert len(kept) == 2
    assert stats.skipped == len(BAD_DETECTION_LINES)
    assert stats.records == 2 and stats.lines == len(BAD_DETECTION_LINES) + 2
    assert "bad lines skipped" in stats.summary() and len(stats.reasons) == stats.max_reasons


def test_bad_sensors_files(tmp_path):
    p = tmp_path / "sensors.json"
    cases = [
        ("{", None),
        ('{"sensors": [{"id": "a", "kind": "sonar", "lat": 1, "lon": 1, "alt_m": 1, "bearing_sigma_deg": 1}]}',
         "sensors[0].kind"),
        ('{"sensors": [{"id": "a", "kind": "acoustic", "lon": 1, "alt_m": 1, "bearing_sigma_deg": 1}]}',
         "sensors[0].lat"),
        ('{"sensors": [{"id": "a", "kind": "radar", "lat": 1, "lon": 1, "alt_m": 1, "bearing_sigma_deg": 1}]}',
         "sensors[0].range_sigma_m"),
        ('{"sensors": [{"id": "a", "kind": "position"}, {"id": "a", "kind": "position"}]}', "sensors[1].id"),
        ('{"sensors": [{"id": "a", "kind": "acoustic", "lat": 1, "lon": 200, "alt_m": 1, "bearing_sigma_deg": 1}]}',
         "sensors[0].lon"),
        ('{"sensor": []}', "sensors"),
    ]
    for text, field in cases:
        p.write_text(text)
        with pytest.raises(FormatError) as ei:
            formats.read_sensors(p)
        assert ei.value.field == field, (text, str(ei.value))
        assert str(p) in str(ei.value)
    with pytest.raises(FormatError, match="file not found"):
        formats.read_sensors(tmp_path / "missing.json")
    with pytest.raises(FormatError, match="directory"):
        formats.read_sensors(tmp_path)


def test_bad_track_and_alert_lines(tmp_path):
    p = tmp_path / "tracks.jsonl"
    p.write_text('{"t": 1, "track": "T", "status": "lost", "lat": 1, "lon": 1, "alt_m": 1, "ve": 0, "vn": 0, '
                 '"vu": 0, "pos_sigma_m": 1}\n')
    with pytest.raises(FormatError) as ei:
        formats.read_tracks(p)
    assert ei.value.field == "status" and ei.value.line == 1
    p = tmp_path / "alerts.jsonl"
    p.write_text('{"zone": "z", "start": 10, "end": 5, "level": "w", "tracks": []}\n')
    with pytest.raises(FormatError, match="before"):
        formats.read_alerts(p)


def test_overlong_line_rejected(tmp_path, table):
    p = tmp_path / "detections.jsonl"
    p.write_text('{"t": 1, "sensor": "ac-1", "bearing_deg": 1, "pad": "' + "x" * (formats.MAX_LINE_BYTES + 10) + '"}\n')
    with pytest.raises(FormatError, match="longer than"):
        list(formats.iter_detections(p, table))


def test_zones_builtin_and_lookup():
    zones = builtin_oblasts()
    assert len(zones) == 27 and "UA-KC" in zones.ids
    pi, zi = zones.containing(np.array([50.45, 49.99, 30.0]), np.array([30.52, 36.23, 10.0]))
    found = {int(p): zones.zones[int(z)].id for p, z in zip(pi, zi, strict=True)}
    assert found[0] == "UA-KC" and found[1] == "UA-KK" and 2 not in found


def test_zones_round_trip_and_bad_geojson(tmp_path):
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "plant", "name": "Power plant", "shelter_s": 60, "parent": "UA-KV"},
         "geometry": {"type": "Polygon", "coordinates": [[[30, 50], [30.1, 50], [30.1, 50.1], [30, 50]]]}}]}
    z = zones_from_geojson(doc)
    z.write(tmp_path / "z.geojson")
    back = read_zones(tmp_path / "z.geojson")
    assert back["plant"].shelter_s == 60 and back["plant"].parent == "UA-KV"
    bad = [
        ({"type": "Feature"}, "FeatureCollection"),
        ({"type": "FeatureCollection", "features": [{"properties": {}, "geometry": None}]}, "id"),
        ({"type": "FeatureCollection", "features": [{"properties": {"id": "a"},
                                                     "geometry": {"type": "Point", "coordinates": [1, 2]}}]},
         "Polygon"),
        ({"type": "FeatureCollection", "features": [{"properties": {"id": "a", "shelter_s": "soon"},
                                                     "geometry": doc["features"][0]["geometry"]}]}, "shelter_s"),
        ({"type": "FeatureCollection", "features": [{"properties": {"id": "a"},
                                                     "geometry": {"type": "Polygon", "coordinates": "x"}}]},
         "geometry"),
        ({"type": "FeatureCollection", "features": []}, "no zones"),
    ]
    for d, text in bad:
        with pytest.raises(FormatError, match=text):
            zones_from_geojson(d, "zones.geojson")
    (tmp_path / "bad.geojson").write_text("{nope")
    with pytest.raises(FormatError, match="not valid JSON"):
        read_zones(tmp_path / "bad.geojson")


def test_cli_check_reports_bad_file_without_traceback(tmp_path, sensors_file):
    (tmp_path / "detections.jsonl").write_text('{"t": 1, "sensor": "ac-1", "bearing_deg": 400}\n')
    res = CliRunner().invoke(app, ["check", str(tmp_path)])
    assert res.exit_code != 0
    assert isinstance(res.exception, FormatError)  # main() turns this into one line and exit code 2
    res = CliRunner().invoke(app, ["check", str(tmp_path), "--skip-bad"])
    assert res.exit_code == 0, res.output
    assert "1 bad lines skipped" in res.output


def test_main_prints_one_line_and_exits_2(tmp_path, sensors_file):
    import subprocess
    import sys

    (tmp_path / "detections.jsonl").write_text('{"t": 1, "sensor": "ghost", "bearing_deg": 4}\n')
    proc = subprocess.run([sys.executable, "-c", "from skytrace.cli import main; main()", "check", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "line 1" in proc.stderr and "unknown sensor id 'ghost'" in proc.stderr
    json.dumps(proc.stderr)


def test_every_city_lies_in_its_oblast():
    from skytrace.zones import load_places

    expected = {"kyiv": "UA-KC", "kharkiv": "UA-KK", "odesa": "UA-OD", "dnipro": "UA-DP", "lviv": "UA-LV",
                "sumy": "UA-SM", "poltava": "UA-PL", "chernihiv": "UA-CH", "zhytomyr": "UA-ZT",
                "vinnytsia": "UA-VI", "mykolaiv": "UA-MY", "zaporizhzhia": "UA-ZP", "cherkasy": "UA-CK"}
    zones = builtin_oblasts()
    cities = {c["id"]: c for c in load_places()["cities"]}
    for cid, zid in expected.items():
        pi, zi = zones.containing(np.array([cities[cid]["lat"]]), np.array([cities[cid]["lon"]]))
        assert zid in {zones.zones[int(z)].id for z in zi}, cid
    assert zones["UA-KK"].name == "Kharkiv" and zones["UA-KH"].name == "Kirovohrad"
