"""Transponder spoofing: an identity whose reports the other evidence contradicts is flagged and does not silence
alerts; an honest aircraft stays quiet (the pipeline with the tracker, the evidence policy and IdentityCheck)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from skytrace import geo
from skytrace.alerting.identity import ENGINE, JUMP, IdentityCheck
from skytrace.batch import DetectionBatch, SensorTable
from skytrace.io.identity import Identity, IdentityMap
from skytrace.model import Detection, Sensor
from skytrace.pipeline import Pipeline, PipelineConfig, run
from skytrace.zones import read_zones

T0 = 1_790_000_000.0
DUR_S = 420
SPEED = 50.0  # m/s, north: a Shahed-class drone
LAT0, LON0, ALT = 50.00, 30.50, 300.0
RADAR = (49.95, 30.70, 150.0)


def truth(t: np.ndarray):
    return LAT0 + SPEED * (t - T0) / 111_320.0, np.full(t.shape, LON0)


def _zones(tmp_path):
    feats = []
    for k, lat in enumerate((50.20, 50.30)):  # two cells on the drone's way, reached within the policy's window
        ring = [[30.40, lat], [30.60, lat], [30.60, lat + 0.1], [30.40, lat + 0.1], [30.40, lat]]
        feats.append({"type": "Feature", "properties": {"id": f"cell-{k}", "name": f"cell {k}", "shelter_s": 60},
                      "geometry": {"type": "Polygon", "coordinates": [ring]}})
    p = tmp_path / "zones.geojson"
    p.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return read_zones(p)


def _scenario(engine: bool, radar: bool, jump: bool = False, seed: int = 11):
    rng = np.random.default_rng(seed)
    sensors = [Sensor(id="adsb:abcdef", kind="position", trusted=True)]
    nodes = [(f"node-{i}-{j}", LAT0 - 0.02 + 0.036 * i, LON0 + dx)
             for i in range(8) for j, dx in enumerate((-0.05, 0.05))]  # every 4 km, 3.6 km either side of the path
    sensors += [Sensor(id=n, kind="acoustic", lat=la, lon=lo, alt_m=150.0, bearing_sigma_deg=3.0)
                for n, la, lo in nodes]
    sensors.append(Sensor(id="radar-1", kind="radar", lat=RADAR[0], lon=RADAR[1], alt_m=RADAR[2],
                          bearing_sigma_deg=0.2, range_sigma_m=50.0, elevation_sigma_deg=1.0, max_range_m=60_000.0))
    dets: list[Detection] = []
    for t in np.arange(T0, T0 + DUR_S, 1.0):
        lat, lon = (float(x[0]) for x in truth(np.array([t])))
        if jump and abs(t - (T0 + 200)) < 0.5:
            lat += 0.3  # one position 33 km off: a replayed or invented report
        dets.append(Detection(t=float(t), sensor="adsb:abcdef", lat=lat, lon=lon, alt_m=ALT, pos_sigma_m=30.0,
                              alt_sigma_m=30.0, cls="manned", class_conf=1.0, target_id="icao:abcdef"))
        if radar and int(t) % 4 == 0:
            az, el, r = geo.aer(RADAR[0], RADAR[1], RADAR[2], lat, lon, ALT)
            dets.append(Detection(t=float(t), sensor="radar-1", bearing_deg=float(az) % 360, elevation_deg=float(el),
                                  range_m=float(r)))
        if engine and int(t) % 2 == 0:
            for n, la, lo in nodes:
                az, el, r = geo.aer(la, lo, 150.0, lat, lon, ALT)
                if r < 7000.0:
                    dets.append(Detection(t=float(t) + float(r) / 343.0, sensor=n,
                                          bearing_deg=float(az + rng.normal(0, 2.0)) % 360.0, snr_db=12.0,
                                          cls="uav-engine", class_conf=0.9))
    dets.sort(key=lambda d: d.t)
    return SensorTable.from_sensors(sensors), dets


def _run(tmp_path, engine: bool, radar: bool = False, jump: bool = False):
    table, dets = _scenario(engine, radar, jump)
    identities = IdentityMap({"adsb:abcdef": Identity("manned", "icao:abcdef")})
    check = IdentityCheck(table, identities)
    pipe = Pipeline(table, zones=_zones(tmp_path), config=PipelineConfig(alert_every_s=5.0), identity=check)
    events, tagged = [], {}

    def on_step(res):
        events.extend(res.events)
        for i, tid in enumerate(res.tracks.target_id or []):
            if tid is not None and res.tracks.status[i] in ("confirmed", "coasting"):
                tagged[res.tracks.track[i]] = res.tracks.identity_flag[i]

    batches = [DetectionBatch.from_records(dets[k:k + 200], table) for k in range(0, len(dets), 200)]
    run(pipe, batches, 1.0, on_step=on_step)
    return check, events, tagged


@pytest.mark.parametrize("radar", [False, True])
def test_an_honest_aircraft_is_believed_and_raises_no_alert(tmp_path, radar):
    check, events, tagged = _run(tmp_path, engine=False, radar=radar)
    assert tagged and all(flag is None for flag in tagged.values())  # its track carries its identity, believed
    assert not check.flagged
    assert [e for e in events if e.kind == "raise"] == []


def test_a_spoofed_transponder_on_a_drone_is_flagged_and_alerts(tmp_path):
    """A Shahed-class drone broadcasting an airliner's ADS-B: nodes hear its engine, no radar sees an aircraft."""
    check, events, tagged = _run(tmp_path, engine=True)
    assert check.flagged["adsb:abcdef"][0] == ENGINE
    assert tagged and ENGINE in tagged.values()
    raised = [e for e in events if e.kind == "raise"]
    assert {e.zone for e in raised} == {"cell-0", "cell-1"}
    flagged_tracks = {t for t, f in tagged.items() if f == ENGINE}
    assert any(set(e.tracks) & flagged_tracks for e in raised)  # the spoofer's own track raised them


