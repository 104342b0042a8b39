"""Link recovered debris to the tracks that ended where it was found, with a probability for each.

Model (per debris item at recovery point x, recovered at time t_rec):

- a candidate track k ended (its last confirmed state) no later than t_rec (+ a clock tolerance): debris is found
  hours after a crash, never before the drone came down;
- the drone came down after one of the track's last confirmed states j (an *anchor*, within ``window_s`` of the
  end). A track keeps being predicted after its drone crashed and may still take a few false updates (clutter,
  another drone's report), so the crash need not follow the very last state: anchor j has prior weight
  exp(-T_j / ``false_update_s``), T_j the confirmed (updated) time after it;
- after the anchor the drone flew on unseen for tau (a mixture: Exponential(mean ``coast_mean_s``), and with
  probability ``lost_fraction`` Uniform(0, ``coast_max_s``) for a drone the sensors lost before it came down),
  along its heading, then came down: a powered dive or an unpowered glide adds g ~ Uniform(0, min(h_agl /
  tan(``glide_deg``), ``glide_max_m``)) (a Shahed without power glides a few km at most);
- the crash point is p_j + (|v_j| tau + g) u_j plus Gaussian error: the state's position sigma, the recovery
  position error (``recovery_sigma_m``: fragments scatter, places are reported roughly) and a heading error (the
  velocity covariance when the file has one, plus ``turn_sigma_deg`` for a last turn) growing with the distance
  flown, and a speed error growing with tau;
- the density of x under track k is the weighted sum over anchors of the Monte Carlo average over ``n_samples``
  draws of (tau, g) of that Gaussian (common random numbers: the same draws for every track);
- the anchors end at the track's last *sensor-supported* state (``TrackHistories.support_row``: the last row where
  the position sigma fell, i.e. an update), not at its last "confirmed" row, which the tracker predicts on for a
  while after the last update;
- "none of these tracks" (an untracked drone) has the constant density ``none_density_per_km2``; a track's drone
  left a debris item in the file with prior probability ``p_recovered``.

Debris items are associated *jointly*: each track's drone left one wreck, and when many drones came down
together (a dozen within a few km of Kyiv's centre) the item-by-item answer names the same track for several of
them. The likelihood ratios w[i, k] = (p_recovered / (1 - p_recovered)) x density / none-density go into a
one-to-one assignment: by default (``joint="map"``) the Hungarian method finds the most probable joint assignment
and, for every item and candidate, the best joint assignment that contains that pair (max-marginals), so each item's
top entry is its part of the joint optimum; ``joint="bp"`` gives belief-propagation marginals instead (Williams &
Lau 2014), ``joint=""`` the item-by-item densities. The list holds every candidate above ``min_p``, and p_none is
the remaining mass. Gating and the "none" hypothesis follow the probabilistic data
association: Y. Bar-Shalom, P. Willett, X. Tian, *Tracking and Data Fusion* (YBS, 2011), ch. 2 and 3.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyproj import Geod
from scipy.spatial import cKDTree

from skytrace.forensics.inputs import Debris
from skytrace.forensics.tracks import TrackHistories

WGS84 = Geod(ellps="WGS84")
IMPOSSIBLE = 1e9  # assignment cost of a pair that cannot be (no likelihood)
EARTH_R_M = 6_371_000.0


@dataclass(frozen=True)
class LinkConfig:
    """Parameters of the fall/glide and error model (units in the names)."""

    coast_mean_s: float = 15.0  # mean unseen flight after the anchor (the usual case: the crash ended the track)
    lost_fraction: float = 0.15  # share of drones lost by the sensors some time before they came down
    coast_max_s: float = 600.0
    glide_deg: float = 8.0  # shallowest unpowered glide path angle
    glide_max_m: float = 5000.0  # "a few km at most"
    ground_alt_m: float = 150.0  # altitude of the ground above the ellipsoid, for the glide height
    recovery_sigma_m: float = 150.0  # recovery place vs. impact point (scatter, reporting error)
    turn_sigma_deg: float = 12.0  # heading change after the anchor (a last turn, the terminal manoeuvre)
    speed_sigma_frac: float = 0.15  # relative speed error over the unseen flight
    window_s: float = 900.0  # anchors: confirmed states this long before the track's end
    anchor_spacing_s: float = 5.0
    false_update_s: float = 90.0  # confirmed time after the crash that false updates add (tuned: kyiv-night seed 7)
    time_tolerance_s: float = 120.0  # clock differences between the recovery log and the tracks
    none_density_per_km2: float = 0.01  # density of the "untracked drone" hypothesis
    p_recovered: float = 0.5  # prior probability that a candidate track's drone left a debris item in the file
    end_at_support: bool = True  # anchors end at the last row with a sensor update (TrackHistories.support_row)
    joint: str = "map"  # "map": Hungarian max-marginals; "bp": belief-propagation marginals; "": item by item
    min_p: float = 1e-3
    max_candidates: int = 10
    n_samples: int = 256
    seed: int = 20221010


@dataclass
class LinkResult:
    """Candidates of one debris item: track indices into TrackHistories, probabilities, and p_none."""

    debris: str
    tracks: list[int]
    p: list[float]
    p_none: float


def _fall_samples(cfg: LinkConfig) -> tuple[np.ndarray, np.ndarray]:
    """(tau_s, glide_fraction) draws shared by every track (common random numbers, stratified)."""
    rng = np.random.default_rng(cfg.seed)
    m = cfg.n_samples
    n_lost = int(round(cfg.lost_fraction * m))
    u = (np.arange(m - n_lost) + rng.uniform(size=m - n_lost)) / (m - n_lost)
    cap = 1.0 - np.exp(-cfg.coast_max_s / cfg.coast_mean_s)
    tau_short = -cfg.coast_mean_s * np.log1p(-u * cap)
    tau_lost = (np.arange(n_lost) + rng.uniform(size=n_lost)) / max(n_lost, 1) * cfg.coast_max_s
    g = rng.permutation((np.arange(m) + rng.uniform(size=m)) / m)
    return np.concatenate([tau_short, tau_lost]), g


@dataclass
class Anchors:
    """Candidate crash anchors of all tracks (struct of arrays)."""

    track: np.ndarray
    t: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    speed: np.ndarray
    heading: np.ndarray  # radians from north, clockwise
    hdg_sigma: np.ndarray
    glide_m: np.ndarray
    var0: np.ndarray  # position variance + recovery variance, m^2
    log_w: np.ndarray  # log prior weight, normalised per track
    xyz: np.ndarray  # unit-sphere positions for the KD-tree


def build_anchors(hist: TrackHistories, cfg: LinkConfig) -> Anchors:
    rows, weights = [], []
    for k in range(len(hist)):
        sl = hist.rows(k)
        e = int(hist.support_row[k] if cfg.end_at_support else hist.end_row[k])
        idx = np.arange(sl.start, e + 1)
        idx = idx[hist.t[idx] >= hist.t[e] - cfg.window_s]
        conf = hist.confirmed[idx]
        if conf.any():
            idx = idx[conf]
        # confirmed time after each anchor: row spacing (capped) summed from the end backwards
        gaps = np.minimum(np.diff(hist.t[idx], append=hist.t[idx[-1]]), 2 * cfg.anchor_spacing_s)
        after = np.concatenate([np.cumsum(gaps[::-1])[::-1][1:], [0.0]])
        # thin to one anchor per anchor_spacing_s (keep the last)
        cell = np.floor((hist.t[e] - hist.t[idx]) / cfg.anchor_spacing_s)
        keep = np.concatenate([cell[:-1] != cell[1:], [True]])
        idx, after = idx[keep], after[keep]
        lw = -after / cfg.false_update_s
        lw -= np.logaddexp.reduce(lw)
        rows.append(np.column_stack([np.full(idx.size, k), idx]))
        weights.append(lw)
    rk = np.concatenate(rows).astype(int)
    r = rk[:, 1]
    v_en = hist.vel_enu[r, :2]
    speed = np.hypot(v_en[:, 0], v_en[:, 1])
    heading = np.arctan2(v_en[:, 0], v_en[:, 1])
    h_agl = np.maximum(hist.alt_m[r] - cfg.ground_alt_m, 0.0)
    glide_m = np.minimum(h_agl / np.tan(np.radians(cfg.glide_deg)), cfg.glide_max_m)
    vc = np.nan_to_num(hist.vel_cov[r])
    s, c = np.sin(heading), np.cos(heading)
    var_perp = c**2 * vc[:, 0, 0] + s**2 * vc[:, 1, 1] - 2 * s * c * vc[:, 0, 1]
    hdg_sigma = np.hypot(np.sqrt(np.maximum(var_perp, 0.0)) / np.maximum(speed, 1.0), np.radians(cfg.turn_sigma_deg))
    lat, lon = np.radians(hist.lat[r]), np.radians(hist.lon[r])
    xyz = np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
    return Anchors(track=rk[:, 0], t=hist.t[r], lat=hist.lat[r], lon=hist.lon[r], speed=speed, heading=heading,
                   hdg_sigma=hdg_sigma, glide_m=glide_m, var0=hist.pos_sigma_m[r] ** 2 + cfg.recovery_sigma_m**2,
                   log_w=np.concatenate(weights), xyz=xyz)


def debris_likelihoods(hist: TrackHistories, debris: list[Debris], cfg: LinkConfig | None = None
                       ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per debris item: (candidate track indices, density of its recovery point under each, per m^2)."""
    cfg = cfg or LinkConfig()
    tau, gfrac = _fall_samples(cfg)
    t_end = hist.t[hist.end_row]
    an = build_anchors(hist, cfg)
    tree = cKDTree(an.xyz)
    reach = float(np.max(an.speed, initial=0.0)) * cfg.coast_max_s * (1 + 3 * cfg.speed_sigma_frac) + \
        cfg.glide_max_m + 6 * float(np.sqrt(np.max(an.var0, initial=0.0))) + 1000.0
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for d in debris:
        la, lo = np.radians(d.lat), np.radians(d.lon)
        q = np.array([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])
        idx = np.asarray(tree.query_ball_point(q, reach / EARTH_R_M), dtype=int)
        if idx.size:
            idx = idx[t_end[an.track[idx]] <= d.t + cfg.time_tolerance_s]
        if idx.size == 0:
            out.append((np.zeros(0, int), np.zeros(0)))
            continue
        az, _, dist = WGS84.inv(an.lon[idx], an.lat[idx], np.full(idx.size, d.lon), np.full(idx.size, d.lat))
        rel = np.radians(np.asarray(az)) - an.heading[idx]
        along = np.asarray(dist) * np.cos(rel)
        cross = np.asarray(dist) * np.sin(rel)
        s = an.speed[idx, None] * tau[None, :] + gfrac[None, :] * an.glide_m[idx, None]  # (A, M) distance flown
        var_along = an.var0[idx, None] + (cfg.speed_sigma_frac * an.speed[idx, None] * tau[None, :]) ** 2
        var_cross = an.var0[idx, None] + (s * an.hdg_sigma[idx, None]) ** 2
        dens = np.exp(-0.5 * ((along[:, None] - s) ** 2 / var_along + cross[:, None] ** 2 / var_cross)) / (
            2 * np.pi * np.sqrt(var_along * var_cross))
        per_anchor = dens.mean(axis=1) * np.exp(an.log_w[idx])
        cand, inv = np.unique(an.track[idx], return_inverse=True)
        out.append((cand, np.bincount(inv, weights=per_anchor, minlength=cand.size)))
    return out


