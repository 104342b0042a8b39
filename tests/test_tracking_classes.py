"""Motion limits per target class: a multirotor may hover, a Shahed may not, an airliner may fly at 230 m/s."""

from __future__ import annotations

import numpy as np
import pytest

from skytrace import target_classes
from skytrace.batch import DETECTION_CLASS_CODE, DetectionBatch, SensorTable
from skytrace.model import Detection, Sensor
from skytrace.tracking import Tracker, TrackerConfig
from test_tracking_scenarios import FRAME, T0, _enu, _node, _observe, _run


def _radar_hover(cls: str | None, seed: int = 3):
    """One drone radar (scan 2 s) sees an object hovering 6 km away for 120 s, reported with class ``cls``."""
    table = SensorTable.from_sensors([_node("radar", 0.0, 0.0, kind="radar")])
    times = T0 + np.arange(0, 120, 2.0)
    p0 = [4000.0, 4500.0, 300.0]
    det = _observe(table, [0], times, p0, [0.0, 0.0, 0.0], np.random.default_rng(seed))
    det.cls_code[:] = DETECTION_CLASS_CODE.get(cls, -2) if cls else -1
    tr = Tracker(table, frame=FRAME, config=TrackerConfig(lag_s=0.0))
    return _run(tr, det, T0 + 120), np.asarray(p0), tr


@pytest.mark.parametrize("cls", ["uav-multirotor", "cooperative-uav"])
def test_a_hovering_multirotor_seen_by_a_radar_gets_a_confirmed_track(cls):
    """A drone radar that classifies its plots (micro-Doppler) as a multirotor: the hover is allowed."""
    snaps, p0, _ = _radar_hover(cls)
    confirmed = [s for s in snaps if len(s)]
    assert confirmed and confirmed[0].t - T0 < 30.0
    assert max(len(s) for s in snaps) == 1
    last = confirmed[-1]
    assert np.linalg.norm(_enu(last)[0, :2] - p0[:2]) < 150.0
    assert np.hypot(last.ve[0], last.vn[0]) < 5.0


@pytest.mark.parametrize(("cls", "seed"), [("shahed", 3), ("shahed", 4), ("uav-engine", 5), ("decoy", 6)])
def test_a_shahed_class_track_may_not_hover(cls, seed):
    snaps, _, tr = _radar_hover(cls, seed)
    assert all(len(s) == 0 for s in snaps)  # never confirmed ...
    tentative = tr.snapshot(T0 + 119).with_status("tentative")
    assert len(tentative) == 1  # ... but still shown as a tentative track


def test_an_airliner_at_230_mps_from_ads_b_gets_a_confirmed_track():
    sensors = [Sensor(id="adsb:4b43ac", kind="position", trusted=True)]
    table = SensorTable.from_sensors(sensors)
    rng = np.random.default_rng(5)
    times = T0 + np.arange(0, 90, 1.0)
    v = np.array([160.0, 165.0, 0.0])  # 230 m/s ground speed at FL330
    truth = np.array([-20_000.0, -15_000.0, 10_000.0]) + (times - T0)[:, None] * v
    lat, lon, alt = FRAME.to_geodetic(*(truth + rng.normal(0, 15.0, truth.shape)).T)
    dets = [Detection(t=float(t), sensor="adsb:4b43ac", lat=float(a), lon=float(o), alt_m=float(h), pos_sigma_m=20.0,
                      alt_sigma_m=30.0, cls="manned", class_conf=1.0, target_id="icao:4b43ac")
            for t, a, o, h in zip(times, lat, lon, alt, strict=True)]
    batch = DetectionBatch.from_records(dets, table)
    assert (batch.cls_code == DETECTION_CLASS_CODE["manned"]).all()
    tr = Tracker(table, frame=FRAME, config=TrackerConfig(lag_s=0.0))
    snaps = _run(tr, batch, T0 + 90)
    confirmed = [s for s in snaps if len(s)]
    assert confirmed and confirmed[0].t - T0 < 15.0
    assert {s.track[0] for s in confirmed} == {confirmed[0].track[0]}  # one track all along
    last = confirmed[-1]
    assert np.hypot(last.ve[0], last.vn[0]) == pytest.approx(230.0, abs=10.0)
    assert last.alt_m[0] > 9000.0  # above the drones' altitude ceiling
    # the same reports without the class are not believed (faster than the threat window): no confirmed track
    batch.cls_code[:] = -1
    plain = Tracker(table, frame=FRAME, config=TrackerConfig(lag_s=0.0))
    assert all(len(s) == 0 for s in _run(plain, batch, T0 + 90))


def test_class_registry_names_aliases_and_new_classes():
    assert target_classes.code("Shahed") == target_classes.code("owa-uav") >= 0
    assert target_classes.code("aircraft") == target_classes.code("manned")
    assert target_classes.code("other") == -1 and target_classes.code(None) == -1
    lim = target_classes.limits(np.array([target_classes.code("multirotor"), -1]),
                                {"min_speed_mps": 12.0, "max_speed_mps": 120.0, "delete_speed_mps": 150.0,
                                 "init_vel_sigma_mps": 45.0, "max_agl_m": 6000.0})
    assert lim["min_speed_mps"].tolist() == [0.0, 12.0] and lim["init_vel_sigma_mps"].tolist() == [20.0, 45.0]
    with pytest.raises(ValueError, match="already registered"):
        target_classes.register(target_classes.TargetClass("quadcopter", 0.0, 30.0, 40.0))
