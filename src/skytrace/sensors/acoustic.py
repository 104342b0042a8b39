"""Acoustic node model: a small microphone array hearing a piston engine and measuring its bearing.

Signal-to-noise ratio (passive sonar equation, in air):

    SNR_dB = SL - 20 log10(r / 1 m) - alpha * r - NL + AG

- SL: in-band source level of the engine at 1 m. A Shahed-136's MD-550 two-stroke (~50 hp) is heard by ear at
  several km; we take 110.5 dB re 20 uPa in the 100-400 Hz band of its firing harmonics, which with the terms
  below gives a 50 % detection range of about 3 km in a quiet rural night and 1.3 km in a city, matching the
  1-5 km reported for Ukraine's "Sky Fortress" nodes. Jet variants are louder (+6 dB), decoys quieter (-4 dB).
- 20 log10 r: spherical spreading.
- alpha: excess attenuation, 2 dB/km: atmospheric absorption at 100-400 Hz (~1 dB/km, ISO 9613-1) plus ground
  effect and turbulence losses for low grazing paths (ISO 9613-2 gives several dB over a few km).
- NL: background noise in band at the node: ~38 dB rural night, ~50 dB urban.
- AG: array gain, 10 log10(M) for M microphones (8 -> 9 dB).

Detection probability is a logistic function of SNR around the detector threshold (6 dB, width 1.5 dB), and each
look's SNR fluctuates by 2 dB (turbulent scintillation), so detection is not a hard range cut.

Bearing accuracy follows the Cramer-Rao bound of direction-of-arrival estimation, whose standard deviation scales
as 1 / sqrt(SNR_linear) (Stoica & Nehorai, "MUSIC, maximum likelihood and Cramer-Rao bound", IEEE Trans. ASSP 37(5),
1989), with a floor for calibration and array-geometry errors:

    sigma_bearing(SNR) = sqrt(floor^2 + (sigma_ref * 10^(-(SNR - SNR_ref) / 20))^2)

``sigma_ref`` is the sensor's nominal ``bearing_sigma_deg`` (at SNR_ref = 10 dB). Elevation (when the array has
vertical aperture) is 1.5 times worse. A small fraction of looks are gross outliers (multipath, wind gusts).

Sound delay: a node that receives at time t hears where the source was at the emission time tau with
t = tau + |p(tau) - s| / c (c = 343 m/s at 20 degC by default).
"""

from __future__ import annotations

import numpy as np

SNR_REF_DB = 10.0
BEARING_FLOOR_DEG = 1.0
ELEVATION_FACTOR = 1.5
DETECT_THRESHOLD_DB = 6.0
DETECT_WIDTH_DB = 1.5
SCINTILLATION_DB = 2.0
EXCESS_ATTENUATION_DB_PER_M = 0.002
ARRAY_GAIN_DB = 9.0
SOURCE_LEVEL_DB = {"shahed": 110.5, "jet": 116.5, "decoy": 106.5}


def snr_db(range_m, noise_db, source_level_db=SOURCE_LEVEL_DB["shahed"], array_gain_db=ARRAY_GAIN_DB):
    """Mean in-band SNR (dB) of an engine at slant range ``range_m`` (see module docstring)."""
    r = np.maximum(np.asarray(range_m, dtype=float), 1.0)
    return source_level_db - 20.0 * np.log10(r) - EXCESS_ATTENUATION_DB_PER_M * r - noise_db + array_gain_db


def detection_probability(snr, threshold_db=DETECT_THRESHOLD_DB, width_db=DETECT_WIDTH_DB):
    """Probability that one look with mean SNR ``snr`` (dB) produces a detection."""
    return 1.0 / (1.0 + np.exp(-(np.asarray(snr, dtype=float) - threshold_db) / width_db))


def bearing_sigma_deg(snr, nominal_sigma_deg=2.5, floor_deg=BEARING_FLOOR_DEG):
    """1-sigma bearing error (deg) at SNR ``snr`` (dB) for an array whose nominal sigma at 10 dB is given."""
    s = np.asarray(snr, dtype=float)
    return np.sqrt(floor_deg**2 + (nominal_sigma_deg * 10.0 ** (-(s - SNR_REF_DB) / 20.0)) ** 2)


def elevation_sigma_deg(snr, nominal_sigma_deg=2.5):
    return ELEVATION_FACTOR * bearing_sigma_deg(snr, nominal_sigma_deg)


def nominal_range_m(noise_db, alt_agl_m=300.0, source_level_db=SOURCE_LEVEL_DB["shahed"]):
    """Ground distance at which a drone at ``alt_agl_m`` is detected with probability 0.5 (bisection on SNR)."""
    lo = np.zeros_like(np.asarray(noise_db, dtype=float))
    hi = np.full_like(lo, 30_000.0)
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        ok = snr_db(np.hypot(mid, alt_agl_m), noise_db, source_level_db) > DETECT_THRESHOLD_DB
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
    return lo