def association_marginals(w: np.ndarray, n_iter: int = 200, tol: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """Marginal probabilities of a one-to-one association of debris (rows) to tracks (columns), by loopy belief
    propagation (Williams & Lau, "Approximate evaluation of marginal association probabilities with belief
    propagation", IEEE Trans. AES 50(4), 2014).

    ``w[i, k]`` is the likelihood ratio of "debris i came from track k" against "debris i is from no track in the
    file and track k left no debris in it" (0: impossible). Each debris item comes from at most one track and each
    track's drone left at most one debris item. Returns (P (n, K): P[i, k] = P(i from k), p_none (n,)).
    """
    n, k = w.shape
    if n == 0 or k == 0:
        return np.zeros((n, k)), np.ones(n)
    nu = np.ones((n, k))  # track -> debris messages
    for _ in range(n_iter):
        wn = w * nu
        mu = w / (1.0 + wn.sum(axis=1, keepdims=True) - wn)  # debris -> track
        nu_new = 1.0 / (1.0 + mu.sum(axis=0, keepdims=True) - mu)
        done = np.max(np.abs(nu_new - nu)) < tol
        nu = nu_new
        if done:
            break
    wn = w * nu
    z = 1.0 + wn.sum(axis=1)
    return wn / z[:, None], 1.0 / z


def _min_cost(cost: np.ndarray) -> float:
    """Cost of the cheapest assignment of every row (the matrix has a zero-cost "none" column per row)."""
    from scipy.optimize import linear_sum_assignment

    if cost.shape[0] == 0:
        return 0.0
    r, c = linear_sum_assignment(cost)
    return float(cost[r, c].sum())


def _cost_matrix(logw: np.ndarray) -> np.ndarray:
    """Debris x (tracks + one "none" column per debris item); impossible pairs cost IMPOSSIBLE."""
    n, k = logw.shape
    cost = np.full((n, k + n), IMPOSSIBLE)
    cost[:, :k] = np.where(np.isfinite(logw), -logw, IMPOSSIBLE)
    cost[np.arange(n), k + np.arange(n)] = 0.0
    return cost


def map_max_marginals(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Joint association by the Hungarian method (scipy's linear_sum_assignment on log likelihood ratios), with
    max-marginal probabilities.

    ``w`` as for :func:`association_marginals`. For each debris item i and each of its candidates k (and "none"),
    the best joint assignment that contains i -> k is found (the rest re-solved without row i and column k); its
    weight is the max-marginal M[i, k], and P[i, k] = M[i, k] / (sum_k M[i, k] + M[i, none]). The item's most
    probable entry is then exactly its part of the most probable joint assignment (the MAP), and the others are
    scored by how much worse the best joint explanation that gives i to them is. The max-marginal (max-product)
    approximation of the marginals: C. Bishop, *Pattern Recognition and Machine Learning* (2006), sec. 8.4.5;
    assignment: Kuhn-Munkres as in D. F. Crouse, "On implementing 2D rectangular assignment algorithms", IEEE
    Trans. AES 52(4), 2016 (scipy's implementation). Debris items that share no candidate are solved separately.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    n, k = w.shape
    P = np.zeros((n, k))
    p_none = np.ones(n)
    if n == 0 or k == 0:
        return P, p_none
    with np.errstate(divide="ignore"):
        logw = np.where(w > 0, np.log(np.maximum(w, 1e-300)), -np.inf)
    adj = csr_matrix(np.block([[np.zeros((n, n)), w > 0], [(w > 0).T, np.zeros((k, k))]]))
    _, label = connected_components(adj, directed=False)
    for comp in np.unique(label[:n]):
        rows = np.flatnonzero(label[:n] == comp)
        cols = np.flatnonzero(label[n:] == comp)
        lw = logw[np.ix_(rows, cols)]
        scores = np.full((rows.size, cols.size + 1), -np.inf)  # last column: none
        for a in range(rows.size):
            others = np.delete(np.arange(rows.size), a)
            scores[a, -1] = -_min_cost(_cost_matrix(lw[others]))
            for b in np.flatnonzero(np.isfinite(lw[a])):
                rest = np.delete(lw[others], b, axis=1)
                scores[a, b] = lw[a, b] - _min_cost(_cost_matrix(rest))
        m = np.exp(scores - scores.max(axis=1, keepdims=True))
        m /= m.sum(axis=1, keepdims=True)
        P[np.ix_(rows, cols)] = m[:, :-1]
        p_none[rows] = m[:, -1]
    return P, p_none


def link_debris(hist: TrackHistories, debris: list[Debris], cfg: LinkConfig | None = None) -> list[LinkResult]:
    """Candidate tracks and their probabilities for each debris item (see the module docstring).

    The debris items are associated jointly: a track's drone left one wreck, so when several drones came down
    together the track is given to the debris that explains it best and the others' probabilities move to their
    other candidates or to "none" (marginals by belief propagation, :func:`association_marginals`).
    """
    cfg = cfg or LinkConfig()
    liks = debris_likelihoods(hist, debris, cfg)
    cols = np.unique(np.concatenate([c for c, _ in liks])) if liks else np.zeros(0, int)
    w = np.zeros((len(debris), cols.size))
    none_density = cfg.none_density_per_km2 * 1e-6
    odds = cfg.p_recovered / (1.0 - cfg.p_recovered)
    for i, (cand, lik) in enumerate(liks):
        w[i, np.searchsorted(cols, cand)] = odds * lik / none_density
    # P(i from k); "none" keeps the rest of each row's mass (p_none below: 1 - the listed probabilities)
    if cfg.joint == "map":
        P = map_max_marginals(w)[0]
    elif cfg.joint == "bp":
        P = association_marginals(w)[0]
    else:
        P = w / (1.0 + w.sum(axis=1, keepdims=True))
    out: list[LinkResult] = []
    for i, d in enumerate(debris):
        order = np.argsort(-P[i])[: cfg.max_candidates]
        keep = [int(j) for j in order if P[i, j] >= cfg.min_p]
        out.append(LinkResult(d.id, [int(cols[j]) for j in keep], [float(P[i, j]) for j in keep],
                              float(max(0.0, 1.0 - sum(P[i, j] for j in keep)))))
    return out
