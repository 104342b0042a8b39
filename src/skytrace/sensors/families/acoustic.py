"""Acoustic nodes: a microphone array measures the azimuth (and, with vertical aperture, the elevation) of an
engine's sound.

z = (azimuth[, elevation]) of the *retarded* position: a node receiving sound at t hears where the source was at
t - r/c. With the track state at t, the source position then was p - v tau with c tau = |M(p - v tau) + b|, solved
by fixed-point iteration (contraction v/c ~ 0.15); the Jacobian includes the dependence of the delay on the state
(implicit differentiation: d(d)/d(d0) = I - w dhat^T / (c + dhat.w), w = M v). Bearing noise follows the SNR law
of :mod:`skytrace.sensors.acoustic` (the simulator uses the same law) when the report carries ``snr_db``.
Untrusted by default (low-cost, exposed nodes; one node can be spoofed or hear a generator), and a node's
unexplained bearings feed the bearing clutter map. The gate reach is 2.5 x the node's nominal range.
"""

from __future__ import annotations

import numpy as np

from skytrace.sensors import acoustic as physics
from skytrace.sensors.family import BearingFamily, bearing_rows, local_vectors, nominal_sigmas, prepare_bearings

DELAY_ITERATIONS = 3


class AcousticFamily(BearingFamily):
    name = "acoustic"
    max_plausible_range_m = 30_000.0  # a Shahed engine is audible a few km away; 30 km is generous
    trusted_by_default = False
    reach_factor = 2.5
    silence_law = "acoustic"
    sound_delay = True

    def prepare(self, batch, sensors, frame):
        sig_b, sig_e = nominal_sigmas(batch, sensors)
        snr = batch.snr_db
        own = getattr(batch, "bearing_sigma_deg", None)
        # the SNR law applies where the report did not state its own bearing sigma
        with_snr = np.isfinite(snr) & (~np.isfinite(own) if own is not None else True)
        nominal = sensors.bearing_sigma_deg[batch.sensor]
        sig_b[with_snr] = physics.bearing_sigma_deg(snr[with_snr], nominal[with_snr])
        sig_e[with_snr] = physics.elevation_sigma_deg(snr[with_snr], nominal[with_snr])
        return prepare_bearings(batch, sensors, sig_b, sig_e)

    def predict(self, x, s, geom, has_el):
        M = geom.M[s]
        c = geom.sound_speed_mps[s]
        d0 = local_vectors(x[:, :3], s, geom)
        w = np.einsum("nij,nj->ni", M, x[:, 3:])
        tau = np.linalg.norm(d0, axis=1) / c
        for _ in range(DELAY_ITERATIONS):
            tau = np.linalg.norm(d0 - w * tau[:, None], axis=1) / c
        d = d0 - w * tau[:, None]
        dhat = d / np.maximum(np.linalg.norm(d, axis=1), 1e-9)[:, None]
        G = np.broadcast_to(np.eye(3), (x.shape[0], 3, 3)) - w[:, :, None] * dhat[:, None, :] / (
            c + np.einsum("ni,ni->n", dhat, w))[:, None, None]
        return bearing_rows(d, G @ M, tau, has_el)


FAMILY = AcousticFamily()
