"""The PCRLB recursion (skytrace.evaluation.pcrlb) against closed forms: for linear-Gaussian models the bound is
the Kalman filter's covariance."""

import numpy as np

from skytrace.evaluation.pcrlb import cv_transition, expected_information, pcrlb_recursion
from skytrace.tracking import motion


def test_random_walk_bound_reaches_the_closed_form_steady_state():
    # x_{k+1} = x_k + w (var q), z = x + v (var r): the posterior variance P solves P^2 + q P - q r = 0
    q, r = 4.0, 25.0
    F, Q, H = np.eye(1), np.array([[q]]), np.ones((1, 1, 1))
    info = np.repeat(expected_information(H, np.array([[r]]))[None], 200, axis=0)
    bound = pcrlb_recursion(F, Q, np.zeros((1, 1)), info)
    assert abs(bound[0, 0, 0] - r) < 1e-12  # no prior: the first measurement alone
    steady = (-q + np.sqrt(q * q + 4 * q * r)) / 2
    assert abs(bound[-1, 0, 0] - steady) < 1e-9
    assert np.all(np.diff(bound[:, 0, 0]) < 1e-12)  # the bound only falls towards the steady state


def test_constant_velocity_bound_equals_the_kalman_covariance():
    # 3-D CV with position fixes: the information recursion must give the same matrices as a covariance-form Kalman
    # filter that uses the tracker's own prediction (motion.predict), step by step
    dt, q_h, q_v, steps = 2.0, 0.5, 0.05, 30
    F, Q = cv_transition(dt, q_h, q_v)
    H = np.zeros((1, 3, 6))
    H[0, :, :3] = np.eye(3)
    R = np.diag([50.0**2, 50.0**2, 80.0**2])
    J0 = np.diag([0.0] * 3 + [45.0**-2] * 2 + [5.0**-2])  # no position prior, the tracker's velocity prior
    info = np.repeat(expected_information(H, R)[None], steps, axis=0)
    bound = pcrlb_recursion(F, Q, J0, info)
    P = np.linalg.inv(J0 + info[0])
    for k in range(1, steps):
        _, Pp = motion.predict(np.zeros((1, 6)), P[None], np.array([dt]), q_h, q_v)
        S = H[0] @ Pp[0] @ H[0].T + R
        K = Pp[0] @ H[0].T @ np.linalg.inv(S)
        P = (np.eye(6) - K @ H[0]) @ Pp[0]
        P = 0.5 * (P + P.T)
        np.testing.assert_allclose(bound[k], P, rtol=1e-6, atol=1e-9)
    # the steady-state position error is below the measurement noise
    assert 0 < bound[-1, 0, 0] < R[0, 0]


def test_information_ignores_padded_rows():
    # one bearing row and two padded rows (H = 0, R = 1): only the measured row carries information
    H = np.zeros((2, 3, 6))
    H[:, 0, 0] = 1.0 / 1000.0  # d(az)/de at 1 km
    R = np.diag([np.radians(2.0) ** 2, 1.0, 1.0])
    J = expected_information(H, R)
    assert abs(J[0, 0] - (1.0 / 1000.0) ** 2 / np.radians(2.0) ** 2) < 1e-15
    assert np.count_nonzero(J) == 1
