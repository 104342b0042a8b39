"""Track initiation: from fixes (position reports, radar plots) directly, from bearings (acoustic, optical) by
triangulation.

Bearings-only initiation is where acoustic networks fail or succeed. Two bearings from different nodes always
intersect somewhere: with several drones in the air, bearings of *different* drones cross at ghost points. A
candidate position is therefore accepted only when at least ``init_min_nodes`` distinct nodes (default 3) see it
within ``init_dt_s``: the chance that a third bearing of yet another drone passes through a ghost point within
its noise is small, and a ghost that survives still has to keep collecting consistent updates from two or more
sensors to be confirmed (the tracker's M-of-N rule). Pairs are also rejected when the bearings cross at less
than ``init_min_angle_deg`` (ill-conditioned) or behind a node or beyond the audible range.

All steps are vectorised: candidate node pairs come from a KD-tree, intersections are solved in closed form for
all pairs, support is counted for all candidates at once, and only the final greedy choice (each bearing used
once, best-supported candidates first) loops, over accepted candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from skytrace.sensors import registry
from skytrace.sensors.family import SensorGeometry
from skytrace.tracking.measurements_prep import MeasBatch


@dataclass
class BearingPool:
    """Unassigned bearings (acoustic, optical) of the last few seconds, with each ray's horizontal direction."""

    t: np.ndarray
    sensor: np.ndarray
    az: np.ndarray  # radians, sensor-local
    el: np.ndarray  # radians or NaN
    sigma: np.ndarray  # bearing sigma, radians
    u: np.ndarray  # (n, 2) unit ray direction in the frame's horizontal plane

    @classmethod
    def empty(cls) -> BearingPool:
        z = np.zeros(0)
        return cls(z, np.zeros(0, np.int32), z, z, z, np.zeros((0, 2)))

    def __len__(self) -> int:
        return int(self.t.shape[0])

    def _take(self, idx) -> BearingPool:
        return BearingPool(self.t[idx], self.sensor[idx], self.az[idx], self.el[idx], self.sigma[idx], self.u[idx])

    def add(self, m: MeasBatch, M: np.ndarray, sensor_pos: np.ndarray) -> BearingPool:
        az = m.z[:, 0]
        d_loc = np.column_stack([np.sin(az), np.cos(az), np.zeros_like(az)])
        d = np.einsum("nji,nj->ni", M[m.sensor], d_loc)[:, :2]
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        el = np.where(m.has_el, m.z[:, 1], np.nan)
        new = BearingPool(m.t, m.sensor, az, el, np.sqrt(m.R[:, 0, 0]), d)
        return BearingPool(*(np.concatenate([getattr(self, f), getattr(new, f)])
                             for f in ("t", "sensor", "az", "el", "sigma", "u")))

    def expire(self, t_min: float) -> BearingPool:
        return self._take(self.t >= t_min)

    def drop(self, used: np.ndarray) -> BearingPool:
        keep = np.ones(len(self), bool)
        keep[used] = False
        return self._take(keep)


