"""Cooperative identities in a simulated night: ADS-B of a real-speed airliner and of a drone that carries an
airliner's transponder, added to 10 minutes of the kyiv-night wave (400 acoustic nodes, 2 radars, the scenario's
drones and clutter), through the tracker, the identity check and the alert policy.

The simulator's acoustic nodes report bearings without a class, while the identity check needs engine classes
(what ``skytrace node``'s classifier reports). The test therefore classes the simulated reports as an imperfect
classifier would: a report caused by a drone is ``uav-engine`` with probability 0.8, a clutter report with 0.05
(seeded). Measured figures: docs/interop.md, "Spoofed transponders".
"""

from __future__ import annotations

import collections
import json
import math

import msgspec
import numpy as np

from skytrace.alerting.identity import ENGINE, IdentityCheck
from skytrace.batch import DetectionBatch, SensorTable
from skytrace.io import formats
from skytrace.io.identity import Identity, IdentityMap
from skytrace.model import Detection, Sensor
from skytrace.pipeline import Pipeline, PipelineConfig, run
from skytrace.zones import read_zones
from test_web import kyiv_wave  # noqa: F401  (fixture)

SPOOF, AIRLINER = "adsb:4b1805", "adsb:508035"
ENGINE_RECALL, CLUTTER_FALSE = 0.8, 0.05


def _scene(d, t_start: float, w0_s: float = 7500.0, dur_s: float = 600.0):
    """Reports of [t_start + w0_s, + dur_s) in arrival order with both transponders' reports; the spoofing drone
    is the simulated drone heard most by acoustic nodes and seen by no radar in the window."""
    w0, w1 = t_start + w0_s, t_start + w0_s + dur_s
    meta = json.loads((d / "meta.json").read_text())
    sensors = formats.read_sensors(d / "sensors.json")
    kind = {s.id: s.kind for s in sensors}
    sensors += [Sensor(id=SPOOF, kind="position", trusted=True), Sensor(id=AIRLINER, kind="position", trusted=True)]
    table = SensorTable.from_sensors(sensors)
    labels = np.load(d / "detection_labels.npy")
    rng = np.random.default_rng(5)
    heard, seen, win = collections.Counter(), collections.Counter(), []
    for det, lab in zip(formats.iter_detections(d / "detections.jsonl", formats.load_sensor_table(d / "sensors.json")),
                        labels.tolist(), strict=True):
        if not w0 <= (det.t_arrival or det.t) < w1:
            continue
        if kind[det.sensor] == "acoustic":
            if lab >= 0:
                heard[lab] += 1
            if rng.random() < (ENGINE_RECALL if lab >= 0 else CLUTTER_FALSE):
                det = msgspec.structs.replace(det, cls="uav-engine", class_conf=0.8)
        elif kind[det.sensor] == "radar" and lab >= 0:
            seen[lab] += 1
        win.append(det)
    drone = next(k for k, _n in heard.most_common() if seen[k] == 0)
    drone_id = meta["targets"][drone]["target"]
    truth = [p for p in formats.read_truth(d / "truth.jsonl") if p.target == drone_id and w0 <= p.t < w1]
    adsb = [Detection(t=p.t, sensor=SPOOF, lat=p.lat, lon=p.lon, alt_m=p.alt_m, pos_sigma_m=30.0, alt_sigma_m=30.0,
                      cls="manned", class_conf=1.0, target_id="icao:4b1805") for p in truth]
    # the airliner: 230 m/s at FL360 (10,973 m), heading 80 deg, over Kyiv, 1 position a second
    ts = np.arange(w0 + 30.0, w1 - 30.0, 1.0)
    s = 230.0 * (ts - ts[0])
    lat = 50.40 + s * math.cos(math.radians(80)) / 111_320.0
    lon = 29.70 + s * math.sin(math.radians(80)) / (111_320.0 * math.cos(math.radians(50.4)))
    adsb += [Detection(t=float(t), sensor=AIRLINER, lat=float(a), lon=float(o), alt_m=10_973.0, pos_sigma_m=30.0,
                       alt_sigma_m=30.0, cls="manned", class_conf=1.0, target_id="icao:508035")
             for t, a, o in zip(ts, lat, lon, strict=True)]
    dets = sorted(win + adsb, key=lambda x: x.t_arrival or x.t)
    return table, dets, drone_id, len(truth)


def test_an_airliner_is_believed_and_silent_a_spoofing_drone_is_flagged_in_the_kyiv_night_wave(kyiv_wave):  # noqa: F811
    d, t_start = kyiv_wave
    table, dets, drone_id, n_spoof = _scene(d, t_start)
    assert n_spoof > 300  # the spoofing drone flies (and broadcasts) for most of the window
    ids = IdentityMap({SPOOF: Identity("manned", "icao:4b1805"), AIRLINER: Identity("manned", "icao:508035")})
    check = IdentityCheck(table, ids)
    pipe = Pipeline(table, zones=read_zones(d / "zones.geojson"), config=PipelineConfig(alert_every_s=5.0),
                    identity=check)
    events, by_identity = [], collections.defaultdict(lambda: collections.defaultdict(collections.Counter))

    def on_step(res):
        events.extend(res.events)
        for i, tid in enumerate(res.tracks.target_id or []):
            if tid is not None and res.tracks.status[i] in ("confirmed", "coasting"):
                by_identity[tid][res.tracks.track[i]][res.tracks.identity_flag[i]] += 1

    run(pipe, [DetectionBatch.from_records(dets[k:k + 200], table) for k in range(0, len(dets), 200)], 1.0,
        on_step=on_step)
    # the airliner: tracked at 230 m/s and 11 km, tagged with its address, believed, in no alert
    air = by_identity["icao:508035"]
    assert sum(sum(c.values()) for c in air.values()) > 200
    assert all(set(c) == {None} for c in air.values())
    assert AIRLINER not in check.flagged
    raised = [e for e in events if e.kind in ("raise", "update")]
    assert raised  # the wave raises alerts in this window
    assert not any(set(e.tracks) & set(air) for e in raised)
    # the drone broadcasting an airliner's address where nodes hear a drone engine and no radar sees an aircraft
    assert check.flagged[SPOOF][0] == ENGINE, (drone_id, check.flagged)
    spoof = by_identity["icao:4b1805"]
    assert any(c[ENGINE] for c in spoof.values())
