"""Cursor on Target: schema-valid events, the export command, delivery to a TCP listener, hostile input."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from typer.testing import CliRunner

from interop_fixtures import TcpListener, sample_tracks
from skytrace.batch import TrackSnapshot
from skytrace.cli import app
from skytrace.errors import FormatError
from skytrace.interop import cot
from skytrace.io import formats
from skytrace.model import TrackPoint
from skytrace.pipeline import StepResult

SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).parent / "data" / "cot_event.xsd")))
runner = CliRunner()


def _valid(line: bytes) -> etree._Element:
    ev = etree.fromstring(line)
    SCHEMA.assertValid(ev)
    return ev


def test_export_cot_one_schema_valid_event_per_line(tmp_path):
    pts = sample_tracks()
    formats.write_jsonl(tmp_path / "tracks.jsonl", pts)
    res = runner.invoke(app, ["export", "--tracks", str(tmp_path / "tracks.jsonl"), "--format", "cot",
                              "--out", str(tmp_path / "tracks.cot")])
    assert res.exit_code == 0, res.output
    lines = (tmp_path / "tracks.cot").read_bytes().splitlines()
    assert len(lines) == len(pts)
    by_uid: dict[str, list] = {}
    for line in lines:
        ev = _valid(line)
        by_uid.setdefault(ev.get("uid"), []).append(ev)
    assert set(by_uid) == {"skytrace.T000001", "skytrace.T000002", "skytrace.T000003"}  # stable uid per track
    types = {uid: {e.get("type") for e in evs} for uid, evs in by_uid.items()}
    assert types == {"skytrace.T000001": {"a-u-A"}, "skytrace.T000002": {"a-h-A-M-F-Q"},
                     "skytrace.T000003": {"a-n-A-C"}}
    ev = by_uid["skytrace.T000002"][0]
    assert ev.get("how") == "m-f"
    t, stale = cot.parse_cot_time(ev.get("time")), cot.parse_cot_time(ev.get("stale"))
    assert stale - t == pytest.approx(3 * 2.0 if 3 * 2.0 >= 5 else 5.0)  # 3 update periods of 2 s
    pt = ev.find("point")
    assert float(pt.get("ce")) == 300.0 and float(pt.get("le")) == 20.0  # sqrt(400) from the covariance
    trk = ev.find("detail/track")
    assert float(trk.get("course")) == pytest.approx(270.0) and float(trk.get("speed")) == pytest.approx(50.0)
    assert "icao:508035" in by_uid["skytrace.T000003"][0].find("detail/remarks").text


def test_zone_shapes_are_valid_events(tmp_path, ):
    from skytrace.model import Alert
    from skytrace.zones import builtin_oblasts

    zones = builtin_oblasts()
    zid = zones.ids[0]
    formats.write_jsonl(tmp_path / "tracks.jsonl", sample_tracks())
    formats.write_jsonl(tmp_path / "alerts.jsonl", [Alert(zone=zid, start=1_790_000_002.0, end=1_790_000_600.0,
                                                          level="warning", tracks=["T000002"])])
    zones.write(tmp_path / "zones.geojson")
    res = runner.invoke(app, ["export", "--tracks", str(tmp_path / "tracks.jsonl"), "--format", "cot",
                              "--zones", str(tmp_path / "zones.geojson"), "--alerts", str(tmp_path / "alerts.jsonl"),
                              "--out", str(tmp_path / "all.cot")])
    assert res.exit_code == 0, res.output
    shapes = [_valid(x) for x in (tmp_path / "all.cot").read_bytes().splitlines()]
    shapes = [e for e in shapes if e.get("type") == "u-d-f"]
    assert len(shapes) == 1 and shapes[0].get("uid") == f"skytrace.zone.{zid}"
    assert len(shapes[0].findall("detail/link")) >= 4
    assert cot.parse_cot_time(shapes[0].get("stale")) == pytest.approx(1_790_000_600.0)


def test_cot_sink_delivers_to_a_local_tcp_listener():
    pts = sample_tracks()
    listener = TcpListener()
    sink = cot.CotSink(cot.CotSinkConfig(url=f"tcp://127.0.0.1:{listener.port}", stale_s=10.0))
    times = sorted({p.t for p in pts})
    for t in times:
        sink.on_step(StepResult(t, TrackSnapshot.from_records(t, [p for p in pts if p.t == t])))
    sink.close()
    deadline = time.monotonic() + 60
    while listener.received().count(b"</event>") < len(pts) and time.monotonic() < deadline:
        time.sleep(0.05)
    listener.close()
    events = cot.parse_events(listener.received())
    assert len(events) == len(pts) and sink.stats["failed"] == 0 and listener.connections == 1
    want = {(f"skytrace.{p.track}", p.t): p for p in pts}
    for e in events:
        p = want[(e["uid"], e["time"])]
        assert abs(e["lat"] - p.lat) < 1e-7 and abs(e["lon"] - p.lon) < 1e-7 and abs(e["hae"] - p.alt_m) < 0.05
        assert e["stale"] - e["time"] == pytest.approx(10.0)


def test_cot_sink_draws_alert_zones():
    from skytrace.alerting.engine import AlertEvent
    from skytrace.zones import builtin_oblasts

    zones = builtin_oblasts()
    z = zones.ids[5]
    listener = TcpListener()
    sink = cot.CotSink(cot.CotSinkConfig(url=f"tcp://127.0.0.1:{listener.port}", zones=zones, alert_stale_s=600))
    empty = TrackSnapshot.from_records(0.0, [])
    sink.on_step(StepResult(100.0, empty, [AlertEvent(100.0, z, "raise", "warning", ["T1"], 0.5, 300.0, "r",
                                                      "skytrace-000001", 100.0)]))
    sink.on_step(StepResult(400.0, empty, [AlertEvent(400.0, z, "clear", "clear", ["T1"], 0.0, None, "r",
                                                      "skytrace-000001", 100.0)]))
    sink.close()
    deadline = time.monotonic() + 60
    while listener.received().count(b"</event>") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    listener.close()
    lines = listener.received().splitlines()
    evs = [_valid(x) for x in lines]
    assert [e.get("uid") for e in evs] == [f"skytrace.zone.{z}"] * 2 and all(e.get("type") == "u-d-f" for e in evs)
    assert evs[0].find("detail/strokeColor").get("value") == "-65536"  # red while alerted
    assert cot.parse_cot_time(evs[0].get("stale")) == pytest.approx(700.0)
    assert evs[1].find("detail/strokeColor").get("value") != "-65536"
    assert 4 <= len(evs[0].findall("detail/link")) <= 200


def test_cot_sink_survives_a_missing_server():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there
    sink = cot.CotSink(cot.CotSinkConfig(url=f"tcp://127.0.0.1:{port}"))
    pts = sample_tracks()[:3]
    sink.on_step(StepResult(pts[0].t, TrackSnapshot.from_records(pts[0].t, pts)))  # returns at once
    sink.close()
    assert sink.stats["failed"] == 1 and sink.stats["sent"] == 0


@pytest.mark.parametrize("data, why", [
    (b"<event version='2.0' uid='a' type='a-u-A' how='m-f'", "truncated"),
    (b"<event version='2.0'><point lat='1'/></event>", "missing"),
    (b"\x00\xff garbage", "trailing bytes"),
    (b"<event>" + b"x" * (1 << 20) + b"</event>", "1 MiB"),
    (b"<?xml version='1.0'?><!DOCTYPE e [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;'>]>"
     b"<event uid='&b;'></event>", "malformed"),  # the DOCTYPE is not part of an event: entities never expand
    (b"<event><point></event>", "malformed"),
])
def test_malformed_cot_is_a_clear_error(data, why):
    with pytest.raises(FormatError, match=why):
        cot.parse_events(data, "feed")


@settings(max_examples=200, deadline=None)
@given(lat=st.floats(-89.9, 89.9), lon=st.floats(-179.9, 179.9), alt=st.floats(-400, 20000),
       ve=st.floats(-300, 300), vn=st.floats(-300, 300), sig=st.floats(0, 50000), t=st.floats(0, 4e9),
       cls=st.sampled_from([None, "shahed", "manned", "cooperative-uav", "bird"]),
       track=st.text(st.characters(min_codepoint=33, max_codepoint=0x2FFF, exclude_characters="<>&\"'"),
                     min_size=1, max_size=20))
def test_cot_round_trip_property(lat, lon, alt, ve, vn, sig, t, cls, track):
    s = TrackPoint(t=t, track=track, status="confirmed", lat=lat, lon=lon, alt_m=alt, ve=ve, vn=vn, vu=0.0,
                   pos_sigma_m=sig, cls=cls)
    line = cot.to_bytes(cot.track_event(s, 6.0))
    SCHEMA.assertValid(etree.fromstring(line))
    (e,) = cot.parse_events(line)
    assert e["uid"] == f"skytrace.{track}" and e["type"] == cot.cot_type(cls)
    assert abs(e["lat"] - lat) <= 5.1e-8 and abs(e["lon"] - lon) <= 5.1e-8 and abs(e["hae"] - alt) <= 0.051
    assert abs(e["time"] - t) <= 0.0006 and abs(e["speed"] - (ve * ve + vn * vn) ** 0.5) <= 0.006
