"""Sensor families: the registry, optical cameras end to end, a new kind added by one class, motion models."""

from __future__ import annotations

import numpy as np
import pytest

from skytrace.batch import DetectionBatch, SensorTable
from skytrace.errors import SkytraceError
from skytrace.model import REQUIRED_DETECTION_FIELDS, Sensor
from skytrace.sensors import registry
from skytrace.sensors.family import BearingFamily
from skytrace.tracking import Tracker, TrackerConfig, motion
from test_tracking_scenarios import FRAME, T0, _enu, _node, _observe, _run, _truth


def test_builtin_kinds_keep_their_codes_and_declare_their_fields():
    assert registry.names()[:4] == ("acoustic", "radar", "optical", "position")
    assert REQUIRED_DETECTION_FIELDS["radar"] == ("bearing_deg", "elevation_deg", "range_m")
    assert registry.get("radar").trusted_by_default and not registry.get("acoustic").trusted_by_default
    with pytest.raises(ValueError, match=r"`kind` must be one of acoustic, radar, optical, position.*'sonar'"):
        Sensor(id="x", kind="sonar")
    with pytest.raises(ValueError, match="`range_sigma_m` is required for radar sensors"):
        Sensor(id="r", kind="radar", lat=50.0, lon=30.0, alt_m=100.0, bearing_sigma_deg=1.0)
    cam = Sensor(id="c", kind="optical", lat=50.0, lon=30.0, alt_m=100.0, bearing_sigma_deg=0.5)
    assert not cam.is_trusted and Sensor(id="c2", kind="optical", lat=50.0, lon=30.0, alt_m=100.0,
                                         bearing_sigma_deg=0.5, trusted=True).is_trusted


def _cameras() -> list[Sensor]:
    kw = {"kind": "optical", "bearing_sigma_deg": 0.5, "elevation_sigma_deg": 0.5, "max_range_m": 8000.0}
    return [_node("cam-a", -4000.0, -5000.0, **kw), _node("cam-b", 3000.0, -4000.0, **kw),
            _node("cam-c", 0.0, 3000.0, **kw)]


def test_three_optical_nodes_start_and_confirm_a_track_near_the_truth():
    table = SensorTable.from_sensors(_cameras())
    p0, v = [-3000.0, -2000.0, 400.0], [35.0, 30.0, 0.0]  # a straight flight past the three cameras, 150 s
    times = T0 + np.arange(0, 150, 2.0)
    det = _observe(table, [0, 1, 2], times, p0, v, np.random.default_rng(11))
    tr = Tracker(table, frame=FRAME, config=TrackerConfig(lag_s=2.0))
    snaps = _run(tr, det, T0 + 150)
    confirmed = [s for s in snaps if len(s)]
    assert confirmed, tr.stats
    assert max(len(s) for s in snaps) == 1  # one track, no ghost
    assert confirmed[0].t - T0 < 60.0  # confirmed within a minute of the first look
    errs = [np.linalg.norm(_enu(s)[0] - _truth(np.array([s.t]), p0, v)[0]) for s in confirmed[-20:]]
    assert np.sqrt(np.mean(np.square(errs))) < 100.0  # 3-D: elevation gives the height
    # one camera alone (untrusted by default) never confirms
    one = Tracker(table, frame=FRAME, config=TrackerConfig(lag_s=2.0))
    assert all(len(s) == 0 for s in _run(one, _observe(table, [0], times, p0, v, np.random.default_rng(12)),
                                         T0 + 150))


class RFDirectionFinder(BearingFamily):
    """The worked example of docs/tracking.md: an RF direction finder (bearing of a drone's datalink)."""

    name = "rf-df-test"
    trusted_by_default = False
    reach_factor = 1.0


