"""Measurement models of every sensor family, batched over (track, detection) pairs, for the EKF.

Each family (:mod:`skytrace.sensors.families`) predicts its own rows; this module only dispatches by kind code
(:func:`skytrace.sensors.registry.groups`) and assembles the padded (n, 3) predictions and (n, 3, 6) Jacobians,
so that pairs of every kind are gated and updated in one batch. Unused rows are padded with H = 0, innovation 0,
R = 1: they add nothing to the Mahalanobis distance, the likelihood or the gain.
"""

from __future__ import annotations

import numpy as np

from skytrace.sensors import registry
from skytrace.sensors.family import M_DIM, SensorGeometry

__all__ = ["M_DIM", "SensorGeometry", "innovation", "measured_dof", "predict_measurements"]


def predict_measurements(x: np.ndarray, kind: np.ndarray, s: np.ndarray, geom: SensorGeometry,
                         has_el: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predicted measurement h(x) (n, 3) and Jacobian H (n, 3, 6) for n pairs.

    x: (n, 6) track states at the detection time; kind: (n,) kind codes; s: (n,) sensor rows into ``geom``;
    has_el: (n,) whether the detection carries an elevation.
    """
    n = x.shape[0]
    h = np.zeros((n, M_DIM))
    H = np.zeros((n, M_DIM, 6))
    for family, rows in registry.groups(kind):
        if rows.size == n:
            return family.predict(x, s, geom, has_el)
        h[rows], H[rows] = family.predict(x[rows], s[rows], geom, has_el[rows])
    return h, H


def innovation(z: np.ndarray, h: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """z - h, each family wrapping its own angles."""
    nu = z - h
    for family, rows in registry.groups(kind):
        if rows.size == nu.shape[0]:
            return family.wrap(nu)
        nu[rows] = family.wrap(nu[rows])
    return nu


def measured_dof(kind: np.ndarray, has_el: np.ndarray) -> np.ndarray:
    """Number of measured dimensions of each detection (chi-square gate)."""
    out = np.zeros(kind.shape, dtype=np.int64)
    for family, rows in registry.groups(kind):
        out[rows] = family.dof(has_el[rows])
    return out
