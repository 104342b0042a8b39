"""Interacting multiple model (IMM) steps, batched over tracks: mixing, per-model moments and combination.

Two nearly-constant-velocity models that differ in their process noise — a quiet one for cruise and a loud one
for dog-leg turns and terminal dives (Bar-Shalom, Li & Kirubarajan, *Estimation with Applications to Tracking and
Navigation*, 2001, sec. 11.6; the "CV with high process noise" manoeuvre model of sec. 11.6.6). Switching between
models is a continuous-time Markov chain with mean sojourn times ``sojourn_s``: over a step dt the probability of
leaving model i is 1 - exp(-dt / sojourn_s[i]), so irregular, asynchronous updates get consistent probabilities.

Shapes: K models; per track ``mu`` (N, K) model probabilities, ``xm`` (N, K, 6) and ``Pm`` (N, K, 6, 6) the
model-conditioned states.
"""

from __future__ import annotations

import numpy as np


def transition(dt: np.ndarray, sojourn_s: np.ndarray) -> np.ndarray:
    """(N, K, K) Markov transition matrices p[i, j] = P(model j after dt | model i before), rows sum to 1."""
    dt = np.asarray(dt, dtype=float)
    k = len(sojourn_s)
    leave = 1.0 - np.exp(-dt[:, None] / np.asarray(sojourn_s, dtype=float)[None, :])  # (N, K)
    p = np.repeat((leave / max(k - 1, 1))[:, :, None], k, axis=2)
    idx = np.arange(k)
    p[:, idx, idx] = 1.0 - leave
    return p


def mix(mu: np.ndarray, xm: np.ndarray, Pm: np.ndarray, dt: np.ndarray, sojourn_s: np.ndarray):
    """IMM interaction step: predicted model probabilities c (N, K) and mixed initial moments x0, P0 per model."""
    p = transition(dt, sojourn_s)
    c = np.einsum("ni,nij->nj", mu, p)  # predicted model probabilities
    w = mu[:, :, None] * p / np.maximum(c[:, None, :], 1e-300)  # w[n, i, j] = P(i before | j after)
    x0 = np.einsum("nij,nid->njd", w, xm)
    d = xm[:, :, None, :] - x0[:, None, :, :]  # (N, i, j, 6)
    P0 = np.einsum("nij,nijde->njde", w, Pm[:, :, None, :, :] + d[..., :, None] * d[..., None, :])
    return c, x0, P0


def combine(mu: np.ndarray, xm: np.ndarray, Pm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Moment-matched single Gaussian (N, 6), (N, 6, 6) of the model mixture."""
    x = np.einsum("nk,nkd->nd", mu, xm)
    d = xm - x[:, None, :]
    P = np.einsum("nk,nkde->nde", mu, Pm + d[..., :, None] * d[..., None, :])
    return x, P


def posterior_probabilities(c: np.ndarray, loglik: np.ndarray, floor: float = 1e-4) -> np.ndarray:
    """Updated model probabilities from predicted ones c (N, K) and measurement log-likelihoods (N, K).

    A small floor keeps every model alive (a model at probability 0 could never come back).
    """
    a = np.log(np.maximum(c, 1e-300)) + loglik
    a -= a.max(axis=1, keepdims=True)
    mu = np.exp(a)
    mu /= mu.sum(axis=1, keepdims=True)
    mu = np.maximum(mu, floor)
    return mu / mu.sum(axis=1, keepdims=True)
