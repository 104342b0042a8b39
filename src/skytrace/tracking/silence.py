"""Negative information from silent sensors: a node that should hear a track but reports nothing lowers its existence.

A drone is loud: every acoustic node within a few km of it hears its engine on most looks. A *ghost* (the crossing
of two nodes' bearings to two different drones) or a *forged* drone (bearings reported by compromised nodes)
has no engine: the honest nodes around its estimated position stay silent. The bearings that feed such a track
are explained equally well by "a drone is there" and by "it is a ghost", so they cannot tell the two apart; the
silence of the *other* nodes can. This module turns that silence into a log-likelihood ratio per track
(IPDA-style missed-detection updates: Musicki, Evans & Stankovic, "Integrated probabilistic data association",
IEEE TAC 39(6), 1994; the same idea as the "negative information" of Koch, "Exploiting negative sensor evidence
for target tracking", 2004).

Per processing frame, for every live track and every *alive* sensor with a detection law (acoustic nodes; optical
cameras) within reach of the track (a KD-tree query over sensor positions, then batched numpy over the
(track, sensor) pairs, never a Python loop per pair):

- the position the sensor would hear now is the *retarded* position p - v r / c (sound delay; c = inf for light);
- the detection probability at that range is the sensor's own law made conservative: for acoustic nodes the SNR
  law of :mod:`skytrace.sensors.acoustic` anchored at the sensor's ``max_range_m`` (its 50 % range), evaluated
  at the range plus two sigma of the track's horizontal uncertainty, the slant range through the track's
  altitude plus one vertical sigma, with a ``silence_margin_db`` SNR margin (a quieter source, a noisier night)
  and capped at ``silence_pd_max`` (looks are not independent: wind, a failing microphone);
- a pair that had a gated detection within the last ``silence_grace_s`` is "heard", whatever the association did;
- every other pair is silent for the frame: ``dt / look_s`` missed looks, each adding log(1 - Pd).

Sensors count only while *alive*: a report or a heartbeat within ``alive_timeout_s`` (an offline node, or one
that sends nothing at all, says nothing). Each assigned detection adds ``silence_hit_nats`` back (a drone heard
by several nodes survives one deaf neighbour); the score is never positive (hits only cancel recent silence), and
it is forgotten with time constant ``silence_memory_s``.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from skytrace.sensors import acoustic as acoustic_model
from skytrace.sensors import registry

NOMINAL_AGL_M = 300.0  # altitude at which an acoustic node's max_range_m is its 50 % detection range
PD_FLOOR = 0.02  # pairs whose conservative Pd is below this are not evaluated


def _pd_acoustic(slant_m: np.ndarray, r50_m: np.ndarray, margin_db: float) -> np.ndarray:
    """Conservative Pd of an engine at ``slant_m`` for nodes whose 50 % ground range at 300 m AGL is ``r50_m``:
    the SNR law (spreading + excess attenuation) relative to the detection threshold at the 50 % range, minus
    ``margin_db``, through the detector's logistic widened by the look-to-look scintillation."""
    r50_slant = np.hypot(r50_m, NOMINAL_AGL_M)
    r = np.maximum(slant_m, 1.0)
    excess = 20.0 * np.log10(r50_slant / r) + acoustic_model.EXCESS_ATTENUATION_DB_PER_M * (r50_slant - r)
    width = np.hypot(acoustic_model.DETECT_WIDTH_DB, acoustic_model.SCINTILLATION_DB)
    return 1.0 / (1.0 + np.exp(-(excess - margin_db) / width))


def _pd_range(slant_m: np.ndarray, r50_m: np.ndarray, margin_db: float) -> np.ndarray:
    """Conservative Pd of a sensor whose only declared figure is a nominal range (optical cameras): a logistic in
    log-range, 50 % at half the nominal range shifted by the margin (dB of range: 20 log10)."""
    excess = 20.0 * np.log10(0.5 * r50_m / np.maximum(slant_m, 1.0))
    return 1.0 / (1.0 + np.exp(-(excess - margin_db) / 2.5))


LAWS = {"acoustic": _pd_acoustic, "range": _pd_range}


