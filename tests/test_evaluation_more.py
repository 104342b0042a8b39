"""Tracking metrics: GOSPA against Stone Soup's GOSPAMetric, OSPA on known cases, breaks and ID switches."""

from __future__ import annotations

import datetime

import numpy as np
import pytest

from skytrace.evaluation import gospa, ospa
from skytrace.geo import LocalFrame
from skytrace.model import TrackPoint, TruthPoint

T0 = datetime.datetime(2026, 11, 22, 21, 0, 0)


def _stonesoup_gospa(X: np.ndarray, Y: np.ndarray, c: float, p: float) -> dict:
    from stonesoup.metricgenerator.ospametric import GOSPAMetric
    from stonesoup.types.state import State

    metric = GOSPAMetric(c=c, p=p)
    truths = [State(x.reshape(-1, 1), timestamp=T0) for x in X]
    tracks = [State(y.reshape(-1, 1), timestamp=T0) for y in Y]
    single, _ = metric.compute_gospa_metric(tracks, truths)
    return single.value


def test_gospa_components_by_hand():
    X = np.array([[0.0, 0.0], [1000.0, 0.0], [5000.0, 0.0]])
    Y = np.array([[30.0, 40.0], [1000.0, 600.0]])  # 50 m off the first; 600 m (> c) from the second
    g = gospa(X, Y, c=500.0, p=2.0)
    assert g["localisation"] == pytest.approx(2500.0)
    assert g["n_missed"] == 2 and g["n_false"] == 1
    assert g["distance"] == pytest.approx(np.sqrt(2500.0 + 500.0**2 / 2 * 3))


def test_ospa_known_values():
    X = np.array([[0.0, 0.0], [100.0, 0.0]])
    assert ospa(X, X) == 0.0
    assert ospa(X, np.zeros((0, 2)), c=500.0) == 500.0
    # one exact match and one missing: ((0 + c^p) / 2)^(1/p)
    assert ospa(X, X[:1], c=500.0, p=2.0) == pytest.approx(np.sqrt(500.0**2 / 2))
    assert ospa(X, X + np.array([3.0, 4.0]), c=500.0, p=2.0) == pytest.approx(5.0)


def _truth_and_tracks(switch_at: float | None, gap: tuple[float, float] | None):
    frame = LocalFrame(50.45, 30.52, 0.0)
    truth, tracks = [], []
    for k in range(61):
        t = 1000.0 + k
        e, n = 50.0 * k, 0.0
        lat, lon, alt = frame.to_geodetic(e, n, 500.0)
        truth.append(TruthPoint(t=t, target="A", lat=float(lat), lon=float(lon), alt_m=float(alt), ve=50.0, vn=0.0,
                                vu=0.0))
        if gap is not None and gap[0] <= t < gap[1]:
            continue
        lat, lon, alt = frame.to_geodetic(e + 20.0, n, 500.0)
        name = "T2" if switch_at is not None and t >= switch_at else "T1"
        tracks.append(TrackPoint(t=t, track=name, status="confirmed", lat=float(lat), lon=float(lon),
                                 alt_m=float(alt), ve=50.0, vn=0.0, vu=0.0, pos_sigma_m=30.0))
    return truth, tracks