def cartesian_from_plots(m: MeasBatch, geom: SensorGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Frame positions and covariances of fixes (detections of families with ``initiation == "plot"``), each
    family converting its own rows (position reports as they are, radar plots from az/el/range)."""
    pos = np.zeros((len(m), 3))
    cov = np.zeros((len(m), 3, 3))
    for family, rows in registry.groups(m.kind):
        pos[rows], cov[rows] = family.to_cartesian(m.z[rows], m.R[rows], m.sensor[rows], geom)
    return pos, cov


def _lonely(pool: BearingPool, idx: np.ndarray, cfg) -> np.ndarray:
    """True where the node of bearing ``idx`` reported no other, distinct bearing within ``init_dt_s``."""
    order = np.lexsort((pool.t, pool.sensor))
    s_sorted, t_sorted, az_sorted = pool.sensor[order], pool.t[order], pool.az[order]
    lo = np.searchsorted(s_sorted, pool.sensor[idx], side="left")
    hi = np.searchsorted(s_sorted, pool.sensor[idx], side="right")
    out = np.ones(idx.size, bool)
    for q in np.flatnonzero(hi - lo > 1):  # only nodes with several bearings in the pool need a look
        sl = slice(lo[q], hi[q])
        near = np.abs(t_sorted[sl] - pool.t[idx[q]]) <= cfg.init_dt_s
        diff = np.abs(np.mod(az_sorted[sl] - pool.az[idx[q]] + np.pi, 2 * np.pi) - np.pi)
        out[q] = not np.any(near & (diff > np.radians(cfg.init_resolution_deg)))
    return out


def triangulate(pool: BearingPool, M: np.ndarray, b: np.ndarray, sensor_pos: np.ndarray, cfg):
    """Find positions seen by >= cfg.init_min_nodes distinct nodes; returns new-track arrays or None."""
    n = len(pool)
    node_xy = sensor_pos[pool.sensor, :2]
    tree = cKDTree(node_xy)
    pairs = tree.query_pairs(2 * cfg.init_range_m, output_type="ndarray")
    if pairs.size == 0:
        return None
    i, j = pairs[:, 0], pairs[:, 1]
    ok = (pool.sensor[i] != pool.sensor[j]) & (np.abs(pool.t[i] - pool.t[j]) <= cfg.init_dt_s)
    i, j = i[ok], j[ok]
    if i.size == 0:
        return None
    a, c = node_xy[i], node_xy[j]
    u, v = pool.u[i], pool.u[j]
    det = v[:, 0] * u[:, 1] - u[:, 0] * v[:, 1]
    w = c - a
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (w[:, 0] * (-v[:, 1]) + v[:, 0] * w[:, 1]) / det
        r = (u[:, 0] * w[:, 1] - u[:, 1] * w[:, 0]) / det
    good = (np.abs(det) > np.sin(np.radians(cfg.init_min_angle_deg))) & (s > 50) & (r > 50) & (
        s < cfg.init_range_m) & (r < cfg.init_range_m)
    i, j, s, r, det = i[good], j[good], s[good], r[good], det[good]
    if i.size == 0:
        return None
    X = node_xy[i] + s[:, None] * pool.u[i]
    t_c = 0.5 * (pool.t[i] + pool.t[j])
    # support: bearings of other nodes, close in time, pointing at X within 3 sigma (+ motion slack)
    hits = tree.query_ball_point(X, cfg.init_range_m, return_sorted=False)
    lens = np.fromiter((len(h) for h in hits), dtype=np.int64, count=len(hits))
    k = np.concatenate([np.asarray(h, dtype=np.int64) for h in hits if h]) if lens.sum() else np.zeros(0, np.int64)
    cand = np.repeat(np.arange(i.size), lens)
    sk = pool.sensor[k]
    other = (sk != pool.sensor[i[cand]]) & (sk != pool.sensor[j[cand]])
    dtk = np.abs(pool.t[k] - t_c[cand])
    other &= dtk <= cfg.init_dt_s
    k, cand, dtk = k[other], cand[other], dtk[other]
    p3 = np.column_stack([X[cand], np.zeros(cand.size)])
    d = np.einsum("nij,nj->ni", M[pool.sensor[k]], p3) + b[pool.sensor[k]]
    rng_h = np.hypot(d[:, 0], d[:, 1])
    res = np.mod(pool.az[k] - np.arctan2(d[:, 0], d[:, 1]) + np.pi, 2 * np.pi) - np.pi
    tol = 3 * pool.sigma[k] + np.arctan2(60.0 * dtk + 100.0, np.maximum(rng_h, 1.0))
    sup = (np.abs(res) < tol) & (rng_h < cfg.init_range_m)
    k, cand = k[sup], cand[sup]
    # distinct supporting nodes per candidate
    key = np.unique(cand * (int(pool.sensor.max()) + 1) + pool.sensor[k])
    n_support = np.bincount(key // (int(pool.sensor.max()) + 1), minlength=i.size)
    n_nodes = 2 + n_support
    # two-node fixes are accepted only where they cannot be ghosts: each of the two nodes hears exactly one
    # source around that time (no other bearing of it within init_dt_s differing by more than the resolution)
    min_nodes = np.full(i.size, cfg.init_min_nodes)
    if cfg.init_two_node_unambiguous:
        min_nodes[:] = np.minimum(min_nodes, np.where(_lonely(pool, i, cfg) & _lonely(pool, j, cfg), 2,
                                                      cfg.init_min_nodes))
    viable = np.flatnonzero(n_nodes >= min_nodes)
    if viable.size == 0:
        return None
    order = viable[np.lexsort((np.abs(det[viable]) * -1, -n_nodes[viable]))]
    used = np.zeros(n, bool)
    sup_sorted = np.argsort(cand, kind="stable")
    cand_s, k_s = cand[sup_sorted], k[sup_sorted]
    starts = np.searchsorted(cand_s, np.arange(i.size))
    ends = np.searchsorted(cand_s, np.arange(i.size), side="right")
    acc, acc_members = [], []
    accepted_xy: list[np.ndarray] = []
    for c_idx in order:
        members = np.concatenate([[i[c_idx], j[c_idx]], k_s[starts[c_idx]:ends[c_idx]]])
        members = members[~used[members]]
        if members.size < 2 or used[i[c_idx]] or used[j[c_idx]]:
            continue
        if np.unique(pool.sensor[members]).size < min_nodes[c_idx]:
            continue
        if accepted_xy and np.min(np.linalg.norm(np.asarray(accepted_xy) - X[c_idx], axis=1)) < 500:
            used[members] = True
            continue
        used[members] = True
        acc.append(c_idx)
        acc_members.append(members)
        accepted_xy.append(X[c_idx])
    if not acc:
        return None
    acc = np.asarray(acc)
    nA = acc.size
    x = np.zeros((nA, 6))
    x[:, :2] = X[acc]
    P = np.zeros((nA, 6, 6))
    seen = np.full((nA, 4), -1)
    hits_arr = np.zeros(nA)
    t_new = np.zeros(nA)
    for q, (c_idx, members) in enumerate(zip(acc, acc_members, strict=True)):
        # altitude: from elevation if any member has it, else the prior above the nodes' ground
        node_u = sensor_pos[pool.sensor[members], 2]
        rngs = np.linalg.norm(sensor_pos[pool.sensor[members], :2] - X[c_idx], axis=1)
        el = pool.el[members]
        have = np.isfinite(el)
        if have.any():
            x[q, 2] = float(np.median(node_u[have] + rngs[have] * np.tan(el[have])))
            sig_u = 250.0
        else:
            x[q, 2] = float(np.mean(node_u)) + cfg.init_alt_agl_m
            sig_u = cfg.init_alt_sigma_m
        sig_h = np.clip(float(np.mean(rngs)) * float(np.mean(pool.sigma[members])) / abs(det[c_idx]) * 1.5,
                        80.0, 2000.0)
        P[q, 0, 0] = P[q, 1, 1] = sig_h**2
        P[q, 2, 2] = sig_u**2
        P[q, 3, 3] = P[q, 4, 4] = cfg.init_vel_sigma_mps**2
        P[q, 5, 5] = cfg.init_vu_sigma_mps**2
        us = np.unique(pool.sensor[members])[:4]
        seen[q, :us.size] = us
        hits_arr[q] = members.size
        t_new[q] = float(np.max(pool.t[members]))
    return x, P, t_new, hits_arr, seen, np.flatnonzero(used)
