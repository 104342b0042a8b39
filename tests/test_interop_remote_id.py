"""Remote ID (ASTM F3411 / EN 4709-002): message round trips, captured-frame import, malformed frames."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from skytrace.cli import app
from skytrace.errors import FormatError
from skytrace.interop import remote_id as rid
from skytrace.io import formats

runner = CliRunner()
T0 = 1_790_000_000.0  # receive times (UNIX s)


def _tenths(t: float) -> int:
    return round((t % 3600) * 10)


def test_message_layouts():
    b = rid.encode_basic_id("1581F5FKD229400HV", id_type=1, ua_type=2)
    assert len(b) == 25 and b[0] == 0x02 and b[1] == 0x12 and b[2:19] == b"1581F5FKD229400HV"
    loc = rid.encode_location(50.4501, 30.5234, 123.5, 1234, direction_deg=270, speed_mps=12.25, vspeed_mps=-1.5,
                              alt_baro_m=120.0)
    assert len(loc) == 25 and loc[0] == 0x12
    assert loc[1] & 0x02 and loc[2] == 90  # E/W flag set: 270 = 90 + 180
    assert loc[3] == 49 and loc[4] == 0xFD  # 12.25 / 0.25; -1.5 / 0.5 as int8
    assert int.from_bytes(loc[5:9], "little", signed=True) == 504501000
    assert int.from_bytes(loc[15:17], "little") == round((123.5 + 1000) / 0.5)
    m = rid.decode_message(loc)
    assert m.direction_deg == 270.0 and m.speed_mps == 12.25 and m.vspeed_mps == -1.5 and m.tenths_after_hour == 1234
    fast = rid.decode_message(rid.encode_location(1.0, 1.0, None, None, speed_mps=100.0))
    assert fast.speed_mps == pytest.approx(100.0, abs=0.375) and fast.alt_geo_m is None
    assert fast.tenths_after_hour is None and fast.direction_deg is None
    pack = rid.encode_pack([b, loc, rid.encode_operator_id("FIN87astrdge12k8")])
    msgs = rid.decode_frame(pack)
    assert [type(x).__name__ for x in msgs] == ["BasicId", "Location", "OperatorId"]
    assert msgs[2].operator_id == "FIN87astrdge12k8"


def test_import_captured_frames(tmp_path):
    lines = ["# a receiver's capture: time, source MAC, frame"]
    for k in range(20):  # drone A: message packs (Basic ID + Location), 1 Hz
        t = T0 + k
        pack = rid.encode_pack([rid.encode_basic_id("DRONE-A-SERIAL"),
                                rid.encode_location(50.40 + 1e-4 * k, 30.50, 150.0 + k, _tenths(t - 0.2), h_acc=10,
                                                    v_acc=4)])
        lines.append(f"{t:.3f} aa:bb:cc:00:00:01 {pack.hex()}")
    t = T0 + 1.5  # drone B: single messages, System first gives the hour, no receive time on the lines
    lines.append(rid.encode_system(T0).hex())
    lines.append(rid.encode_basic_id("DRONE-B").hex(" "))
    lines.append(rid.encode_location(50.0, 30.0, None, _tenths(t), alt_baro_m=80.0, h_acc=7).hex())
    (tmp_path / "rid.txt").write_text("\n".join(lines) + "\n")
    res = runner.invoke(app, ["import", "--format", "remote-id", "--in", str(tmp_path / "rid.txt"),
                              "--out", str(tmp_path / "detections.jsonl"),
                              "--sensors-out", str(tmp_path / "sensors.json")])
    assert res.exit_code == 0, res.output
    assert runner.invoke(app, ["check", str(tmp_path)]).exit_code == 0
    table = formats.load_sensor_table(tmp_path / "sensors.json")
    dets = list(formats.iter_detections(tmp_path / "detections.jsonl", table))
    a = [d for d in dets if d.target_id == "rid:DRONE-A-SERIAL"]
    b = [d for d in dets if d.target_id == "rid:DRONE-B"]
    assert len(a) == 20 and len(b) == 1 and all(d.cls == "cooperative-uav" for d in dets)
    assert a[3].t == pytest.approx(T0 + 3 - 0.2, abs=0.051) and a[3].lat == pytest.approx(50.4003, abs=1e-7)
    assert a[0].pos_sigma_m == pytest.approx(10 / 2.4477, rel=1e-3) and a[0].alt_sigma_m == pytest.approx(10 / 1.96)
    assert b[0].alt_m == 80.0 and b[0].t == pytest.approx(t, abs=0.051)
    assert b[0].pos_sigma_m == pytest.approx(185.2 / 2.4477, rel=1e-3)


def test_time_resolution_across_the_hour():
    assert rid._resolve_time(35990, 7200.5) == pytest.approx(3600 + 3599.0)  # just before the hour of the receiver
    assert rid._resolve_time(5, 7199.0) == pytest.approx(7200.5)  # just after


GOOD = rid.encode_location(50.0, 30.0, 100.0, 10)


@pytest.mark.parametrize("line, why", [
    (GOOD.hex()[:-2], "24 bytes"),
    (GOOD.hex() + "00", "26 bytes"),
    ("zz" * 25, "hexadecimal"),
    ((bytes([0x92]) + GOOD[1:]).hex(), "type 0x9"),
    ((bytes([0x17]) + GOOD[1:]).hex(), "version 7"),
    ((bytes([0xF2, 25, 3]) + GOOD * 2).hex(), "truncated message pack"),
    ((bytes([0xF2, 24, 1]) + GOOD).hex(), "size 24"),
    ((bytes([0xF2, 25, 0])).hex(), "0 messages"),
    ((bytes([0xF2, 25, 1]) + bytes([0xF2]) + GOOD[1:]).hex(), "inside a message pack"),
    (rid.encode_location(50.0, 30.0, 100.0, 10)[:21].hex() + "ffa0" + "0000", "past the hour"),
    ((GOOD[:5] + (1_000_000_000).to_bytes(4, "little", signed=True) + GOOD[9:]).hex(), "latitude 100"),
    ("ab" * 3000, "over the 4096"),
    (GOOD.hex(), "needs a receive time"),
])
def test_malformed_frames_are_clear_errors(tmp_path, line, why):
    (tmp_path / "bad.txt").write_text(line + "\n")
    res = runner.invoke(app, ["import", "--format", "remote-id", "--in", str(tmp_path / "bad.txt"),
                              "--out", str(tmp_path / "d.jsonl")])
    assert isinstance(res.exception, FormatError), res.output
    assert why in str(res.exception) and "line 1" in str(res.exception)
    res = runner.invoke(app, ["import", "--format", "remote-id", "--in", str(tmp_path / "bad.txt"),
                              "--out", str(tmp_path / "d.jsonl"), "--skip-bad"])
    assert res.exit_code == 0 and "1 bad frames" in res.output


@settings(max_examples=300, deadline=None)
@given(lat=st.floats(-90, 90).filter(lambda x: abs(x) > 1e-6), lon=st.floats(-180, 180).filter(lambda x: abs(x) > 1e-6),
       alt=st.one_of(st.none(), st.floats(-999, 31000)), tenths=st.one_of(st.none(), st.integers(0, 36000)),
       direction=st.one_of(st.none(), st.floats(0, 359.4)), speed=st.one_of(st.none(), st.floats(0, 254)),
       vs=st.one_of(st.none(), st.floats(-31, 31)), h_acc=st.integers(0, 12), v_acc=st.integers(0, 6))
def test_location_round_trip_property(lat, lon, alt, tenths, direction, speed, vs, h_acc, v_acc):
    m = rid.decode_frame(rid.encode_location(lat, lon, alt, tenths, direction, speed, vs, h_acc=h_acc,
                                             v_acc=v_acc))[0]
    assert abs(m.lat - lat) <= 0.5e-7 + 1e-12 and abs(m.lon - lon) <= 0.5e-7 + 1e-12
    assert (m.alt_geo_m is None) == (alt is None) and (alt is None or abs(m.alt_geo_m - alt) <= 0.25)
    assert m.tenths_after_hour == tenths and m.h_acc == h_acc and m.v_acc == v_acc
    assert (m.direction_deg is None) == (direction is None)
    if direction is not None:
        assert abs((m.direction_deg - direction + 180) % 360 - 180) <= 0.5
    if speed is not None:
        assert abs(m.speed_mps - speed) <= (0.125 if speed <= 63.75 else 0.375) + 1e-9
    if vs is not None:
        assert abs(m.vspeed_mps - vs) <= 0.25 + 1e-9


@settings(max_examples=200, deadline=None)
@given(uas=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20),
       t=st.integers(rid.SYSTEM_EPOCH + 1, rid.SYSTEM_EPOCH + 2**31))  # 0 means "not set"
def test_identity_messages_round_trip(uas, t):
    basic, sysm, op = rid.decode_frame(rid.encode_pack([rid.encode_basic_id(uas), rid.encode_system(t),
                                                        rid.encode_operator_id(uas)]))
    assert basic.uas_id == uas and op.operator_id == uas and sysm.timestamp == t


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_random_frames_never_crash(data):
    try:
        msgs = rid.decode_frame(data)
    except rid.RemoteIdError:
        return
    for m in msgs:
        if isinstance(m, rid.Location) and m.lat is not None:
            assert abs(m.lat) <= 90 and math.isfinite(m.lat)
