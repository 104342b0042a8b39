"""Measurement models of every sensor family, batched over (track, detection) pairs, for the EKF.

All models share one padded form with m = 3 rows so that pairs of every kind are processed in one batch:

- ``position`` (sighting, Remote ID, ADS-B, plot): z = position in the tracker frame, linear, R rotated from the
  report's local ENU into the frame.
- ``radar``: z = (azimuth, elevation, slant range) in the radar's local ENU.
- ``acoustic`` / ``optical``: z = (azimuth[, elevation]) of the *retarded* position. A node receiving sound at t
  hears where the source was at t - r/c; with the track state at t, the source position then was
  p - v r/c (r solved by fixed-point iteration, contraction v/c ~ 0.15; the Jacobian includes the dependence
  of the delay on the state). Unused rows are padded with
  H = 0, innovation 0, R = 1: they add nothing to the Mahalanobis distance, the likelihood or the gain.

Geometry is exact at any distance from the frame origin: a position p in the frame maps to the sensor's local ENU
as d = M p + b with M = R_sensor R_frame^T and b = R_sensor (o_frame - s_sensor), both precomputed per sensor.
Angles are handled in radians internally; azimuth residuals are wrapped to [-pi, pi).
"""

from __future__ import annotations

import numpy as np

from skytrace.batch import ACOUSTIC, OPTICAL, POSITION, RADAR

M_DIM = 3


def _angles_and_jacobian(d: np.ndarray):
    """Azimuth, elevation, range of local ENU vectors d (n, 3) and their Jacobians w.r.t. d, each (n, 3)."""
    e, n, u = d[:, 0], d[:, 1], d[:, 2]
    rho2 = np.maximum(e * e + n * n, 1e-6)
    rho = np.sqrt(rho2)
    r2 = rho2 + u * u
    r = np.sqrt(r2)
    az = np.arctan2(e, n)
    el = np.arctan2(u, rho)
    j_az = np.column_stack([n / rho2, -e / rho2, np.zeros_like(e)])
    j_el = np.column_stack([-e * u / (r2 * rho), -n * u / (r2 * rho), rho / r2])
    j_r = d / r[:, None]
    return az, el, r, j_az, j_el, j_r


def predict_measurements(x: np.ndarray, kind: np.ndarray, M: np.ndarray, b: np.ndarray, c_mps: np.ndarray,
                         has_el: np.ndarray):
    """Predicted measurement h(x) (n, 3) and Jacobian H (n, 3, 6) for n pairs.

    x: (n, 6) track states at the detection time; kind: (n,) sensor kind codes; M (n, 3, 3), b (n, 3): the pair's
    sensor transform; c_mps: (n,) sound speed (acoustic); has_el: (n,) whether the detection carries elevation.
    """
    n = x.shape[0]
    h = np.zeros((n, M_DIM))
    H = np.zeros((n, M_DIM, 6))
    p, v = x[:, :3], x[:, 3:]
    pos = kind == POSITION
    if pos.any():
        h[pos] = p[pos]
        H[pos, 0, 0] = H[pos, 1, 1] = H[pos, 2, 2] = 1.0
    ang = ~pos
    if ang.any():
        Ma, ba = M[ang], b[ang]
        pa, va = p[ang], v[ang]
        d = np.einsum("nij,nj->ni", Ma, pa) + ba
        acoustic = (kind[ang] == ACOUSTIC)
        tau = np.zeros(d.shape[0])
        G = np.broadcast_to(np.eye(3), (d.shape[0], 3, 3)).copy()
        if acoustic.any():
            c = c_mps[ang][acoustic]
            w = np.einsum("nij,nj->ni", Ma[acoustic], va[acoustic])
            dd = d[acoustic]
            ta = np.linalg.norm(dd, axis=1) / c
            for _ in range(3):
                ta = np.linalg.norm(dd - w * ta[:, None], axis=1) / c
            tau[acoustic] = ta
            dr = dd - w * ta[:, None]
            d[acoustic] = dr
            # tau depends on the state too (c tau = |d0 - w tau|): d(d)/d(d0) = I - w dhat^T / (c + dhat.w)
            dhat = dr / np.maximum(np.linalg.norm(dr, axis=1), 1e-9)[:, None]
            G[acoustic] -= w[:, :, None] * dhat[:, None, :] / (c + np.einsum("ni,ni->n", dhat, w))[:, None, None]
        az, el, r, j_az, j_el, j_r = _angles_and_jacobian(d)
        # chain rule to the state: d = G M (dp - tau dv) for the retarded position
        GM = G @ Ma
        Hp_az = np.einsum("ni,nij->nj", j_az, GM)
        Hp_el = np.einsum("ni,nij->nj", j_el, GM)
        Hp_r = np.einsum("ni,nij->nj", j_r, GM)
        ha = np.zeros((d.shape[0], M_DIM))
        Ha = np.zeros((d.shape[0], M_DIM, 6))
        ha[:, 0] = az
        Ha[:, 0, :3] = Hp_az
        Ha[:, 0, 3:] = -tau[:, None] * Hp_az
        el_ok = has_el[ang]
        ha[el_ok, 1] = el[el_ok]
        Ha[el_ok, 1, :3] = Hp_el[el_ok]
        Ha[el_ok, 1, 3:] = -tau[el_ok, None] * Hp_el[el_ok]
        rad = kind[ang] == RADAR
        ha[rad, 2] = r[rad]
        Ha[rad, 2, :3] = Hp_r[rad]
        h[ang] = ha
        H[ang] = Ha
    return h, H


def innovation(z: np.ndarray, h: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """z - h with the azimuth (row 0 of angle sensors) wrapped to [-pi, pi)."""
    nu = z - h
    ang = (kind == RADAR) | (kind == ACOUSTIC) | (kind == OPTICAL)
    nu[ang, 0] = np.mod(nu[ang, 0] + np.pi, 2 * np.pi) - np.pi
    return nu