class SilenceModel:
    """Which sensors should hear a track, and the log-likelihood of their silence. See the module docstring."""

    def __init__(self, sensor_pos: np.ndarray, max_range_m: np.ndarray, kind: np.ndarray,
                 sound_speed_mps: np.ndarray, ground_alt_m: float, cfg) -> None:
        self.cfg = cfg
        S = len(kind)
        law = np.array([registry.by_code(k).silence_law for k in kind], dtype=object) if S else np.zeros(0, object)
        ok = (law != None) & np.isfinite(sensor_pos[:, 0]) & np.isfinite(max_range_m) & (max_range_m > 0)  # noqa: E711
        self.rows = np.flatnonzero(ok)
        self.law = law[self.rows]
        self.pos = sensor_pos[self.rows]
        self.r50 = max_range_m[self.rows]
        c = np.where(registry.codes_where("sound_delay")[kind[self.rows].astype(np.int64)] if S else False,
                     sound_speed_mps[self.rows], np.inf)
        self.c = np.where(np.isfinite(c) & (c > 0), c, np.inf)
        self.ground_alt_m = ground_alt_m
        self.alive_t = np.full(S, -np.inf)  # latest report or heartbeat of each sensor
        # reach of each sensor: the largest range at which its conservative Pd reaches PD_FLOOR; sensors in tiers
        # of reach, each with its own KD-tree (one very quiet node does not widen every query)
        self.reach = np.zeros(self.rows.size)
        grid = np.linspace(100.0, 4.0 * float(self.r50.max(initial=0.0)) + 1000.0, 400)
        for name in np.unique(self.law):
            sel = np.flatnonzero(self.law == name)
            pd = LAWS[name](grid[None, :], self.r50[sel, None], cfg.silence_margin_db)
            self.reach[sel] = np.max(np.where(pd >= PD_FLOOR, grid[None, :], 0.0), axis=1)
        self.reach_m = float(self.reach.max(initial=0.0))
        self.tiers: list[tuple[np.ndarray, cKDTree, float]] = []
        if self.rows.size:
            edges = np.unique(np.quantile(self.reach, [0.5, 0.9]))
            tier = np.digitize(self.reach, edges, right=True)
            for k in np.unique(tier):
                idx = np.flatnonzero(tier == k)
                self.tiers.append((idx, cKDTree(self.pos[idx, :2]), float(self.reach[idx].max())))
        self._hb_t = np.zeros(0)
        self._hb_s = np.zeros(0, np.int64)

    def __len__(self) -> int:
        return int(self.rows.size)

    # ------------------------------------------------------------------------------------------------ liveness
    def note_reports(self, sensor: np.ndarray, t: np.ndarray) -> None:
        """A report proves its sensor alive at its time."""
        if sensor.size:
            np.maximum.at(self.alive_t, sensor, t)

    def add_heartbeats(self, sensor: np.ndarray, t: np.ndarray) -> None:
        """Heartbeats (a sensor saying "alive, heard nothing"); applied in time order as frames pass them."""
        if sensor.size:
            self._hb_t = np.concatenate([self._hb_t, np.asarray(t, float)])
            self._hb_s = np.concatenate([self._hb_s, np.asarray(sensor, np.int64)])
            order = np.argsort(self._hb_t, kind="stable")
            self._hb_t, self._hb_s = self._hb_t[order], self._hb_s[order]

    def apply_heartbeats(self, t_end: float) -> None:
        n = int(np.searchsorted(self._hb_t, t_end, side="right"))
        if n:
            np.maximum.at(self.alive_t, self._hb_s[:n], self._hb_t[:n])
            self._hb_t, self._hb_s = self._hb_t[n:], self._hb_s[n:]

    # ------------------------------------------------------------------------------------------------ silence
    def missed_llr(self, xy: np.ndarray, v_xy: np.ndarray, agl_m: np.ndarray, sig_h: np.ndarray,
                   sig_v: np.ndarray, track_key: np.ndarray, heard_keys: np.ndarray, t_mid: float,
                   dt: float) -> tuple[np.ndarray, np.ndarray]:
        """Log-likelihood (<= 0) of the silence in a frame of ``dt`` seconds ending near ``t_mid`` for tracks at
        horizontal positions ``xy`` (their predictions at ``t_mid``) with horizontal velocity ``v_xy``, height above
        ground ``agl_m`` and sigmas; pairs whose key (track key * n_sensors + sensor row) is in ``heard_keys`` are
        not silent. Also returns the *power* of the test per track: the information (nats) the frame's looks of
        all alive sensors that should hear the track (heard or not) could bring, sum of -log(1 - Pd)."""
        cfg = self.cfg
        n = xy.shape[0]
        out = np.zeros(n)
        power = np.zeros(n)
        if not self.tiers or n == 0 or dt <= 0:
            return out, power
        # the retarded position is at most |v| reach / c behind: widen the query by that
        c_min = float(self.c.min())
        v_max = float(np.max(np.hypot(v_xy[:, 0], v_xy[:, 1])))
        ti_parts, sj_parts = [], []
        for idx, tree, reach in self.tiers:
            slack = v_max * reach / c_min if np.isfinite(c_min) else 0.0
            hits = tree.query_ball_point(xy, reach + slack, return_sorted=False)
            lens = np.fromiter((len(h) for h in hits), dtype=np.int64, count=n)
            if lens.sum():
                ti_parts.append(np.repeat(np.arange(n), lens))
                sj_parts.append(idx[np.concatenate([np.asarray(h, dtype=np.int64) for h in hits if h])])
        if not ti_parts:
            return out, power
        ti, sj = np.concatenate(ti_parts), np.concatenate(sj_parts)
        row = self.rows[sj]
        alive = self.alive_t[row] >= t_mid - cfg.alive_timeout_s
        ti, sj, row = ti[alive], sj[alive], row[alive]
        if not ti.size:
            return out, power
        heard = np.isin(track_key[ti] * len(self.alive_t) + row, heard_keys)
        d = xy[ti] - self.pos[sj, :2]
        r_h = np.hypot(d[:, 0], d[:, 1])
        tau = r_h / self.c[sj]  # inf c: no delay
        d = d - v_xy[ti] * tau[:, None]
        r_h = np.hypot(d[:, 0], d[:, 1]) + 2.0 * sig_h[ti]
        height = np.maximum(agl_m[ti], 0.0) + sig_v[ti]
        slant = np.hypot(r_h, height)
        pd = np.zeros(ti.size)
        for name in np.unique(self.law[sj]):
            sel = self.law[sj] == name
            pd[sel] = LAWS[name](slant[sel], self.r50[sj[sel]], cfg.silence_margin_db)
        pd = np.minimum(pd, cfg.silence_pd_max)
        looks = dt / cfg.silence_look_s
        llr = np.where(pd >= PD_FLOOR, looks * np.log1p(-pd), 0.0)
        np.add.at(power, ti, -llr)
        np.add.at(out, ti[~heard], llr[~heard])
        return out, power
