"""Direction of arrival: SRP-PHAT restricted to a source's harmonic bins, batched over a direction grid.

Steered response power with the phase transform (DiBiase, Silverman & Brandstein, "Robust localization in
reverberant rooms", in *Microphone Arrays*, Springer 2001): for each microphone pair (i, j) and frequency bin f
the cross-spectrum R_ij(f) = <X_i X_j*> over the frame's snapshots is whitened to unit magnitude and the response
of a direction u (unit vector toward the source) is

    SRP(u) = sum_f w_f sum_{i<j} Re( R_ij(f)/|R_ij(f)| * exp(-j 2 pi f (r_i - r_j).u / c) )

Only the bins on the detected harmonic series enter (the rest is noise for this source), weighted by
``w_f = f * min(z_f, 6)`` (bearing information grows with frequency squared times SNR; the cap keeps one loud
harmonic from dominating). A coarse grid (4 deg azimuth, 15 deg elevation) is refined around its maximum
(0.25 deg, 2.5 deg) and the azimuth interpolated by a parabola. Planar arrays search the upper hemisphere only
(their response is symmetric about the horizontal plane) and do not report elevation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def unit_vectors(az_deg: np.ndarray, el_deg: np.ndarray) -> np.ndarray:
    """(..., 3) ENU unit vectors toward azimuth (from north, clockwise) and elevation, in degrees."""
    az, el = np.radians(az_deg), np.radians(el_deg)
    return np.stack([np.sin(az) * np.cos(el), np.cos(az) * np.cos(el), np.sin(el)], axis=-1)


@dataclass
class DoaResult:
    azimuth_deg: float
    elevation_deg: float
    peak_ratio: float  # max SRP / sum of weights: 1 = perfectly coherent, ~0 = no direction


def _peak(A: np.ndarray, E: np.ndarray, fine: np.ndarray, step_deg: float = 0.25) -> DoaResult:
    """Maximum of a fine (azimuth x elevation) response, azimuth refined by a parabola through its neighbours."""
    ia, ie = np.unravel_index(int(np.argmax(fine)), fine.shape)
    az = float(A[ia, ie])
    if 0 < ia < A.shape[0] - 1:
        y0, y1, y2 = fine[ia - 1, ie], fine[ia, ie], fine[ia + 1, ie]
        den = y0 - 2 * y1 + y2
        if den < 0:
            az += step_deg * float(np.clip(0.5 * (y0 - y2) / den, -0.5, 0.5))
    return DoaResult(azimuth_deg=az % 360.0, elevation_deg=float(E[ia, ie]), peak_ratio=float(fine[ia, ie]))


class SrpPhat:
    """SRP-PHAT for one array; ``estimate(R, freqs, weights)`` on pair cross-spectra of selected bins."""

    def __init__(self, mics_m: np.ndarray, sound_speed_mps: float, planar: bool, az_step_deg: float = 4.0):
        self.mics = np.asarray(mics_m, float)
        self.c = sound_speed_mps
        self.planar = planar
        m = self.mics.shape[0]
        self.pairs = np.array([(i, j) for i in range(m) for j in range(i + 1, m)], dtype=np.int32)
        self.baselines = self.mics[self.pairs[:, 0]] - self.mics[self.pairs[:, 1]]  # (P, 3)
        els = np.arange(0.0, 76.0, 15.0) if planar else np.arange(-15.0, 76.0, 15.0)
        az = np.arange(0.0, 360.0, az_step_deg)
        A, E = np.meshgrid(az, els, indexing="ij")
        self.grid_az, self.grid_el = A.ravel(), E.ravel()
        self.coarse_tau = self._tau(unit_vectors(self.grid_az, self.grid_el))  # (G, P) seconds
        self.az_step = az_step_deg

    def _tau(self, u: np.ndarray) -> np.ndarray:
        return (u @ self.baselines.T) / self.c

    def _response(self, tau: np.ndarray, phat: np.ndarray, freqs: np.ndarray, w: np.ndarray) -> np.ndarray:
        # phase (G, P, B); Re(phat * exp(-j phase)) = Re(phat) cos + Im(phat) sin
        ph = (2 * np.pi) * tau[:, :, None] * freqs[None, None, :]
        val = np.cos(ph) * phat.real[None] + np.sin(ph) * phat.imag[None]
        return np.einsum("gpb,b->g", val, w)

    def coherence(self, cross: np.ndarray, freqs: np.ndarray, weights: np.ndarray, az_deg: float,
                  el_deg: float) -> float:
        """Normalised SRP-PHAT response (-1..1) in one direction: how coherent the bins are across the array."""
        mag = np.abs(cross)
        phat = np.where(mag > 0, cross / np.maximum(mag, 1e-30), 0.0)
        tau = self._tau(unit_vectors(np.array([az_deg]), np.array([el_deg])))
        return float(self._response(tau, phat, freqs, weights / weights.sum())[0]) / self.pairs.shape[0]

    def estimate(self, cross: np.ndarray, freqs: np.ndarray, weights: np.ndarray) -> DoaResult | None:
        """``cross`` (P, B) pair cross-spectra of B bins at ``freqs`` Hz with non-negative ``weights``."""
        if freqs.size == 0 or not np.any(weights > 0):
            return None
        mag = np.abs(cross)
        phat = np.where(mag > 0, cross / np.maximum(mag, 1e-30), 0.0)
        w = weights / weights.sum()
        srp = self._response(self.coarse_tau, phat, freqs, w)
        g = int(np.argmax(srp))
        az0, el0 = self.grid_az[g], self.grid_el[g]
        fine_az = az0 + np.arange(-self.az_step, self.az_step + 1e-9, 0.25)
        lo = 0.0 if self.planar else -30.0
        fine_el = np.clip(el0 + np.arange(-10.0, 10.01, 2.5), lo, 89.0)
        A, E = np.meshgrid(fine_az, np.unique(fine_el), indexing="ij")
        tau = self._tau(unit_vectors(A.ravel(), E.ravel()))
        fine = self._response(tau, phat, freqs, w).reshape(A.shape)
        res = _peak(A, E, fine)
        res.peak_ratio /= self.pairs.shape[0]
        return res


class NormMusic(SrpPhat):
    """Broadband MUSIC with per-bin normalisation (NormMUSIC: Salvati, Drioli & Foresti, "Incoherent frequency
    fusion for broadband steered response power algorithms in noisy environments", IEEE SPL 21(5), 2014; MUSIC:
    Schmidt, IEEE Trans. AP 34(3), 1986) on the same harmonic bins and grids as :class:`SrpPhat`.

    Per bin, the M x M spatial covariance over the frame's snapshots gives a one-source signal subspace; the
    pseudo-spectrum 1 / |a^H E_n|^2 of each bin is normalised to a maximum of 1 before the weighted sum, so that
    no single bin dominates."""

    def _steer(self, u: np.ndarray, freqs: np.ndarray) -> np.ndarray:
        adv = (u @ self.mics.T) / self.c  # (G, M) seconds of advance
        return np.exp(2j * np.pi * adv[:, None, :] * freqs[None, :, None]).astype(np.complex64)  # (G, B, M)

    def _music(self, a: np.ndarray, es: np.ndarray) -> np.ndarray:
        """Pseudo-spectrum 1 / |a^H E_n|^2 = 1 / (1 - |a^H e_s|^2) for unit-norm steering a (E_n spans the rest)."""
        m = self.mics.shape[0]
        g = np.abs(np.einsum("gbm,bm->gb", a.conj(), es)) ** 2 / m
        return 1.0 / np.maximum(1.0 - g, 1e-6)

    def set_bin_grid(self, freqs_all: np.ndarray) -> None:
        """Precompute the coarse grid's steering vectors for every analysis bin (G x bins x M, complex64)."""
        self._table = self._steer(unit_vectors(self.grid_az, self.grid_el), freqs_all)

    def _coarse_steer(self, bins: np.ndarray) -> np.ndarray:
        return self._table[:, bins, :]

    def estimate_cov(self, snapshots: np.ndarray, freqs: np.ndarray, weights: np.ndarray,
                     bins: np.ndarray) -> DoaResult | None:
        """``snapshots`` (S, M, B) STFT values of the selected analysis ``bins`` at ``freqs`` Hz."""
        if freqs.size == 0 or not np.any(weights > 0):
            return None
        C = np.einsum("smb,snb->bmn", snapshots, snapshots.conj()) / snapshots.shape[0]
        _, vecs = np.linalg.eigh(C)
        es = vecs[:, :, -1]  # signal subspace (one source per harmonic series): the principal eigenvector
        w = weights / weights.sum()
        ps = self._music(self._coarse_steer(bins), es)
        norm = ps.max(0, keepdims=True)
        g = int(np.argmax((ps / norm) @ w))
        az0, el0 = self.grid_az[g], self.grid_el[g]
        fine_az = az0 + np.arange(-self.az_step, self.az_step + 1e-9, 0.25)
        lo = 0.0 if self.planar else -30.0
        fine_el = np.unique(np.clip(el0 + np.arange(-10.0, 10.01, 2.5), lo, 89.0))
        A, E = np.meshgrid(fine_az, fine_el, indexing="ij")
        a = self._steer(unit_vectors(A.ravel(), E.ravel()), freqs)
        fine = ((self._music(a, es) / norm) @ w).reshape(A.shape)
        return _peak(A, E, fine)