def test_a_new_kind_is_one_class_and_its_registration():
    fam = registry.register(RFDirectionFinder())
    assert registry.get("rf-df-test") is fam and fam.code >= 4
    sensors = [_node(f"df-{i}", e, n, kind="rf-df-test", bearing_sigma_deg=1.0, max_range_m=8000.0)
               for i, (e, n) in enumerate([(-4000.0, -5000.0), (3000.0, -4000.0), (0.0, 3000.0)])]
    table = SensorTable.from_sensors(sensors)
    p0, v = [-3000.0, -2000.0, 400.0], [35.0, 30.0, 0.0]
    det = _observe(table, [0, 1, 2], T0 + np.arange(0, 150, 2.0), p0, v, np.random.default_rng(13), el=False)
    tr = Tracker(table, frame=FRAME, config=TrackerConfig(lag_s=2.0))
    confirmed = [s for s in _run(tr, det, T0 + 150) if len(s)]
    assert confirmed and len(confirmed[-1]) == 1
    err_h = np.linalg.norm((_enu(confirmed[-1])[0] - _truth(np.array([confirmed[-1].t]), p0, v)[0])[:2])
    assert err_h < 200.0


def test_motion_model_interface_and_imm_over_any_models():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(4, 6, 6))
    P = A @ np.swapaxes(A, 1, 2) + np.eye(6)
    x, dt = rng.normal(size=(4, 6)), rng.uniform(0, 5, 4)
    cv = motion.build("cv", q_h=2.0, q_v=0.1)
    xa, Pa = cv.predict(x, P, dt)
    xb, Pb = motion.predict(x, P, dt, 2.0, 0.1)
    assert np.allclose(xa, xb) and np.allclose(Pa, Pb)

    class Hover(motion.MotionModel):
        """A multirotor holding position: velocity decays, position wanders a little."""

        def predict(self, x, P, dt):
            F = np.tile(np.eye(6), (len(dt), 1, 1))
            decay = np.exp(-dt / 5.0)
            for k in range(3):
                F[:, k, k + 3] = 5.0 * (1 - decay)
                F[:, k + 3, k + 3] = decay
            Q = np.zeros_like(P)
            Q[:, [0, 1, 2], [0, 1, 2]] = (4.0 * dt)[:, None]
            Q[:, [3, 4, 5], [3, 4, 5]] = (1.0 * dt)[:, None]
            return np.einsum("nij,nj->ni", F, x), F @ P @ np.swapaxes(F, 1, 2) + Q

    sensors = [_node("r1", 0.0, 0.0, kind="radar"), _node("r2", 30_000.0, 0.0, kind="radar")]
    table = SensorTable.from_sensors(sensors)
    p0, v = [10_000.0, -8000.0, 800.0], [-10.0, 45.0, 0.0]
    times = T0 + np.arange(0, 120, 4.0)
    det = DetectionBatch.concat([_observe(table, [0], times, p0, v, rng), _observe(table, [1], times + 2, p0, v, rng)])
    cfg = TrackerConfig(lag_s=0.0, motion_models=(motion.ConstantVelocity(0.5, 0.05), Hover()),
                        imm_sojourn_s=(120.0, 60.0), imm_mu0=(0.5, 0.5))
    tr = Tracker(table, frame=FRAME, config=cfg)
    confirmed = [s for s in _run(tr, det, T0 + 120) if len(s)]
    assert confirmed and len(confirmed[-1]) == 1
    assert tr.tracks.mu.shape[1] == 2 and tr.tracks.mu[0, 0] > 0.9  # the flight is not a hover
    with pytest.raises(SkytraceError, match="3 motion models need"):
        Tracker(table, frame=FRAME, config=TrackerConfig(motion_models=(cv, cv, cv)))


