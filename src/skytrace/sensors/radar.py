"""Radar model: range/bearing/elevation plots of small low drones, limited by the radar horizon.

- Line of sight: a target at height h_t above ground is visible from an antenna at h_r only within the
  4/3-effective-Earth horizon d = sqrt(2 k R h_r) + sqrt(2 k R h_t) (Skolnik, Radar Handbook, ch. 26). A Shahed at
  100 m is hidden beyond ~60 km from a 20 m mast: low flight is how these drones evade radars.
- Signal: the radar equation gives SNR proportional to R^-4; we scale it so that SNR = 13 dB at the radar's nominal
  ``max_range_m`` for a Shahed-class RCS (~0.1-0.5 m^2), and detection probability is logistic in SNR around
  11 dB (width 1.5 dB), i.e. Pd ~ 0.8 at max range, ~1 well inside.
- Noise: Gaussian in range, bearing, elevation with the sensor's sigmas. Clutter: Poisson false plots per scan,
  uniform over the covered disc at low elevation (birds, ground and rain clutter leaking through MTI).
"""

from __future__ import annotations

import numpy as np

SNR_AT_MAX_RANGE_DB = 13.0
DETECT_THRESHOLD_DB = 11.0
DETECT_WIDTH_DB = 1.5


def snr_db(range_m, max_range_m):
    r = np.maximum(np.asarray(range_m, dtype=float), 1.0)
    return SNR_AT_MAX_RANGE_DB + 40.0 * np.log10(np.asarray(max_range_m, dtype=float) / r)


def detection_probability(snr):
    return 1.0 / (1.0 + np.exp(-(np.asarray(snr, dtype=float) - DETECT_THRESHOLD_DB) / DETECT_WIDTH_DB))
