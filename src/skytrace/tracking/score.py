"""Track score for confirmation: how likely a track's next hit is clutter, learnt from each sensor's own plots.

The sequential confirmation test (Wald SPRT, :class:`skytrace.tracking.tracker.Tracker`) adds log(pd / pf) for
every hit of a scanning sensor and log((1 - pd) / (1 - pf)) for every missed look; pf is the probability that a
*false* track (started on clutter) finds a plot in its validation gate at the next look. A fixed pf (the old
``sprt_false_continuation`` 0.05) ignores the two things that decide it: how many unexplained plots the sensor
produces per unit area and time, and how small the gate of this track is. Here

    pf = lambda_s * dt_look * A_gate,    A_gate = pi * gamma * sqrt(det S_h)

with lambda_s the sensor's density of plots that no confirmed track explains (per m^2 per s; counted over an
exponential window of ``window_s``, over the horizontal extent the sensor's plots cover), dt_look the sensor's
look interval on the track and S_h the horizontal innovation covariance (predicted track + plot), gamma the
2-dof chi-square gate. A track whose hits fall in small gates of a quiet sensor is confirmed after fewer hits;
in dense clutter pf grows and confirmation slows down (the evidence is weaker). While a sensor has been watched
for less than ``min_span_s`` the fixed fallback pf is used.

The score of a hit uses the plot's fit rather than only its presence in the gate (Blackman & Popoli's track
score): log(pd g(nu) / (lambda_s dt_look)) with g the Gaussian innovation density in the horizontal plane (where
the density is counted), the plot's squared Mahalanobis distance taken over all its measured dimensions; a
plot near the prediction of a small gate is strong evidence, one at the edge of a wide gate weak.

This is the track-score (sequential likelihood ratio) view of confirmation with a uniform clutter density over
the gate: S. Blackman, R. Popoli, *Design and Analysis of Modern Tracking Systems* (1999), sec. 6.2 (track score,
false-target density beta_FT) and sec. 6.4 (SPRT confirmation); Bar-Shalom, Willett & Tian, *Tracking and Data
Fusion* (2011), sec. 3.4 (probability of a clutter point in the gate = lambda V).
"""

from __future__ import annotations

import numpy as np


class ClutterDensity:
    """Per-sensor density of unexplained plots (per m^2 per s), learnt online over an exponential window."""

    def __init__(self, n_sensors: int, window_s: float = 300.0, min_span_s: float = 20.0, min_area_m2: float = 1e6):
        self.window_s = window_s
        self.min_span_s = min_span_s
        self.min_area_m2 = min_area_m2
        self.count = np.zeros(n_sensors)  # decayed number of unexplained plots
        self.span = np.zeros(n_sensors)  # decayed observation time (s)
        self.lo = np.full((n_sensors, 2), np.inf)  # horizontal extent of the sensor's plots (frame m)
        self.hi = np.full((n_sensors, 2), -np.inf)
        self.t_last = np.full(n_sensors, np.nan)

    def observe(self, sensor: np.ndarray, t: np.ndarray, xy: np.ndarray, unexplained: np.ndarray) -> None:
        """Plots of one frame: their sensors, times, horizontal positions and whether a confirmed track took them."""
        if sensor.size == 0:
            return
        s_u = np.unique(sensor)
        t_new = np.full(len(self.count), -np.inf)
        np.maximum.at(t_new, sensor, t)
        t_new = t_new[s_u]
        prev = self.t_last[s_u]
        dt = np.where(np.isfinite(prev), np.maximum(t_new - prev, 0.0), 0.0)
        decay = np.exp(-dt / self.window_s)
        self.count[s_u] *= decay
        self.span[s_u] = self.span[s_u] * decay + dt
        self.t_last[s_u] = np.where(np.isfinite(prev), np.maximum(prev, t_new), t_new)
        np.add.at(self.count, sensor[unexplained], 1.0)
        np.minimum.at(self.lo, sensor, xy)
        np.maximum.at(self.hi, sensor, xy)

    def density(self, sensor: np.ndarray) -> np.ndarray:
        """Unexplained plots per m^2 per s for each sensor row; NaN while not yet known."""
        ext = np.prod(np.maximum(self.hi[sensor] - self.lo[sensor], 0.0), axis=1)
        area = np.maximum(np.where(np.isfinite(ext), ext, 0.0), self.min_area_m2)
        span = self.span[sensor]
        return np.where(span >= self.min_span_s, self.count[sensor] / np.maximum(span, 1e-9) / area, np.nan)


def false_continuation(density: np.ndarray, look_s: np.ndarray, var_h: np.ndarray, gamma: float,
                       fallback: float) -> np.ndarray:
    """pf of each hit: clutter density x look interval x gate area (the fallback where the density or the look
    interval is not known yet), clipped to [1e-6, 0.5]. ``var_h``: trace of the horizontal innovation covariance
    (the gate is taken circular: sqrt(det S_h) ~ trace / 2)."""
    area = np.pi * gamma * 0.5 * np.maximum(var_h, 0.0)
    pf = density * look_s * area
    return np.clip(np.where(np.isfinite(pf), pf, fallback), 1e-6, 0.5)


def hit_llr(pd: np.ndarray, d2: np.ndarray, var_h: np.ndarray, clutter_per_look: np.ndarray, fallback: float
            ) -> np.ndarray:
    """Log-likelihood ratio (target vs clutter) of a hit: log(pd g / lambda) with the innovation density
    g = exp(-d2 / 2) / (2 pi sqrt(det S_h)) (S_h taken circular, sqrt(det S_h) ~ trace / 2) and lambda the
    sensor's unexplained plots per m^2 per look; log(pd / fallback) where lambda is not known yet."""
    g = np.exp(-0.5 * d2) / (2 * np.pi * np.maximum(0.5 * var_h, 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        llr = np.log(pd * g / clutter_per_look)
    return np.where(np.isfinite(llr), llr, np.log(pd / fallback))
