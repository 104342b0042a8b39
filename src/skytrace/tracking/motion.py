"""Motion model: nearly constant velocity in 3-D (discrete white-noise acceleration), batched.

State x = [e, n, u, ve, vn, vu] in the tracker's local ENU frame (m, m/s). For a time step dt and acceleration
spectral densities q_h (horizontal) and q_v (vertical), in m^2/s^3:

    F = [[I, dt I], [0, I]],   Q = q [[dt^3/3 I, dt^2/2 I], [dt^2/2 I, dt I]]

(Bar-Shalom, Li & Kirubarajan, *Estimation with Applications to Tracking and Navigation*, 2001, sec. 6.2.2).
Everything is vectorised over N states with individual dt.
"""

from __future__ import annotations

import numpy as np


def predict(x: np.ndarray, P: np.ndarray, dt: np.ndarray, q_h: float | np.ndarray, q_v: float | np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Predict N states (N, 6) and covariances (N, 6, 6) over time steps dt (N,) >= 0."""
    dt = np.asarray(dt, dtype=float)
    x_new = x.copy()
    x_new[:, :3] += x[:, 3:] * dt[:, None]
    # F P F^T without building F: P = [[A, B], [B^T, C]] -> [[A + dt(B + B^T) + dt^2 C, B + dt C], [.., C]]
    A, B, C = P[:, :3, :3], P[:, :3, 3:], P[:, 3:, 3:]
    d1 = dt[:, None, None]
    BC = B + d1 * C
    P_new = np.empty_like(P)
    P_new[:, :3, :3] = A + d1 * (B + np.swapaxes(B, 1, 2)) + d1 * d1 * C
    P_new[:, :3, 3:] = BC
    P_new[:, 3:, :3] = np.swapaxes(BC, 1, 2)
    P_new[:, 3:, 3:] = C
    q = np.empty((dt.size, 3))
    q[:, 0:2] = np.broadcast_to(np.asarray(q_h, dtype=float), dt.shape)[:, None]
    q[:, 2] = np.broadcast_to(np.asarray(q_v, dtype=float), dt.shape)
    idx = np.arange(3)
    P_new[:, idx, idx] += q * (dt**3 / 3)[:, None]
    P_new[:, idx, idx + 3] += q * (dt**2 / 2)[:, None]
    P_new[:, idx + 3, idx] += q * (dt**2 / 2)[:, None]
    P_new[:, idx + 3, idx + 3] += q * dt[:, None]
    return x_new, P_new
