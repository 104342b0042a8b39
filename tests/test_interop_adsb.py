"""ADS-B in: SBS and aircraft.json parsing, malformed input, and real flights tracked as manned aircraft."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from skytrace.cli import app
from skytrace.errors import FormatError
from skytrace.interop import adsb
from skytrace.io import formats

runner = CliRunner()
KYIV = (50.45, 30.52)


def _import(tmp_path: Path, fmt: str, src: Path, *extra: str):
    res = runner.invoke(app, ["import", "--format", fmt, "--in", str(src), "--out", str(tmp_path / "detections.jsonl"),
                              "--sensors-out", str(tmp_path / "sensors.json"), *extra])
    return res


def test_sbs_lines(tmp_path):
    lines = [
        "MSG,1,1,1,4B43AC,1,2019/05/23,11:50:04.000,2019/05/23,11:50:04.000,REGA1,,,,,,,,,,,0",
        "MSG,3,1,1,4B43AC,1,2019/05/23,11:50:04.500,2019/05/23,11:50:04.500,,3325,,,47.40000,8.50000,,,0,0,0,0",
        "MSG,4,1,1,4B43AC,1,2019/05/23,11:50:05.000,2019/05/23,11:50:05.000,,,114,90,,,512,,0,0,0,0",
        "MSG,3,1,1,4B43AC,1,2019/05/23,11:50:05.500,2019/05/23,11:50:05.500,,3350,,,47.40010,8.50020,,,0,0,0,0",
        "",
        "STA,,5,179,400AE7,10103,2008/11/28,14:58:51.153,2008/11/28,14:58:51.153,RM",
    ]
    (tmp_path / "f.sbs").write_text("\n".join(lines))
    res = _import(tmp_path, "sbs", tmp_path / "f.sbs")
    assert res.exit_code == 0, res.output
    assert "2 detections from 1 sensors" in res.output and "MSG,1" in res.output and "1 STA lines" in res.output
    assert runner.invoke(app, ["check", str(tmp_path)]).exit_code == 0
    table = formats.load_sensor_table(tmp_path / "sensors.json")
    dets = list(formats.iter_detections(tmp_path / "detections.jsonl", table))
    assert [d.sensor for d in dets] == ["adsb:4b43ac"] * 2
    assert dets[0].target_id == "icao:4b43ac" and dets[0].cls == "manned"
    assert dets[0].t == pytest.approx(1558612204.5) and dets[0].alt_m == pytest.approx(3325 * 0.3048)


@pytest.mark.parametrize("line, why", [
    ("MSG,3,1,1,ZZZZZZ,1,2019/05/23,11:50:04.500,2019/05/23,11:50:04.500,,3325,,,47.4,8.5,,,0,0,0,0", "hex"),
    ("MSG,3,1,1,4B43AC,1,2019/05/23", "fields"),
    ("MSG,3,1,1,4B43AC,1,2019/13/23,11:50:04.500,2019/05/23,11:50:04.500,,3325,,,47.4,8.5,,,0,0,0,0", "date/time"),
    ("MSG,3,1,1,4B43AC,1,2019/05/23,11:50:04.500,2019/05/23,11:50:04.500,,3325,,,97.4,8.5,,,0,0,0,0", "lat"),
    ("MSG,3,1,1,4B43AC,1,2019/05/23,11:50:04.500,2019/05/23,11:50:04.500,,nan,,,47.4,8.5,,,0,0,0,0", "finite"),
    ("\x00\x01garbage\xff", "unknown message type"),
])
def test_bad_sbs_is_one_clear_line(tmp_path, line, why):
    (tmp_path / "bad.sbs").write_text(line + "\n")
    res = _import(tmp_path, "sbs", tmp_path / "bad.sbs")
    assert res.exit_code != 0 and isinstance(res.exception, FormatError), res.output
    assert "line 1" in str(res.exception) and why in str(res.exception)
    res = _import(tmp_path, "sbs", tmp_path / "bad.sbs", "--skip-bad")
    assert res.exit_code == 0 and "1 bad lines" in res.output


def test_oversized_sbs_line(tmp_path):
    (tmp_path / "big.sbs").write_bytes(b"MSG," + b"9" * (2 << 20) + b"\n")
    res = _import(tmp_path, "sbs", tmp_path / "big.sbs")
    assert isinstance(res.exception, FormatError) and "1 MiB" in str(res.exception)


def test_aircraft_json(tmp_path):
    polls = [{"now": 1700000000.0 + k, "aircraft": [
        {"hex": "508035", "lat": 50.4 + 0.001 * k, "lon": 30.5, "alt_baro": 3000, "alt_geom": 3100, "nac_p": 9,
         "seen_pos": 0.4},
        {"hex": "~2ab1c0", "lat": 50.0, "lon": 30.0, "alt_baro": "ground", "seen_pos": 0.1, "category": "B6"},
        {"hex": "abcdef", "flight": "NOPOS"}]} for k in range(3)]
    polls.append(polls[-1])  # a repeated poll adds nothing
    (tmp_path / "ac.jsonl").write_text("\n".join(json.dumps(p) for p in polls))
    res = _import(tmp_path, "aircraft-json", tmp_path / "ac.jsonl")
    assert res.exit_code == 0, res.output
    table = formats.load_sensor_table(tmp_path / "sensors.json")
    dets = list(formats.iter_detections(tmp_path / "detections.jsonl", table))
    assert len(dets) == 6 and "positions repeated by later polls" in res.output
    a = [d for d in dets if d.sensor == "adsb:508035"]
    assert a[0].alt_m == pytest.approx(3100 * 0.3048) and a[0].pos_sigma_m == pytest.approx(30 / 2.4477, rel=1e-3)
    assert a[0].t == pytest.approx(1700000000.0 - 0.4)
    b = [d for d in dets if d.sensor == "adsb:2ab1c0"]
    assert b[0].cls == "cooperative-uav" and b[0].alt_m is None


@pytest.mark.parametrize("doc, why", [
    ('{"now": 1, "aircraft": [{"hex": "508035", "lat": 91, "lon": 0}]}', "lat"),
    ('{"now": "x", "aircraft": []}', "now"),
    ('{"aircraft": 5}', "aircraft"),
    ('{"now": 1, "aircraft": [{"hex": "508035", "lat": NaN, "lon": 0}]}', "NaN"),
    ('{"now": 1, "aircraft": [{"hex": "508035", "lat": 1, "lon": 0, "seen_pos": 1e9}]}', "seen_pos"),
    ("[1, 2", "JSON"),
])
def test_bad_aircraft_json(tmp_path, doc, why):
    (tmp_path / "bad.json").write_text(doc)
    res = _import(tmp_path, "aircraft-json", tmp_path / "bad.json")
    assert isinstance(res.exception, FormatError) and why in str(res.exception), res.output


@settings(max_examples=200, deadline=None)
@given(addr=st.integers(0, 0xFFFFFF), t=st.floats(0, 4e9), lat=st.floats(-90, 90), lon=st.floats(-180, 180),
       alt=st.one_of(st.none(), st.integers(-1000, 50000)))
def test_sbs_round_trip_property(tmp_path_factory, addr, t, lat, lon, alt):
    p = tmp_path_factory.mktemp("sbs") / "x.sbs"
    p.write_text(adsb.write_sbs_position(f"{addr:06x}", t, lat, lon, alt) + "\n")
    (d,) = adsb.read_sbs(str(p)).detections
    assert d.target_id == f"icao:{addr:06x}" and abs(d.lat - lat) <= 5e-6 and abs(d.lon - lon) <= 5e-6
    assert abs(d.t - t) <= 0.0006 and (d.alt_m is None) == (alt is None)


# ---------------------------------------------------------------- real flights (the traffic package's samples)
def _real_flights() -> list:
    """Three real helicopter flights (Rega Zurich and St. Gallen, SAMU 31 Toulouse), from the traffic package."""
    import pandas as pd
    import traffic

    base = Path(traffic.__file__).parent / "data" / "samples" / "ambulances"
    return [pd.read_json(base / f"{name}.json.gz") for name in ("rega_zh", "rega_sg", "samu31")]


def _over_kyiv(df, k: int):
    """The flight moved (shape and timing kept) to around Kyiv, where every position lies in an alert zone."""
    d = df.dropna(subset=["latitude", "longitude"]).copy()
    d["latitude"] += KYIV[0] - d["latitude"].mean() + 0.1 * k
    d["longitude"] += KYIV[1] - d["longitude"].mean()
    d["t_report"] = d["timestamp"].astype("datetime64[ns]").astype("int64") / 1e9
    # the samples repeat the last position on every row; `last_position` (ms) is when it was actually received
    d["t"] = (d["last_position"] / 1e3).fillna(d["t_report"]) if "last_position" in d else d["t_report"]
    return d.drop_duplicates(subset=["icao24", "t"]).sort_values("t")


def _num(x) -> float | None:
    return None if x is None or x != x else float(x)


@pytest.fixture(scope="module")
def adsb_runs(tmp_path_factory):
    """The flights replayed as SBS (two) and aircraft.json polls (one), imported and tracked with the CLI."""
    flights = [_over_kyiv(f, k) for k, f in enumerate(_real_flights())]
    out = {}
    for name, fmt in (("sbs", "sbs"), ("json", "aircraft-json")):
        d = tmp_path_factory.mktemp(name)
        if fmt == "sbs":
            rows = []
            for f in flights[:2]:
                for r in f.itertuples():
                    line = adsb.write_sbs_position(r.icao24, r.t, r.latitude, r.longitude, _num(r.altitude))
                    rows.append((r.t, line))
            (d / "feed.sbs").write_text("\n".join(x for _, x in sorted(rows)) + "\n")
            src = d / "feed.sbs"
        else:
            f = flights[2]
            polls = []
            for r in f.itertuples():  # one poll per report, as a 1 Hz poller would see it
                polls.append(json.dumps({"now": r.t_report + 0.3, "aircraft": [
                    {"hex": r.icao24, "flight": r.callsign, "lat": r.latitude, "lon": r.longitude,
                     "alt_baro": _num(r.altitude), "alt_geom": _num(r.geoaltitude), "seen_pos": r.t_report + 0.3 - r.t,
                     "nac_p": 9}]}))
            (d / "aircraft.jsonl").write_text("\n".join(polls) + "\n")
            src = d / "aircraft.jsonl"
        res = runner.invoke(app, ["import", "--format", fmt, "--in", str(src), "--out", str(d / "detections.jsonl"),
                                  "--sensors-out", str(d / "sensors.json")])
        assert res.exit_code == 0, res.output
        res = runner.invoke(app, ["track", "--sensors", str(d / "sensors.json"), "--detections",
                                  str(d / "detections.jsonl"), "--out", str(d / "tracks.jsonl"), "--every", "2",
                                  "--imm"])  # helicopters manoeuvre: the IMM follows their turns
        assert res.exit_code == 0, res.output
        out[name] = (d, flights[:2] if fmt == "sbs" else flights[2:])
    return out


@pytest.mark.parametrize("run", ["sbs", "json"])
def test_real_flights_are_tracked_as_manned(adsb_runs, run):
    d, flights = adsb_runs[run]
    tracks = formats.read_tracks(d / "tracks.jsonl")
    assert tracks, "no track from a real flight"
    assert all(p.cls == "manned" and p.target_id.startswith("icao:") for p in tracks)
    for f in flights:
        t0, t1 = f["t"].min(), f["t"].max()  # (the two Rega flights are one helicopter on two days)
        mine = [p for p in tracks if p.target_id == f"icao:{f['icao24'].iloc[0]}" and t0 - 10 <= p.t <= t1 + 10
                and p.status == "confirmed"]
        covered = len({p.t for p in mine}) * 2.0 / (t1 - t0)  # points are written every 2 s
        assert covered > 0.7, covered  # tracked for most of the flight
        lat = np.interp([p.t for p in mine], f["t"], f["latitude"])
        lon = np.interp([p.t for p in mine], f["t"], f["longitude"])
        err = np.hypot((np.array([p.lat for p in mine]) - lat) * 111_320,
                       (np.array([p.lon for p in mine]) - lon) * 111_320 * np.cos(np.radians(KYIV[0])))
        assert np.median(err) < 100.0


@pytest.mark.parametrize("run", ["sbs", "json"])
def test_manned_tracks_raise_no_alert_but_would_untagged(adsb_runs, run, tmp_path):
    d, _ = adsb_runs[run]
    res = runner.invoke(app, ["alerts", "--tracks", str(d / "tracks.jsonl"), "--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    assert formats.read_alerts(tmp_path / "a" / "alerts.jsonl") == []
    # with the reports too: the aircraft's own position reports do not alert as lone trusted reports
    res = runner.invoke(app, ["alerts", "--tracks", str(d / "tracks.jsonl"), "--sensors", str(d / "sensors.json"),
                              "--detections", str(d / "detections.jsonl"), "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert formats.read_alerts(tmp_path / "r" / "alerts.jsonl") == []
    # the same tracks without the tag do raise alerts: the policy, not the geometry, keeps them quiet
    tracks = formats.read_tracks(d / "tracks.jsonl")
    for p in tracks:
        p.cls = None
    formats.write_jsonl(tmp_path / "untagged.jsonl", tracks)
    res = runner.invoke(app, ["alerts", "--tracks", str(tmp_path / "untagged.jsonl"), "--out", str(tmp_path / "b")])
    assert res.exit_code == 0 and formats.read_alerts(tmp_path / "b" / "alerts.jsonl")


_json = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=8),
                     lambda c: st.lists(c, max_size=4) | st.dictionaries(st.sampled_from(
                         ["now", "aircraft", "hex", "lat", "lon", "alt_baro", "alt_geom", "seen_pos", "nac_p",
                          "category"]), c, max_size=6), max_leaves=20)


@settings(max_examples=150, deadline=None)
@given(doc=_json)
def test_random_aircraft_json_is_accepted_or_one_clear_error(tmp_path_factory, doc):
    p = tmp_path_factory.mktemp("acj") / "a.json"
    p.write_text(json.dumps(doc))
    try:
        res = adsb.read_aircraft_json(str(p))
    except FormatError as exc:
        assert "\n" not in str(exc)
        return
    assert all(-90 <= d.lat <= 90 and d.target_id.startswith("icao:") for d in res.detections)


@settings(max_examples=150, deadline=None)
@given(fields=st.lists(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=",\n\r"), max_size=12),
                       min_size=1, max_size=24),
       head=st.sampled_from(["MSG", "MSG,3", "SEL", "XYZ"]))
def test_random_sbs_lines_are_accepted_or_one_clear_error(tmp_path_factory, fields, head):
    p = tmp_path_factory.mktemp("sbsr") / "a.sbs"
    p.write_text(",".join([head, *fields]) + "\n")
    try:
        adsb.read_sbs(str(p))
    except FormatError as exc:
        assert "line 1" in str(exc) and "\n" not in str(exc)