def _radar_run(sensors, segments, t_end, cfg=None):
    """One radar (scan 4 s) observing a far reference target all along and the test target in ``segments``."""
    table = SensorTable.from_sensors(sensors)
    rng = np.random.default_rng(21)
    scans = T0 + np.arange(0, t_end, 4.0)
    ref = _observe(table, [0], scans, [-15_000.0, 15_000.0, 900.0], [20.0, -30.0, 0.0], rng)
    p0, v = [10_000.0, -8000.0, 800.0], [-10.0, 45.0, 0.0]
    parts = [ref] + [_observe(table, [0], scans[(scans >= T0 + a) & (scans < T0 + b)], p0, v, rng)
                     for a, b in segments]
    tr = Tracker(table, frame=FRAME, config=cfg or TrackerConfig(lag_s=0.0))
    return tr, _run(tr, DetectionBatch.concat(parts), T0 + t_end), p0, v


def test_a_scanning_sensor_that_stops_seeing_a_target_deletes_it_in_a_few_scans():
    radar = _node("r1", 0.0, 0.0, kind="radar")  # trusted, pd 0.8 by default
    tr, snaps, p0, v = _radar_run([radar], [(0, 100)], 200)
    near = [s for s in snaps if len(s) and np.min(np.linalg.norm(
        _enu(s)[:, :2] - _truth(np.array([s.t]), p0, v)[0, :2], axis=1)) < 2000]
    last_seen = max(s.t for s in near) - T0
    assert 100 <= last_seen <= 100 + 6 * 4.0 + 2  # gone after ~5 missed scans (not the 240 s timeout)
    assert tr.pd[0] == pytest.approx(0.8)  # no "pd" in sensors.json: the kind's default
    cfg = TrackerConfig(lag_s=0.0, existence_min=0.0)
    _, snaps3, _, _ = _radar_run([radar], [(0, 100)], 200, cfg)
    assert max(s.t for s in snaps3 if len(s) == 2) - T0 > last_seen + 20  # existence off: it coasts longer


def test_a_target_reacquired_after_a_gap_keeps_its_track_id():
    tr, snaps, p0, v = _radar_run([_node("r1", 0.0, 0.0, kind="radar")], [(0, 80), (140, 240)], 240)
    ids_near = set()
    for s in snaps:
        if len(s):
            d = np.linalg.norm(_enu(s)[:, :2] - _truth(np.array([s.t]), p0, v)[0, :2], axis=1)
            ids_near |= {s.track[i] for i in np.flatnonzero(d < 1000)}
    assert tr.stats["tracks_reacquired"] >= 1
    assert len(ids_near) == 1  # the same id before and after the 60 s gap


def test_early_reacquisition_gives_the_lost_id_back_before_full_confirmation():
    radar = _node("r1", 0.0, 0.0, kind="radar")
    back = []
    for hits in (3, 0):  # 0: early re-acquisition off
        tr, snaps, p0, v = _radar_run([radar], [(0, 80), (140, 240)], 240,
                                      TrackerConfig(lag_s=0.0, reacquire_min_hits=hits))
        ids, first = set(), None
        for s in snaps:
            if s.t > T0 + 140 and len(s):
                d = np.linalg.norm(_enu(s)[:, :2] - _truth(np.array([s.t]), p0, v)[0, :2], axis=1)
                ids |= {s.track[i] for i in np.flatnonzero(d < 1000)}
                first = first if first is not None or not (d < 1000).any() else s.t - T0
        back.append(first)
        assert len(ids) == 1  # the id of before the gap
    assert tr.stats.get("tracks_reacquired_early", 0) == 0
    assert back[0] <= back[1] - 4.0  # at least one 4 s scan sooner


def test_sprt_confirms_a_scanning_sensors_track_after_fewer_hits():
    radar = _node("r1", 0.0, 0.0, kind="radar", pd=0.95)
    times = []
    for cfg in (TrackerConfig(lag_s=0.0), TrackerConfig(lag_s=0.0, sprt_alpha=1e-30)):  # the second: SPRT off
        _, snaps, _, _ = _radar_run([radar], [(0, 100)], 100, cfg)
        times.append(min(s.t for s in snaps if len(s) == 2) - T0)
    assert times[0] < times[1] - 4.0  # at least one 4 s scan earlier
