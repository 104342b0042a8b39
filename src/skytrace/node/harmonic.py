"""Harmonic-source detection in one frame: whitened spectrum, harmonic-sum salience, time-CFAR per pitch cell.

1. Whitening. The channel- and snapshot-averaged power spectrum P(f) is divided by its running median over
   ~100 Hz (the local noise floor), so coloured backgrounds (wind and traffic rumble, rain hiss) become flat, and
   standardised robustly (median / MAD) into z(f). z is capped at ``cap`` so that one loud tone (a siren, a bird,
   mains hum) cannot look like a rich harmonic series, and floored at -3.
2. Harmonic sum (Hermes, "Measurement of pitch by subharmonic summation", JASA 83(1), 1988, in the whitened
   form of Klapuri, "Multiple fundamental frequency estimation by summing harmonic amplitudes", ISMIR 2006):
   T(f0) = sum_k z(k f0) / sqrt(K(f0)) over the K harmonics below ``f_max``; the sqrt(K) normalisation makes the
   true f0 beat its octaves (f0/2 sums K noise bins more, 2 f0 half the harmonics). z at a fractional bin is the
   larger of its two neighbours (pitch between bins, slight Doppler smear).
3. CFAR across pitch. The statistic is T standardised across the pitch cells of the same frame (median / MAD):
   memoryless, so a drone heard from the first second of a recording is detected as well as one that arrives
   later (a per-cell running mean in time learned the drone itself when it was present from the start, and
   absorbed a steady drone within seconds). With ``detune`` > 0 a second, tolerant sum over z max-pooled across
   +-detune x f is standardised the same way and the larger statistic kept (detuned rotors, Doppler smear).
   Stationary harmonic confusers (generators, fans) are detected and left to the classifier.
   Up to ``max_sources`` pitches per frame: after each pick its harmonic bins are neutralised and T recomputed.
4. Sub-harmonic comb (``Candidate.subcomb``). A machine whose sound repeats *slower* than the engine range
   (a four-stroke firing every second revolution: a generator's 25/30 Hz firing series, a mower's 22-30 Hz)
   puts lines at every multiple of its slow rate; the harmonic sum, searching 40-420 Hz, finds such a source at
   2, 3 or 4 times its rate, and the lines in between (the half, third or quarter orders of the found pitch)
   are as strong as the found series. For each divisor m in 2..4 with f0 / m below ``f0_min_hz`` the candidate
   measures mean z at the comb positions (k + j/m) f0, j = 1..m-1, over mean z at k f0 (z clipped to >= 0);
   ``subcomb`` is the largest ratio: ~1 for such machines, ~0.1-0.4 for an engine whose own series was found
   (its fundamental in range). The processor vetoes tracks whose mean ratio is high (docs/node.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter1d, median_filter


@dataclass
class HarmonicConfig:
    f0_min_hz: float = 40.0
    f0_max_hz: float = 420.0
    f_max_hz: float = 3000.0  # harmonics considered up to here
    f_min_hz: float = 35.0
    whiten_width_hz: float = 100.0
    cap: float = 6.0
    max_harmonics: int = 60
    max_sources: int = 3
    min_detect_z: float = 4.5  # candidate threshold on the CFAR statistic (noise-only frame maxima: median ~3,
    # 99th percentile ~4 on diffuse, wind and traffic backgrounds in "pitch" mode)
    detune: float = 0.03  # second, tolerant salience: harmonic k may sit within +-detune x its frequency
    # (several slightly detuned rotors of a multirotor, 0: off)


@dataclass
class Candidate:
    """A harmonic series found in one frame."""

    f0_hz: float
    score: float  # CFAR statistic
    salience: float  # raw T(f0)
    harmonic_bins: np.ndarray  # bin index of each harmonic k = 1..K (nearest of the two neighbours)
    harmonic_z: np.ndarray  # whitened, standardised level of each harmonic
    snr_db: float  # band SNR estimate: harmonic power over noise power in [f_min, f_max]
    subcomb: float = 0.0  # strength of the comb between the harmonics whose rate is below f0_min (see above)


def _robust_z(x: np.ndarray) -> np.ndarray:
    med = float(np.median(x))
    return (x - med) / max(1.4826 * float(np.median(np.abs(x - med))), 1e-6)


class HarmonicDetector:
    """Stateful (CFAR statistics) harmonic-series detector over spectra with bin spacing ``df_hz``."""

    def __init__(self, df_hz: float, n_bins: int, cfg: HarmonicConfig | None = None):
        self.cfg = cfg = cfg or HarmonicConfig()
        self.df = df_hz
        self.n_bins = n_bins
        self.b_lo = max(1, int(np.ceil(cfg.f_min_hz / df_hz)))
        self.b_hi = min(n_bins - 2, int(cfg.f_max_hz / df_hz))
        step = min(0.75 * df_hz / cfg.f_max_hz, 0.004)  # top harmonic within 3/8 bin of a grid pitch
        self.f0 = np.exp(np.arange(np.log(cfg.f0_min_hz), np.log(cfg.f0_max_hz), step))
        k = np.arange(1, cfg.max_harmonics + 1)
        pos = self.f0[:, None] * k[None, :] / df_hz  # fractional bins
        valid = (pos <= self.b_hi) & (pos >= self.b_lo)
        self.lo_bin = np.where(valid, np.floor(pos), 0).astype(np.int32)
        self.valid = valid
        self.n_harm = valid.sum(1)
        self.norm = 1.0 / np.sqrt(np.maximum(self.n_harm, 1))
        # flat (pitch, harmonic) pairs that fall in the band: the salience is a weighted bincount over them
        self._rows = np.nonzero(valid)[0].astype(np.int32)
        self._bins = self.lo_bin[valid]
        self.last_max_stat = 0.0
        self.last_stat = np.zeros(self.f0.size)
        self.width_bins = max(3, int(round(cfg.whiten_width_hz / df_hz)) | 1)
        # bands of constant max-pool width 2h+1 bins with h = round(detune x f / df)
        self._detune_bands = []
        if cfg.detune > 0:
            h = np.round(cfg.detune * np.arange(n_bins)).astype(int)
            for hw in np.unique(h[h >= 1]):
                idx = np.flatnonzero(h == hw)
                self._detune_bands.append((2 * int(hw) + 1, int(idx[0]), int(idx[-1]) + 1))

    def whiten(self, power: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(z, floor): standardised whitened spectrum (capped) and the noise floor per bin."""
        floor = median_filter(power, size=self.width_bins, mode="nearest")
        floor = np.maximum(floor, 1e-20)
        w = power / floor
        band = w[self.b_lo: self.b_hi + 1]
        med = np.median(band)
        mad = 1.4826 * np.median(np.abs(band - med)) + 1e-9
        z = np.clip((w - med) / mad, -3.0, self.cfg.cap)
        return z, floor

    def salience(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """T(f0) for every grid pitch, and the bin chosen for each harmonic (the larger of the two neighbours)."""
        zm = np.maximum(z[:-1], z[1:])  # value at a fractional position between bin b and b+1
        T = np.bincount(self._rows, weights=zm[self._bins], minlength=self.f0.size) * self.norm
        return T, self.lo_bin

    def tolerant_z(self, z: np.ndarray) -> np.ndarray:
        """z max-pooled over +-detune x f around each bin (width growing with frequency, in a few bands): the
        harmonic sum over it collects a multirotor's rotors, each a few per cent off the mean rate."""
        out = z.copy()
        for w, lo, hi in self._detune_bands:
            out[lo:hi] = maximum_filter1d(z, size=w, mode="nearest")[lo:hi]
        return out

    def harmonic_bins(self, i: int, z: np.ndarray) -> np.ndarray:
        lo = self.lo_bin[i][self.valid[i]]
        return np.where(z[lo] >= z[lo + 1], lo, lo + 1)

    def subcomb(self, f0_hz: float, z: np.ndarray) -> float:
        """Largest ratio of mean z at the (k + j/m) f0 comb positions to mean z at k f0, over the divisors
        m = 2..4 whose rate f0 / m lies below ``f0_min_hz`` (0 when none does)."""
        ms = [m for m in (2, 3, 4) if f0_hz / m < self.cfg.f0_min_hz]
        if not ms:
            return 0.0
        zm = np.clip(np.maximum(z[:-1], z[1:]), 0.0, None)
        lo, hi = self.b_lo, min(self.b_hi, zm.size - 1)
        k = np.arange(int(hi * self.df / f0_hz) + 1)

        def level(pos: np.ndarray) -> float:
            pos = pos[(pos >= lo) & (pos < hi)]
            return float(zm[pos.astype(np.int64)].mean()) if pos.size else 0.0

        on = level((k + 1) * f0_hz / self.df)
        if on <= 0.0:
            return 0.0
        return max(level(((k[:, None] + np.arange(1, m)[None, :] / m) * f0_hz / self.df).ravel()) / on
                   for m in ms)

    def statistic(self, z: np.ndarray) -> np.ndarray:
        """Detection statistic per pitch: the harmonic sum standardised across pitch cells (median / MAD), and
        with ``detune`` the larger of it and the standardised tolerant sum."""
        T = _robust_z(self.salience(z)[0])
        if self.cfg.detune > 0:
            T = np.maximum(T, _robust_z(self.salience(self.tolerant_z(z))[0]))
        return T

    def detect(self, power: np.ndarray) -> tuple[list[Candidate], np.ndarray]:
        """Candidates of one frame and the whitened spectrum z."""
        cfg = self.cfg
        z, floor = self.whiten(power)
        stat = self.statistic(z)
        self.last_max_stat = float(stat.max())
        self.last_stat = stat
        out: list[Candidate] = []
        zz = z.copy()
        st = stat.copy()
        noise_band = float(floor[self.b_lo: self.b_hi + 1].sum())
        for _ in range(cfg.max_sources):
            i = int(np.argmax(st))
            if st[i] < cfg.min_detect_z:
                break
            bins = self.harmonic_bins(i, zz)
            hz = zz[bins]
            sig = power[bins] - floor[bins]
            sig_side = np.concatenate([power[bins - 1] - floor[bins - 1], power[bins + 1] - floor[bins + 1]])
            sig_p = float(np.clip(sig, 0, None).sum() + 0.5 * np.clip(sig_side, 0, None).sum())
            snr = 10 * np.log10(max(sig_p, 1e-20) / max(noise_band, 1e-20))
            out.append(Candidate(f0_hz=float(self.f0[i]), score=float(st[i]), salience=float(stat[i]),
                                 harmonic_bins=bins.astype(np.int32), harmonic_z=hz.astype(float), snr_db=snr,
                                 subcomb=self.subcomb(float(self.f0[i]), z)))
            # neutralise this series (and its immediate neighbours) and look for the next source
            for off in (-1, 0, 1):
                zz[np.clip(bins + off, 0, zz.size - 1)] = 0.0
            st = self.statistic(zz)
            st[np.abs(np.log(self.f0 / self.f0[i])) < 0.03] = -np.inf
        return out, z
