import numpy as np

from skytrace.batch import DetectionBatch
from skytrace.pipeline import paced_batches


def _b(ta):
    b = DetectionBatch.empty(len(ta))
    b.t = np.asarray(ta, dtype=float) - 0.5
    b.t_arrival = np.asarray(ta, dtype=float)
    return b


def test_paced_batches_cut_at_steps_and_lose_nothing():
    arrivals = np.sort(np.random.default_rng(0).uniform(100, 160, 500))
    batches = [_b(arrivals[i:i + 37]) for i in range(0, 500, 37)]
    out = list(paced_batches(batches, 5.0, t_end=200.0))
    steps = [t for t, _ in out]
    assert steps == sorted(steps) and np.allclose(np.diff(steps), 5.0)
    assert steps[-1] == 200.0
    assert sum(len(b) for _, b in out) == 500
    for t, b in out:
        assert np.all(b.t_arrival < t)
        assert np.all(b.t_arrival >= t - 5.0) or t == steps[0]


def test_reports_behind_the_clock_are_delivered_not_dropped():
    batches = [_b([10.0, 11.0, 30.0]), _b([12.0]), _b([31.0])]  # 12.0 arrives after the clock passed it
    out = list(paced_batches(batches, 5.0))
    assert sum(len(b) for _, b in out) == 5
