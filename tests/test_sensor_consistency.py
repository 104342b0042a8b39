"""A node whose bearings point at nothing in the fused picture is flagged in the status, and not dropped."""

from __future__ import annotations

import time

import numpy as np

from skytrace.batch import DetectionBatch, SensorTable, TrackSnapshot
from skytrace.model import Detection, Sensor
from skytrace.pipeline import StepResult
from skytrace.security.consistency import SensorConsistency


def _table() -> SensorTable:
    return SensorTable.from_sensors([
        Sensor(id=f"ac-{i}", kind="acoustic", lat=50.40, lon=30.50 + 0.03 * i, alt_m=160.0, bearing_sigma_deg=2.5,
               max_range_m=3000.0) for i in range(3)])


def _track(lat: float, lon: float) -> TrackSnapshot:
    one = np.ones(1)
    return TrackSnapshot(t=0.0, track=["T1"], status=["confirmed"], lat=one * lat, lon=one * lon, alt_m=one * 300,
                         ve=one * 0, vn=one * 0, vu=one * 0, pos_sigma_m=one * 100)


def test_bearings_to_a_confirmed_track_agree_and_bearings_to_nothing_are_flagged():
    table = _table()
    check = SensorConsistency(table)
    rng = np.random.default_rng(3)
    track = _track(50.41, 30.53)  # ~1.1 km north of ac-1
    t0 = 1_795_000_000.0
    for k in range(60):
        dets = [Detection(t=t0 + k, sensor="ac-1", bearing_deg=float(rng.normal(0.0, 2.0)) % 360),  # honest
                Detection(t=t0 + k, sensor="ac-0", bearing_deg=float(rng.normal(200.0, 2.0)))]  # to empty sky
        check.on_step(StepResult(t=t0 + k, tracks=track, detections=DetectionBatch.from_records(dets, table)))
    flags = check.flags()
    assert set(flags) == {"ac-0"} and flags["ac-0"]["reason"] == "bearings to no track"
    assert flags["ac-0"]["unexplained_fraction"] == 1.0
    # ac-2 said nothing: no evidence, no flag; and a flag fades once the node agrees again
    for k in range(60, 6000, 10):
        dets = [Detection(t=t0 + k, sensor="ac-0", bearing_deg=63.0)]  # toward the track (ENE of ac-0, 2.4 km)
        check.on_step(StepResult(t=t0 + k, tracks=track, detections=DetectionBatch.from_records(dets, table)))
    assert check.flags() == {}


def test_the_service_status_shows_the_flag_and_the_reports_still_reach_the_tracker():
    from skytrace.pipeline import Pipeline
    from skytrace.service.core import LiveService
    from skytrace.store import open_store

    table = _table()
    svc = LiveService(table=table, zones=None, stage=Pipeline(table), store=open_store(None), step_s=0.05)
    t0 = time.time()
    for k in range(30):
        svc.submit([Detection(t=t0 + k * 0.1, sensor="ac-2", bearing_deg=123.0)])
        svc.step_once(t0 + k * 0.1 + 0.05)
    st = svc.status()
    assert "ac-2" in st["sensor_flags"]
    assert st["tracker"]["detections_in"] == 30  # flagged, not dropped
