"""GOSPA against Stone Soup's GOSPAMetric (an independent implementation), and the scoring harness."""

import datetime

import numpy as np
import pytest

from skytrace.evaluation import evaluate_tracks, gospa, ospa
from skytrace.model import TrackPoint, TruthPoint


@pytest.mark.parametrize("seed", range(6))
def test_gospa_matches_stonesoup(seed):
    from stonesoup.metricgenerator.ospametric import GOSPAMetric
    from stonesoup.types.state import State

    rng = np.random.default_rng(seed)
    n, m = rng.integers(0, 8), rng.integers(0, 8)
    X = rng.uniform(0, 2000, (n, 2))
    Y = np.vstack([X[: min(n, m)] + rng.normal(0, 150, (min(n, m), 2)), rng.uniform(0, 2000, (m - min(n, m), 2))])
    ts = datetime.datetime(2026, 11, 22)
    metric = GOSPAMetric(c=500.0, p=2.0)
    ref, _ = metric.compute_gospa_metric([State(y.reshape(2, 1), timestamp=ts) for y in Y],
                                         [State(x.reshape(2, 1), timestamp=ts) for x in X])
    ours = gospa(X, Y, c=500.0, p=2.0)
    assert ours["distance"] == pytest.approx(ref.value["distance"], rel=1e-9, abs=1e-9)
    assert ours["localisation"] == pytest.approx(ref.value["localisation"], rel=1e-9, abs=1e-9)
    assert ours["missed"] == pytest.approx(ref.value["missed"], rel=1e-9, abs=1e-9)
    assert ours["false"] == pytest.approx(ref.value["false"], rel=1e-9, abs=1e-9)


def test_gospa_components_and_ospa_edge_cases():
    X = np.array([[0.0, 0.0], [1000.0, 0.0]])
    Y = np.array([[30.0, 40.0]])  # 50 m from the first truth, the second is missed
    g = gospa(X, Y, c=500.0, p=2.0)
    assert g["localisation"] == pytest.approx(2500.0)
    assert g["n_missed"] == 1 and g["n_false"] == 0
    assert g["distance"] == pytest.approx(np.sqrt(2500.0 + 500.0**2 / 2))
    far = gospa(X, np.array([[5000.0, 0.0]]), c=500.0)
    assert far["n_missed"] == 2 and far["n_false"] == 1  # beyond c: not an assignment
    assert ospa(X, X) == 0.0 and ospa(X, np.zeros((0, 2))) == 500.0


def _tp(t, track, lat, lon):
    return TrackPoint(t=t, track=track, status="confirmed", lat=lat, lon=lon, alt_m=500.0, ve=0, vn=0, vu=0,
                      pos_sigma_m=10)


def test_breaks_and_id_switches_are_counted():
    truth = [TruthPoint(t=float(t), target="D1", lat=50.0, lon=30.0 + 1e-4 * t, alt_m=500.0, ve=7, vn=0, vu=0)
             for t in range(10)]
    tracks = [_tp(float(t), "A", 50.0, 30.0 + 1e-4 * t) for t in range(0, 3)]
    tracks += [_tp(float(t), "B", 50.0, 30.0 + 1e-4 * t) for t in range(5, 10)]  # gap at 3, 4 then a new id
    s = evaluate_tracks(truth, tracks, dt=1.0)
    assert s.track_breaks == 1 and s.id_switches == 1
    assert s.summary()["mean_missed_targets"] == pytest.approx(0.2)
    assert s.rmse_m < 1.0
