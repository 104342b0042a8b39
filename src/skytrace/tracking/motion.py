"""Motion models: how a track's state and covariance evolve over dt, batched over tracks.

State x = [e, n, u, ve, vn, vu] in the tracker's local ENU frame (m, m/s). A :class:`MotionModel` predicts N
states (N, 6) and covariances (N, 6, 6) over individual time steps dt (N,) in one call; the tracker uses one model,
or mixes several in the IMM (:mod:`skytrace.tracking.imm`). A user adds a model by writing one subclass (e.g. a
coordinated turn, or a "hover" model for multirotors) and passing instances in ``TrackerConfig.motion_models``
(see docs/tracking.md, "Adding a motion model"); :func:`register` also makes it available by name.

Built in: the nearly-constant-velocity model with discrete white-noise acceleration (q_h horizontal, q_v
vertical, m^2/s^3):

    F = [[I, dt I], [0, I]],   Q = q [[dt^3/3 I, dt^2/2 I], [dt^2/2 I, dt I]]

(Bar-Shalom, Li & Kirubarajan, *Estimation with Applications to Tracking and Navigation*, 2001, sec. 6.2.2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class MotionModel:
    """Interface: ``predict(x, P, dt) -> (x, P)`` for N states at once (dt >= 0, one per state)."""

    name: str = ""

    def predict(self, x: np.ndarray, P: np.ndarray, dt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def predict_horizontal(self, x: np.ndarray, P: np.ndarray, dt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predicted horizontal positions (N, 2) and horizontal position variances P_ee + P_nn (N,): what gating
        and deletion need every frame for every track. Override with a closed form where it pays."""
        xp, Pp = self.predict(x, P, dt)
        return xp[:, :2], Pp[:, 0, 0] + Pp[:, 1, 1]


def predict(x: np.ndarray, P: np.ndarray, dt: np.ndarray, q_h: float | np.ndarray, q_v: float | np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Nearly-constant-velocity prediction of N states (N, 6) and covariances (N, 6, 6) over dt (N,) >= 0."""
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
    # add Q on the four 3x3 diagonals through a flat view (fancy-indexed += on (N, 6, 6) is several times slower)
    flat = P_new.reshape(dt.size, 36)
    q3, q2, q1 = q * (dt**3 / 3)[:, None], q * (dt**2 / 2)[:, None], q * dt[:, None]
    flat[:, 0:15:7] += q3  # (0,0) (1,1) (2,2)
    flat[:, 3:18:7] += q2  # (0,3) (1,4) (2,5)
    flat[:, 18:33:7] += q2  # (3,0) (4,1) (5,2)
    flat[:, 21:36:7] += q1  # (3,3) (4,4) (5,5)
    return x_new, P_new


@dataclass
class ConstantVelocity(MotionModel):
    """Nearly constant velocity (white-noise acceleration of spectral densities q_h, q_v in m^2/s^3)."""

    q_h: float = 0.5
    q_v: float = 0.05
    name: str = "cv"

    def predict(self, x, P, dt):
        return predict(x, P, dt, self.q_h, self.q_v)

    def predict_horizontal(self, x, P, dt):
        dt = np.asarray(dt, dtype=float)
        var = (P[:, 0, 0] + P[:, 1, 1] + 2 * dt * (P[:, 0, 3] + P[:, 1, 4]) + dt**2 * (P[:, 3, 3] + P[:, 4, 4])
               + 2 * self.q_h * dt**3 / 3)
        return x[:, :2] + x[:, 3:5] * dt[:, None], var


MODELS: dict[str, type[MotionModel]] = {"cv": ConstantVelocity}


def register(name: str, cls: type[MotionModel]) -> type[MotionModel]:
    """Make a motion-model class available by name (``build``)."""
    if name in MODELS and MODELS[name] is not cls:
        raise ValueError(f"motion model {name!r} is already registered")
    MODELS[name] = cls
    return cls


def build(name: str, **params) -> MotionModel:
    """An instance of a registered model, e.g. ``build("cv", q_h=20.0, q_v=10.0)``."""
    cls = MODELS.get(name)
    if cls is None:
        raise ValueError(f"unknown motion model {name!r} (known: {', '.join(MODELS)})")
    return cls(**params)