def test_the_same_drone_with_its_identity_believed_would_have_been_silenced(tmp_path, monkeypatch):
    """Control: with the cross-check disabled the claimed identity hides the drone's track from the policy (the
    danger the check exists for); the acoustic reports alone raise at most Possible alerts without that track."""
    monkeypatch.setattr(IdentityCheck, "_engine_without_radar", lambda self, lat, lon: False)
    check, events, tagged = _run(tmp_path, engine=True)
    assert not check.flagged and tagged and all(f is None for f in tagged.values())
    assert not any(set(e.tracks) & set(tagged) for e in events)


def test_a_radar_seeing_the_claimed_aircraft_keeps_the_claim(tmp_path):
    check, _events, _tagged = _run(tmp_path, engine=True, radar=True)
    assert "adsb:abcdef" not in check.flagged or check.flagged["adsb:abcdef"][0] != ENGINE


def test_a_position_jump_is_flagged(tmp_path):
    check, _events, _tagged = _run(tmp_path, engine=False, jump=True)
    assert check.flagged["adsb:abcdef"][0] == JUMP


def test_a_flagged_claim_is_suspect_in_cot():
    from skytrace.interop.cot import SUSPECT_AIR, track_event
    from skytrace.model import TrackPoint

    p = TrackPoint(t=T0, track="T000007", status="confirmed", lat=50.1, lon=30.5, alt_m=300.0, ve=0.0, vn=50.0,
                   vu=0.0, pos_sigma_m=50.0, cls="manned", target_id="icao:abcdef", identity_flag=ENGINE)
    ev = track_event(p, 15.0)
    assert ev.get("type") == SUSPECT_AIR and "not believed" in ev.find("detail/remarks").text
    p.identity_flag = None
    assert track_event(p, 15.0).get("type") == "a-n-A-C"
