"""Multi-target tracking metrics: GOSPA (with its components), OSPA, RMSE, track breaks and ID switches.

GOSPA (Rahmathullah, Garcia-Fernandez, Svensson, "Generalized optimal sub-pattern assignment metric", FUSION
2017) with alpha = 2 splits the error between a set of truths X and a set of estimates Y into localisation
(assigned pairs closer than c), missed targets and false tracks, each of the latter costing c^p / 2:

    GOSPA = ( min over assignments  sum_assigned d(x, y)^p  +  c^p / 2 (|X| + |Y| - 2 |assigned|) )^(1/p)

computed exactly with a linear assignment on the cost min(d, c)^p (a pair at distance >= c costs the same as
leaving both unassigned). OSPA (Schuhmacher, Vo, Vo, IEEE TSP 56(8), 2008) is reported for reference.

``evaluate_tracks`` scores a tracks file against a truth file over a regular time grid (truth interpolated per
target), in a local ENU frame (3-D distances), and follows the per-step assignments over time to count track
breaks (a truth loses its track while still alive) and ID switches (a truth changes track).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from skytrace import geo
from skytrace.model import TrackPoint, TruthPoint


def _pairwise(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    return np.linalg.norm(X[:, None, :] - Y[None, :, :], axis=2)


def gospa(X: np.ndarray, Y: np.ndarray, c: float = 500.0, p: float = 2.0) -> dict:
    """GOSPA (alpha = 2) between truth points X (n, d) and estimates Y (m, d), with components and assignment.

    Returns dict: distance, localisation, missed, false (each on the p-th power scale summed, then the total's
    p-th root as ``distance``), n_missed, n_false, pairs (list of (i, j) assigned truth/estimate indices).
    """
    X = np.asarray(X, dtype=float).reshape(-1, X.shape[-1] if np.ndim(X) > 1 else 1)
    Y = np.asarray(Y, dtype=float).reshape(-1, X.shape[1])
    n, m = X.shape[0], Y.shape[0]
    half = c**p / 2.0
    if n == 0 or m == 0:
        return {"distance": (half * (n + m)) ** (1 / p), "localisation": 0.0, "missed": half * n,
                "false": half * m, "n_missed": n, "n_false": m, "pairs": []}
    d = _pairwise(X, Y)
    cost = np.minimum(d, c) ** p
    r, k = linear_sum_assignment(cost)
    real = d[r, k] < c
    loc = float(np.sum(d[r[real], k[real]] ** p))
    n_ass = int(real.sum())
    missed = half * (n - n_ass)
    false = half * (m - n_ass)
    return {"distance": (loc + missed + false) ** (1 / p), "localisation": loc, "missed": missed, "false": false,
            "n_missed": n - n_ass, "n_false": m - n_ass, "pairs": list(zip(r[real].tolist(), k[real].tolist(),
                                                                             strict=True))}


def ospa(X: np.ndarray, Y: np.ndarray, c: float = 500.0, p: float = 2.0) -> float:
    """OSPA distance (Schuhmacher et al. 2008)."""
    n, m = len(X), len(Y)
    if n == 0 and m == 0:
        return 0.0
    if n == 0 or m == 0:
        return float(c)
    if n > m:
        X, Y, n, m = Y, X, m, n
    cost = np.minimum(_pairwise(np.asarray(X, float), np.asarray(Y, float)), c) ** p
    r, k = linear_sum_assignment(cost)
    return float(((cost[r, k].sum() + c**p * (m - n)) / m) ** (1 / p))


@dataclass
class TrackingScore:
    """Scores of a tracks file against truth over a time grid."""

    times: np.ndarray
    gospa: np.ndarray
    localisation: np.ndarray
    missed: np.ndarray
    false: np.ndarray
    n_truth: np.ndarray
    n_tracks: np.ndarray
    sq_errors: list[float] = field(default_factory=list)
    track_breaks: int = 0
    id_switches: int = 0
    targets_tracked: int = 0
    targets_total: int = 0
    c: float = 500.0
    p: float = 2.0
    history: dict = field(default_factory=dict)  # target -> [(t, assigned track id or None)] at counted times
    alive: dict = field(default_factory=dict)  # target -> bool array: counted at that grid time

    @property
    def mean_gospa(self) -> float:
        return float(np.mean(self.gospa)) if self.gospa.size else 0.0

    @property
    def rmse_m(self) -> float:
        return float(np.sqrt(np.mean(self.sq_errors))) if self.sq_errors else float("nan")

    def summary(self) -> dict:
        return {
            "steps": int(self.times.size), "mean_gospa_m": round(self.mean_gospa, 2),
            "mean_localisation_m2": round(float(np.mean(self.localisation)), 1),
            "mean_missed_targets": round(float(np.mean(self.missed / (self.c**self.p / 2))), 3),
            "mean_false_tracks": round(float(np.mean(self.false / (self.c**self.p / 2))), 3),
            "rmse_m": round(self.rmse_m, 2), "track_breaks": self.track_breaks,
            "id_switches": self.id_switches, "targets_tracked": self.targets_tracked,
            "targets_total": self.targets_total,
        }


def _interp_truth(truth: list[TruthPoint]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    per: dict[str, list[TruthPoint]] = defaultdict(list)
    for p in truth:
        per[p.target].append(p)
    out = {}
    for tid, pts in per.items():
        pts.sort(key=lambda p: p.t)
        out[tid] = (np.array([p.t for p in pts]), np.array([[p.lat, p.lon, p.alt_m] for p in pts]))
    return out


def evaluate_tracks(truth: list[TruthPoint], tracks: list[TrackPoint], dt: float | None = None, c: float = 500.0,
                    p: float = 2.0, statuses: tuple[str, ...] = ("confirmed", "coasting"),
                    t_range: tuple[float, float] | None = None,
                    observed: dict[str, np.ndarray] | None = None, observed_window_s: float = 60.0
                    ) -> TrackingScore:
    """Score tracks against truth at every multiple of ``dt`` (default: the tracks' own interval) in the truth span.

    ``observed`` (target -> sorted times at which some sensor detected it) restricts the truth to the targets
    inside sensor coverage: a target counts at t only if it was detected within the preceding
    ``observed_window_s``. Without it, every flying target counts, including those no sensor can see.
    """
    per_truth = _interp_truth(truth)
    if not per_truth:
        raise ValueError("truth is empty")
    tracks = [tp for tp in tracks if tp.status in statuses]
    t_tracks = np.unique([tp.t for tp in tracks]) if tracks else np.zeros(0)
    if dt is None:
        dt = float(np.min(np.diff(t_tracks))) if t_tracks.size > 1 else 1.0
    t_lo = min(v[0][0] for v in per_truth.values())
    t_hi = max(v[0][-1] for v in per_truth.values())
    if t_range is not None:
        t_lo, t_hi = max(t_lo, t_range[0]), min(t_hi, t_range[1])
    grid = np.arange(np.ceil(t_lo / dt) * dt, t_hi + 1e-9, dt)
    allpts = np.vstack([v[1] for v in per_truth.values()])
    frame = geo.LocalFrame(float(np.mean(allpts[:, 0])), float(np.mean(allpts[:, 1])), 0.0)
    enu_truth = {tid: (ts, np.column_stack(frame.to_enu(xs[:, 0], xs[:, 1], xs[:, 2])))
                 for tid, (ts, xs) in per_truth.items()}
    by_t: dict[float, list[TrackPoint]] = defaultdict(list)
    for tp in tracks:
        by_t[round(tp.t / dt) * dt].append(tp)
    g, loc, mis, fal, ntr, ntk, sq = [], [], [], [], [], [], []
    history: dict[str, list[tuple[float, str | None]]] = defaultdict(list)
    alive_map: dict[str, list[bool]] = {}
    for t in grid:
        tids, xs = [], []
        for tid, (ts, enu) in enu_truth.items():
            if ts[0] - 1e-6 <= t <= ts[-1] + 1e-6:
                alive_map.setdefault(tid, []).append(True)
                if observed is not None:
                    ot = observed.get(tid)
                    if ot is None or ot.size == 0:
                        alive_map[tid][-1] = False
                        continue
                    k = np.searchsorted(ot, t, side="right")
                    if k == 0 or t - ot[k - 1] > observed_window_s:
                        alive_map[tid][-1] = False
                        continue
                tids.append(tid)
                xs.append([np.interp(t, ts, enu[:, k]) for k in range(3)])
        X = np.asarray(xs).reshape(-1, 3)
        tps = by_t.get(round(t / dt) * dt, [])
        Y = (np.column_stack(frame.to_enu(np.array([q.lat for q in tps]), np.array([q.lon for q in tps]),
                                          np.array([q.alt_m for q in tps]))) if tps else np.zeros((0, 3)))
        res = gospa(X, Y, c, p)
        g.append(res["distance"])
        loc.append(res["localisation"])
        mis.append(res["missed"])
        fal.append(res["false"])
        ntr.append(len(tids))
        ntk.append(len(tps))
        assigned = {i: j for i, j in res["pairs"]}
        for i, tid in enumerate(tids):
            j = assigned.get(i)
            history[tid].append((float(t), tps[j].track if j is not None else None))
            if j is not None:
                sq.append(float(np.sum((X[i] - Y[j]) ** 2)))
    breaks = switches = tracked = 0
    for seq in history.values():
        last = None
        was = False
        for _, tr in seq:
            if tr is not None:
                if last is not None and tr != last:
                    switches += 1
                last = tr
                was = True
            elif was:
                breaks += 1
                was = False
        if was:
            pass
        tracked += any(s is not None for _, s in seq)
    # a truth that ends while unassigned is a break only if it had been tracked: trailing gaps count above
    return TrackingScore(grid, np.array(g), np.array(loc), np.array(mis), np.array(fal), np.array(ntr),
                         np.array(ntk), sq, breaks, switches, tracked, len(history), c, p, dict(history),
                         {k: np.array(v) for k, v in alive_map.items()})


def observed_times(labels: np.ndarray, t: np.ndarray, target_ids: list[str], sensor: np.ndarray | None = None,
                   min_sensors: int = 1, window_s: float = 60.0) -> dict[str, np.ndarray]:
    """Per target, the sorted times of the detections it caused (from the simulator's labels).

    With ``sensor`` and ``min_sensors`` = 2, only detections preceded within ``window_s`` by a detection of the
    same target from another sensor count: the target was then localisable, not merely heard by one node.
    """
    out = {}
    for k, tid in enumerate(target_ids):
        sel = np.flatnonzero(labels == k)
        order = sel[np.argsort(t[sel])]
        ts = t[order]
        if min_sensors <= 1 or sensor is None or ts.size == 0:
            out[tid] = ts
            continue
        ss = sensor[order]
        # time of the latest detection by a sensor different from the current one, scanning forward
        keep = np.zeros(ts.size, bool)
        last_by: dict[int, float] = {}
        for q in range(ts.size):
            last_by[int(ss[q])] = ts[q]
            others = [tt for sid, tt in last_by.items() if sid != ss[q] and ts[q] - tt <= window_s]
            keep[q] = len(others) >= min_sensors - 1
            if len(last_by) > 64:  # forget stale sensors
                last_by = {sid: tt for sid, tt in last_by.items() if ts[q] - tt <= window_s}
        out[tid] = ts[keep]
    return out


def heard_targets(labels: np.ndarray, t: np.ndarray, sensor: np.ndarray, acoustic: np.ndarray,
                  target_ids: list[str], window_s: float = 30.0, min_nodes: int = 2) -> dict[str, float]:
    """Targets heard by at least ``min_nodes`` distinct acoustic nodes within some ``window_s`` window.

    Returns target -> the first time that condition holds (the end of the first such window).
    """
    out = {}
    for k, tid in enumerate(target_ids):
        sel = (labels == k) & acoustic[sensor]
        if sel.sum() < min_nodes:
            continue
        ts, ss = t[sel], sensor[sel]
        order = np.argsort(ts)
        ts, ss = ts[order], ss[order]
        lo = 0
        for hi in range(ts.size):
            while ts[hi] - ts[lo] > window_s:
                lo += 1
            if np.unique(ss[lo:hi + 1]).size >= min_nodes:
                out[tid] = float(ts[hi])
                break
    return out


def confirmation_report(score: TrackingScore, heard: dict[str, float], window_s: float = 30.0) -> dict:
    """For targets that met the 'heard' condition: did a confirmed track get assigned to them, and how fast?

    The delay is from the start of the first qualifying hearing window to the first step at which the target is
    assigned to a confirmed track.
    """
    delays, missing = [], []
    for tid, t_h in heard.items():
        got = [t for t, tr in score.history.get(tid, []) if tr is not None and t >= t_h - window_s]
        if got:
            delays.append(got[0] - (t_h - window_s))
        else:
            missing.append(tid)
    return {"qualifying": len(heard), "tracked": len(delays), "missing": missing,
            "median_delay_s": float(np.median(delays)) if delays else None,
            "p90_delay_s": float(np.percentile(delays, 90)) if delays else None}
