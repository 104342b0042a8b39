"""The sparse GNN assignment gives the dense LAP's answer (most pairs, then least cost)."""

import numpy as np
from scipy.optimize import linear_sum_assignment

from skytrace.tracking.assignment import assign


def test_sparse_assignment_matches_the_dense_lap_with_forbidden_cells():
    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(300):
        nr, nc = rng.integers(1, 8, 2)
        r, c = np.nonzero(rng.random((nr, nc)) < 0.5)
        if r.size == 0:
            continue
        cost = rng.normal(0, 5, r.size)
        C = np.full((nr, nc), 1e9)
        C[r, c] = cost
        rr, cc = linear_sum_assignment(C)
        good = C[rr, cc] < 1e8
        e = assign(r * 3 + 7, c * 5, cost)  # any integer labels
        assert len(set(r[e])) == e.size and len(set(c[e])) == e.size  # one edge per row and per column
        assert e.size == good.sum()
        assert np.isclose(cost[e].sum(), C[rr[good], cc[good]].sum())
        checked += 1
    assert checked > 250
    assert assign(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)).size == 0
