"""Link recovered debris to the tracks that ended where it was found, with a probability for each.

Model (per debris item at recovery point x, recovered at time t_rec):

- a candidate track k ended (its last updated state: position p_k, horizontal velocity v_k, altitude h_k,
  position sigma sigma_k) no later than t_rec (+ a clock tolerance); debris is found hours after a crash,
  never before the drone came down;
- after its last update the drone flew on unseen for tau ~ Exponential(mean ``coast_mean_s``) (truncated at
  ``coast_max_s``) along its last heading, then came down: a powered dive or an unpowered glide adds a distance
  g ~ Uniform(0, min(h_agl / tan(glide_deg), glide_max_m)) (a Shahed without power glides a few km at most);
- the crash point is p_k + (|v_k| tau + g) u_k plus Gaussian error: the track's position sigma, the recovery
  position error (``recovery_sigma_m``: where the wreck was found vs. where it hit, fragments scatter) and a
  heading error (the velocity covariance when the file has one, plus ``turn_sigma_deg`` for a last turn) that
  grows with the distance flown;
- the density of x under track k is the Monte Carlo average over ``n_samples`` draws of (tau, g) of that
  Gaussian (quadrature with common random numbers: the same draws for every track, so scores are comparable);
- "none of these tracks" (an untracked drone) has the constant density ``none_density_per_km2``.

Probabilities are the normalised densities (equal prior per candidate); the list holds every candidate above
``min_p`` and the remaining mass goes to "none". Reference for the gating idea: Y. Bar-Shalom, P. Willett, X. Tian,
*Tracking and Data Fusion* (2011), ch. 2 (validation gates and the probabilistic data association's
"none of the measurements" hypothesis).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyproj import Geod

from skytrace.forensics.inputs import Debris
from skytrace.forensics.tracks import TrackHistories

WGS84 = Geod(ellps="WGS84")


@dataclass(frozen=True)
class LinkConfig:
    """Parameters of the fall/glide and error model (units in the names)."""

    coast_mean_s: float = 15.0  # mean unseen flight after the track's last update
    coast_max_s: float = 300.0
    glide_deg: float = 8.0  # shallowest unpowered glide path angle
    glide_max_m: float = 5000.0  # "a few km at most"
    ground_alt_m: float = 150.0  # altitude of the ground above the ellipsoid, for the glide height
    recovery_sigma_m: float = 150.0  # recovery place vs. impact point (scatter, reporting error)
    turn_sigma_deg: float = 12.0  # heading change after the last update (a last turn, the terminal manoeuvre)
    speed_sigma_frac: float = 0.15  # relative speed error over the unseen flight
    time_tolerance_s: float = 120.0  # clock differences between the recovery log and the tracks
    none_density_per_km2: float = 0.01  # density of the "untracked drone" hypothesis
    min_p: float = 1e-3
    max_candidates: int = 10
    n_samples: int = 256
    seed: int = 20221010


@dataclass
class LinkResult:
    """Candidates of one debris item: track row indices into TrackHistories, probabilities, and p_none."""

    debris: str
    tracks: list[int]
    p: list[float]
    p_none: float


def _fall_samples(cfg: LinkConfig) -> tuple[np.ndarray, np.ndarray]:
    """(tau_s, glide_fraction) draws shared by every track (common random numbers)."""
    rng = np.random.default_rng(cfg.seed)
    u = (np.arange(cfg.n_samples) + rng.uniform(size=cfg.n_samples)) / cfg.n_samples  # stratified
    cap = 1.0 - np.exp(-cfg.coast_max_s / cfg.coast_mean_s)
    tau = -cfg.coast_mean_s * np.log1p(-u * cap)
    g = rng.permutation((np.arange(cfg.n_samples) + rng.uniform(size=cfg.n_samples)) / cfg.n_samples)
    return tau, g


def link_debris(hist: TrackHistories, debris: list[Debris], cfg: LinkConfig | None = None) -> list[LinkResult]:
    """Candidate tracks and their probabilities for each debris item (see the module docstring)."""
    cfg = cfg or LinkConfig()
    tau, gfrac = _fall_samples(cfg)
    e = hist.end_row
    t_end = hist.t[e]
    lat_e, lon_e = hist.lat[e], hist.lon[e]
    v_en = hist.vel_enu[e, :2]
    speed = np.hypot(v_en[:, 0], v_en[:, 1])
    heading = np.arctan2(v_en[:, 0], v_en[:, 1])  # radians from north, clockwise
    h_agl = np.maximum(hist.alt_m[e] - cfg.ground_alt_m, 0.0)
    glide_m = np.minimum(h_agl / np.tan(np.radians(cfg.glide_deg)), cfg.glide_max_m)
    # heading sigma: from the velocity covariance where present (sigma_perp / speed), plus a last turn
    vc = hist.vel_cov[e]
    var_perp = np.where(np.isnan(vc[:, 0, 0]), 0.0,
                        (np.cos(heading) ** 2 * np.nan_to_num(vc[:, 0, 0]) + np.sin(heading) ** 2 *
                         np.nan_to_num(vc[:, 1, 1]) - 2 * np.sin(heading) * np.cos(heading) *
                         np.nan_to_num(vc[:, 0, 1])))
    hdg_sigma = np.hypot(np.sqrt(np.maximum(var_perp, 0.0)) / np.maximum(speed, 1.0), np.radians(cfg.turn_sigma_deg))
    reach_max = speed * cfg.coast_max_s * (1 + 3 * cfg.speed_sigma_frac) + glide_m
    base_var = hist.pos_sigma_m[e] ** 2 + cfg.recovery_sigma_m**2
    none_density = cfg.none_density_per_km2 * 1e-6
    out: list[LinkResult] = []
    for d in debris:
        ok = t_end <= d.t + cfg.time_tolerance_s
        cand = np.flatnonzero(ok)
        if cand.size:
            az, _, dist = WGS84.inv(lon_e[cand], lat_e[cand], np.full(cand.size, d.lon), np.full(cand.size, d.lat))
            near = dist <= reach_max[cand] + 6 * np.sqrt(base_var[cand]) + 1000.0
            cand, az, dist = cand[near], np.radians(np.asarray(az)[near]), np.asarray(dist)[near]
        if cand.size == 0:
            out.append(LinkResult(d.id, [], [], 1.0))
            continue
        # the recovery point in each candidate's along/cross-track frame
        rel = az - heading[cand]
        along = dist * np.cos(rel)
        cross = dist * np.sin(rel)
        s = speed[cand, None] * tau[None, :] + gfrac[None, :] * glide_m[cand, None]  # (K, M) distance flown
        var_along = base_var[cand, None] + (cfg.speed_sigma_frac * speed[cand, None] * tau[None, :]) ** 2
        var_cross = base_var[cand, None] + (s * hdg_sigma[cand, None]) ** 2
        dens = np.exp(-0.5 * ((along[:, None] - s) ** 2 / var_along + cross[:, None] ** 2 / var_cross)) / (
            2 * np.pi * np.sqrt(var_along * var_cross))
        lik = dens.mean(axis=1)
        total = lik.sum() + none_density
        p = lik / total
        order = np.argsort(-p)[: cfg.max_candidates]
        keep = [int(i) for i in order if p[i] >= cfg.min_p]
        out.append(LinkResult(d.id, [int(cand[i]) for i in keep], [float(p[i]) for i in keep],
                              float(1.0 - sum(p[i] for i in keep))))
    return out
