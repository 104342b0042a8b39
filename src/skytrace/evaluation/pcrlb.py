"""Posterior Cramér–Rao lower bound (PCRLB) of single-target tracking, for the tracker's own motion model.

For a Markov state x_{k+1} = F x_k + w_k (w ~ N(0, Q), Q non-singular) observed through z_k = h_k(x_k) + v_k
(v ~ N(0, R_k)), the information matrix J_k of the state follows the recursion of Tichavsky, Muravchik & Nehorai
("Posterior Cramér–Rao bounds for discrete-time nonlinear filtering", IEEE TSP 46(5), 1998, eq. 21 with
linear-Gaussian dynamics):

    J_{k+1} = (Q + F J_k^{-1} F^T)^{-1} + E[ H_{k+1}(x)^T R^{-1} H_{k+1}(x) ]

with H the Jacobian of h at the *true* state and the expectation over the true trajectories (in practice the mean
over Monte Carlo truths). Every unbiased (in the Bayesian sense) estimator has mean-square error >= J_k^{-1}. For a
linear h the recursion is exactly the Kalman filter's information form, which is what the tests check
(:func:`pcrlb_recursion` against the closed-form steady state of a random walk, and against an independent Kalman
covariance recursion).

Used by ``bench/bench_pcrlb.py`` (one radar; three acoustic nodes, bearings only).
"""

from __future__ import annotations

import numpy as np


def cv_transition(dt: float, q_h: float, q_v: float) -> tuple[np.ndarray, np.ndarray]:
    """F and Q of the tracker's nearly-constant-velocity model (state [e, n, u, ve, vn, vu]; discrete white-noise
    acceleration of spectral densities q_h horizontally and q_v vertically, as :func:`skytrace.tracking.motion.
    predict`)."""
    F = np.eye(6)
    F[:3, 3:] = dt * np.eye(3)
    q = np.diag([q_h, q_h, q_v])
    Q = np.block([[q * dt**3 / 3, q * dt**2 / 2], [q * dt**2 / 2, q * dt]])
    return F, Q


def information(H: np.ndarray, R: np.ndarray) -> np.ndarray:
    """H^T R^{-1} H of each sample (n, d, d): H (n, m, d) Jacobians at the true states, R (n, m, m) or (m, m).
    Padded measurement rows (H row 0) add nothing."""
    H = np.asarray(H, dtype=float)
    R = np.broadcast_to(np.asarray(R, dtype=float), (H.shape[0], H.shape[1], H.shape[1]))
    return np.swapaxes(H, 1, 2) @ np.linalg.solve(R, H)


def expected_information(H: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Mean over samples of H^T R^{-1} H (:func:`information`)."""
    return np.mean(information(H, R), axis=0)


def pcrlb_recursion(F: np.ndarray, Q: np.ndarray, J0: np.ndarray, info: np.ndarray) -> np.ndarray:
    """Bounds J_k^{-1} for k = 0..K-1: J_0 = J0 + info[0] (prior plus the first measurement's information),
    J_k = (Q + F J_{k-1}^{-1} F^T)^{-1} + info[k]. ``info`` (K, d, d): expected measurement information per step
    (zeros for a step without measurement). Returns (K, d, d)."""
    info = np.asarray(info, dtype=float)
    K, d = info.shape[0], info.shape[1]
    out = np.zeros((K, d, d))
    J = np.asarray(J0, dtype=float) + info[0]
    out[0] = np.linalg.inv(J)
    for k in range(1, K):
        J = np.linalg.inv(Q + F @ out[k - 1] @ F.T) + info[k]
        out[k] = np.linalg.inv(J)
    return 0.5 * (out + np.swapaxes(out, 1, 2))
