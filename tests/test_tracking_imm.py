"""Tracker: corroboration and plausibility rules for confirmation, and the IMM manoeuvre model."""

from __future__ import annotations

import numpy as np

from skytrace.batch import DetectionBatch, SensorTable
from skytrace.geo import aer_from_ecef, enu_rotation
from skytrace.tracking import Tracker, TrackerConfig
from test_tracking_scenarios import FRAME, T0, _enu, _node, _observe, _run


def test_two_sensors_confirm_only_with_repeated_support_from_each():
    """An untrusted radar's track that one stray bearing crosses is not corroborated; repeated bearings are."""
    sensors = [_node("r1", 0.0, 0.0, kind="radar"), _node("mic", 9000.0, -6000.0, max_range_m=6000.0)]
    table = SensorTable.from_sensors(sensors)
    p0, v = [10_000.0, -8000.0, 800.0], [-10.0, 45.0, 0.0]
    radar = _observe(table, [0], T0 + np.arange(0, 120, 4.0), p0, v, np.random.default_rng(8))
    once = _observe(table, [1], T0 + np.array([30.0]), p0, v, np.random.default_rng(9))
    untrusted = TrackerConfig(lag_s=0.0, trust_sensors=False)
    tr = Tracker(table, frame=FRAME, config=untrusted)
    assert all(len(s) == 0 for s in _run(tr, DetectionBatch.concat([radar, once]), T0 + 120))
    assert tr.stats["assigned"] > 20  # the radar plots were tracked all along

    often = _observe(table, [1], T0 + np.arange(20.0, 60.0, 2.0), p0, v, np.random.default_rng(9))
    tr = Tracker(table, frame=FRAME, config=untrusted)
    snaps = _run(tr, DetectionBatch.concat([radar, often]), T0 + 120)
    assert any(len(s) == 1 for s in snaps)


def test_a_hovering_object_is_not_confirmed():
    """Two radars agreeing on something that does not move (a confuser): one-way attack drones do not hover."""
    sensors = [_node("r1", 0.0, 0.0, kind="radar"), _node("r2", 30_000.0, 0.0, kind="radar")]
    table = SensorTable.from_sensors(sensors)
    rng = np.random.default_rng(10)
    times = T0 + np.arange(0, 200, 4.0)
    still = DetectionBatch.concat([_observe(table, [0], times, [12_000.0, 9000.0, 600.0], [0.0, 0.0, 0.0], rng),
                                   _observe(table, [1], times + 2.0, [12_000.0, 9000.0, 600.0], [0.0, 0.0, 0.0],
                                            rng)])
    tr = Tracker(table, frame=FRAME, config=TrackerConfig(lag_s=0.0))
    assert all(len(s) == 0 for s in _run(tr, still, T0 + 200))
    assert tr.stats["assigned"] > 50


def _dog_leg(tt: np.ndarray) -> np.ndarray:
    """North at 50 m/s, a 90-degree turn of radius 400 m (a 25-degree bank) at t = 60 s, then east."""
    s = tt - T0
    v, r = 50.0, 400.0
    t_turn = np.pi / 2 * r / v
    p = np.zeros((s.size, 3))
    p[:, 2] = 800.0
    a, c = s < 60, s >= 60 + t_turn
    b = ~a & ~c
    p[a, 0], p[a, 1] = 10_000.0, -8000.0 + v * s[a]
    th = (s[b] - 60) * v / r
    p[b, 0], p[b, 1] = 10_000.0 + r - r * np.cos(th), -8000.0 + v * 60 + r * np.sin(th)
    p[c, 0], p[c, 1] = 10_000.0 + r + v * (s[c] - 60 - t_turn), -8000.0 + v * 60 + r
    return p


def _radar_looks(table: SensorTable, row: int, times: np.ndarray, rng) -> DetectionBatch:
    ecef = FRAME.enu_to_ecef(_dog_leg(times))
    rot = np.broadcast_to(enu_rotation(table.lat[row], table.lon[row]), (len(times), 3, 3))
    az, el, rg = aer_from_ecef(np.broadcast_to(table.ecef_m[row], ecef.shape), rot, ecef)
    b = DetectionBatch.empty(len(times))
    b.t, b.sensor[:] = times.copy(), row
    b.bearing_deg = np.mod(az + rng.normal(0, 0.5, len(times)), 360.0)
    b.elevation_deg = el + rng.normal(0, 0.5, len(times))
    b.range_m = rg + rng.normal(0, 30.0, len(times))
    return b


def test_imm_holds_a_dog_leg_that_the_cv_filter_loses():
    sensors = [_node("r1", 0.0, 0.0, kind="radar"), _node("r2", 30_000.0, 0.0, kind="radar")]
    table = SensorTable.from_sensors(sensors)
    times = T0 + np.arange(0, 160, 2.0)
    held = {False: 0, True: 0}
    sq = {False: [], True: []}
    for seed in range(3):
        rng = np.random.default_rng(100 + seed)
        det = DetectionBatch.concat([_radar_looks(table, 0, times, rng), _radar_looks(table, 1, times + 1.0, rng)])
        for use_imm in (False, True):
            tr = Tracker(table, frame=FRAME, config=TrackerConfig(lag_s=0.0, imm=use_imm))
            for s in _run(tr, det, T0 + 160):
                if len(s) == 1 and s.t - T0 >= 60:
                    held[use_imm] += 1
                    e = _enu(s)[0] - _dog_leg(np.array([s.t]))[0]
                    sq[use_imm].append(e[0] ** 2 + e[1] ** 2)
    steps = 3 * 100  # one-second steps from the turn to the end, three runs
    assert held[True] >= 0.95 * steps  # one confirmed track all through the turn and after
    assert held[False] < held[True]
    assert np.sqrt(np.mean(sq[True])) < 60.0


def test_imm_steps_are_consistent():
    from skytrace.tracking import imm

    rng = np.random.default_rng(11)
    p = imm.transition(np.array([0.0, 1.0, 100.0]), np.array([120.0, 15.0]))
    np.testing.assert_allclose(p.sum(axis=2), 1.0)
    np.testing.assert_allclose(p[0], np.eye(2))
    assert p[2, 1, 0] > p[1, 1, 0] > 0  # longer steps, more switching
    A = rng.normal(size=(3, 2, 6, 6))
    Pm = A @ np.swapaxes(A, -1, -2) + np.eye(6)
    xm = rng.normal(size=(3, 2, 6))
    mu = np.array([[1.0, 0.0], [0.0, 1.0], [0.3, 0.7]])
    x, P = imm.combine(mu, xm, Pm)
    np.testing.assert_allclose(x[0], xm[0, 0])
    np.testing.assert_allclose(P[1], Pm[1, 1])
    # the mixture covariance includes the spread of the means: never smaller than the weighted covariances
    assert np.all(np.linalg.eigvalsh(P[2] - (0.3 * Pm[2, 0] + 0.7 * Pm[2, 1])) > -1e-9)
    c, x0, P0 = imm.mix(mu, xm, Pm, np.zeros(3), np.array([120.0, 15.0]))
    np.testing.assert_allclose(c, mu)  # no time, no switching
    np.testing.assert_allclose(x0[2], xm[2])
    post = imm.posterior_probabilities(np.array([[0.5, 0.5]]), np.array([[0.0, -np.log(3.0)]]))
    np.testing.assert_allclose(post, [[0.75, 0.25]], atol=1e-3)
