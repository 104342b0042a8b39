"""The node's streaming processor: audio blocks in, acoustic detections out. File and live input share it.

Pipeline per 0.5 s (see docs/node.md):

    blocks -> 0.25 s Hann segments, hop 0.125 s, rFFT per channel (4 Hz bins up to 3 kHz)
           -> frame of the last 8 segments (~1.1 s): channel-averaged power -> HarmonicDetector (whitening,
              harmonic sum, CFAR) -> up to 3 harmonic series; second stage: the same search over two disjoint
              frames (2.1 s) for weak steady series each frame shows below threshold
           -> SRP-PHAT on each series' harmonic bins (pair cross-spectra averaged over the frame's segments)
           -> per-node tracker (pitch + bearing continuity) -> classifier on track features, vetoed for
              the overtone comb of a machine repeating below the engine range (sub-harmonic comb)
           -> a detection per confirmed drone-like track per frame (<= 2 lines/s per source)

Only detections leave the node, never audio. ``t`` of a detection is the centre of its frame (when the sound
was received); the processor needs about 0.6 s of audio after ``t`` before it writes the line.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
from scipy.fft import rfft
from scipy.ndimage import maximum_filter1d

from skytrace.model import Detection
from skytrace.node.array import ArrayConfig
from skytrace.node.classify import CLASSES, Classifier, frame_features, track_features
from skytrace.node.doa import NormMusic, SrpPhat
from skytrace.node.harmonic import Candidate, HarmonicConfig, HarmonicDetector


@dataclass
class NodeConfig:
    seg_s: float = 0.25
    seg_hop_s: float = 0.125
    frame_segs: int = 8
    frame_hop_segs: int = 4
    f_doa_min_hz: float = 150.0
    f_doa_max_hz: float = 3000.0
    doa_min_z: float = 1.5
    doa_max_bins: int = 36
    doa_method: str = "music"  # "music" (NormMUSIC) or "srp" (SRP-PHAT)
    confirm_hits: int = 2  # hits among the last confirm_window frames to confirm a track
    confirm_window: int = 3
    drop_misses: int = 3
    assoc_log_f0: float = 0.06
    assoc_az_deg: float = 25.0
    same_source_deg: float = 12.0
    rebirth_window_s: float = 30.0
    uav_threshold: float = 0.5  # P(uav-engine) + P(uav-multirotor) needed to report a drone
    aircraft_threshold: float = 0.6
    subcomb_veto: float = 0.6  # a track whose mean sub-harmonic comb ratio (harmonic.py) reaches this is a machine
    # repeating below the engine range (generator, mower): its P(uav) goes to `other` (engines: ~0.1-0.4)
    report_other: bool = False  # also write lines for harmonic sources classified `other`
    bearing_floor_deg: float = 1.0
    bearing_k_deg: float = 2.0  # sigma ~ k * (64 mm / aperture) / sqrt(SNR_lin) above the floor
    long_frames: int = 3  # second, longer look: the power of this many frames back (disjoint 1.1 s frames,
    # 2.1 s of audio at the defaults) searched for series the short frame missed (0/1: off)
    long_each_z: float = 2.5  # ...and kept only if each of the two frames alone shows it at this statistic
    # (a steady source; an engine sweeping its pitch - a car through its gears - smears and is not kept)
    harmonic: HarmonicConfig = field(default_factory=HarmonicConfig)


@dataclass
class _Track:
    id: int
    f0_hz: float
    az_deg: float
    hits: deque  # 1/0 per frame since birth (last confirm_window)
    feats: deque  # per-frame feature vectors of hits
    f0_hist: deque
    snr_hist: deque
    az_hist: deque
    sub_hist: deque
    misses: int = 0
    n_hits: int = 0
    cls_p: np.ndarray | None = None


def _ang_diff(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


class NodeProcessor:
    """Streaming acoustic-node processor for one array. ``push(block)`` -> new detections; ``flush()`` at the end.

    ``block`` is float audio (n, M) in [-1, 1], any n. Time stamps: sample 0 was taken at ``t0`` (UNIX s).
    """

    def __init__(self, array: ArrayConfig, sample_rate_hz: int, t0: float, cfg: NodeConfig | None = None,
                 classifier: Classifier | None = None):
        self.array = array
        self.fs = int(sample_rate_hz)
        self.t0 = float(t0)
        self.cfg = cfg = cfg or NodeConfig()
        self.nseg = int(round(cfg.seg_s * self.fs))
        self.hop = int(round(cfg.seg_hop_s * self.fs))
        self.df = self.fs / self.nseg
        f_top = min(max(cfg.harmonic.f_max_hz, cfg.f_doa_max_hz), 0.45 * self.fs)
        self.n_bins = int(f_top / self.df) + 3
        self.window = np.hanning(self.nseg + 2)[1:-1].astype(np.float32)
        hcfg = HarmonicConfig(**{**cfg.harmonic.__dict__, "f_max_hz": min(cfg.harmonic.f_max_hz, 0.45 * self.fs)})
        self.detector = HarmonicDetector(self.df, self.n_bins, hcfg)
        self.srp = SrpPhat(array.mics_m, array.sound_speed_mps, planar=not array.has_elevation)
        self.music = NormMusic(array.mics_m, array.sound_speed_mps, planar=not array.has_elevation)
        self.classifier = classifier or Classifier.load_default()
        self.freqs = np.arange(self.n_bins) * self.df
        self.music.set_bin_grid(self.freqs)
        self._buf = np.zeros((0, array.n_mics), dtype=np.float32)
        self._buf_start = 0  # sample index of _buf[0]
        self._next_seg = 0  # sample index where the next segment starts
        self._segs: deque = deque(maxlen=cfg.frame_segs)
        self._frame_power: deque = deque(maxlen=max(cfg.long_frames, 1))
        self._seg_count = 0
        self._tracks: list[_Track] = []
        self._births: deque = deque()  # (t, azimuth) of track births in the last rebirth_window_s
        self._next_id = 0
        self.frames = 0
        self.samples_in = 0
        self.on_track = None  # optional callback(t, track_features, class_probs, candidate, doa)

    # ---- input ---------------------------------------------------------------------------------------------
    def push(self, block: np.ndarray) -> list[Detection]:
        block = np.asarray(block, dtype=np.float32)
        if block.ndim != 2 or block.shape[1] != self.array.n_mics:
            raise ValueError(f"audio block must have shape (n, {self.array.n_mics})")
        self.samples_in += block.shape[0]
        self._buf = np.concatenate([self._buf, block]) if self._buf.size else block.copy()
        out: list[Detection] = []
        while self._next_seg + self.nseg <= self._buf_start + self._buf.shape[0]:
            i0 = self._next_seg - self._buf_start
            seg = self._buf[i0: i0 + self.nseg]
            X = rfft(seg * self.window[:, None], axis=0)[: self.n_bins].T  # (M, B)
            self._segs.append((self._next_seg, X.astype(np.complex64)))
            self._seg_count += 1
            self._next_seg += self.hop
            if (self._seg_count >= self.cfg.frame_segs
                    and (self._seg_count - self.cfg.frame_segs) % self.cfg.frame_hop_segs == 0):
                out.extend(self._frame())
        drop = self._next_seg - self._buf_start
        if drop > 0:
            self._buf = self._buf[drop:]
            self._buf_start += drop
        return out

    def flush(self) -> list[Detection]:
        """End of input: nothing pending is reported (a partial frame is not a measurement)."""
        return []

    @property
    def latency_s(self) -> float:
        """Audio needed after a detection's time stamp before the line is written (frame half-length)."""
        return 0.5 * ((self.cfg.frame_segs - 1) * self.hop + self.nseg) / self.fs

    # ---- one frame -----------------------------------------------------------------------------------------
    def _frame(self) -> list[Detection]:
        cfg = self.cfg
        start = self._segs[0][0]
        end = self._segs[-1][0] + self.nseg
        t = self.t0 + 0.5 * (start + end) / self.fs
        X = np.stack([s[1] for s in self._segs])  # (S, M, B)
        pw = (X.real**2 + X.imag**2)
        power = pw.mean(axis=(0, 1))
        seg_power = pw.mean(axis=1)  # (S, B)
        cands, z = self.detector.detect(power)
        self._frame_power.append((power, self.detector.last_stat))
        cands = cands + self._long_candidates(cands)
        self.frames += 1
        meas = []
        for c in cands:
            doa = self._doa(X, c, z)
            if doa is None:
                continue
            # one source makes several series (octaves, each rotor of a multirotor): within
            # `same_source_deg` of a stronger candidate it is the same source, reported once
            if any(_ang_diff(doa.azimuth_deg, m[1].azimuth_deg) < cfg.same_source_deg for m in meas):
                continue
            feats = frame_features(c, z, seg_power, self.df, doa.peak_ratio)
            meas.append((c, doa, feats))
        return self._track_update(t, meas)

    def _long_candidates(self, short: list[Candidate]) -> list[Candidate]:
        """Second stage: series found in the longer look (the mean power of this frame and the disjoint frame
        ``long_frames`` - 1 back: twice the integration, ~1.5 dB more line SNR after whitening) at a pitch that no
        short-frame candidate explains (not within 3 % of it or of its octaves), and that each of the two frames
        shows on its own at ``long_each_z`` (below the detection threshold but above the noise median): a weak
        steady source builds up there; a sweeping engine does not. A strong source is found in the short frame
        first, so onset latency is unchanged."""
        n = self.cfg.long_frames
        if n < 2 or len(short) >= self.cfg.harmonic.max_sources or len(self._frame_power) < n:
            return []
        (p_old, st_old), (p_new, st_new) = self._frame_power[0], self._frame_power[-1]
        cands, _ = self.detector.detect(0.5 * (p_old + p_new))
        # each frame's own statistic, max-pooled over +-1 pitch cell (the pitch may drift a cell in 1 s)
        each = np.minimum(maximum_filter1d(st_old, 3), maximum_filter1d(st_new, 3))
        taken = [np.log(c.f0_hz) for c in short]
        out = []
        for c in cands:
            lf = np.log(c.f0_hz)
            i = int(np.argmin(np.abs(self.detector.f0 - c.f0_hz)))
            if each[i] < self.cfg.long_each_z:
                continue
            if all(min(abs(lf - t + o) for o in (0.0, np.log(2), -np.log(2))) > 0.03 for t in taken):
                out.append(c)
                taken.append(lf)
        return out[: self.cfg.harmonic.max_sources - len(short)]

    def _doa(self, X: np.ndarray, c: Candidate, z: np.ndarray):
        cfg = self.cfg
        hb = c.harmonic_bins
        b = np.unique(np.concatenate([hb - 1, hb, hb + 1]).clip(1, self.n_bins - 1))  # lines smeared by Doppler,
        # detuned rotors or pitch drift spill into the neighbouring bins
        f = self.freqs[b]
        keep = (f >= cfg.f_doa_min_hz) & (f <= min(cfg.f_doa_max_hz, 0.45 * self.fs)) & (z[b] >= cfg.doa_min_z)
        b = b[keep]
        if b.size < 2:
            return None
        if b.size > cfg.doa_max_bins:
            b = b[np.argsort(-(z[b] * self.freqs[b]))[: cfg.doa_max_bins]]
        Xb = X[:, :, b]  # (S, M, B)
        p = self.srp.pairs
        cross = (Xb[:, p[:, 0], :] * np.conj(Xb[:, p[:, 1], :])).mean(0)  # (P, B)
        w = self.freqs[b] * np.clip(z[b], 0.0, 6.0) ** 2
        if cfg.doa_method == "music":
            res = self.music.estimate_cov(Xb, self.freqs[b], w, b)
            if res is not None:  # coherence for the classifier always from SRP-PHAT's normalised peak
                res.peak_ratio = self.srp.coherence(cross, self.freqs[b], w, res.azimuth_deg, res.elevation_deg)
            return res
        return self.srp.estimate(cross, self.freqs[b], w)

    # ---- per-node tracker ----------------------------------------------------------------------------------
    def _is_uav(self, p: np.ndarray) -> bool:
        return float(p[0] + p[1]) >= self.cfg.uav_threshold

    def _veto(self, p: np.ndarray, tr: _Track) -> np.ndarray:
        """Physical vetoes on the classifier's output: a series that is the overtone comb of a machine repeating
        below the engine range (sub-harmonic comb, harmonic.py) is not a drone: P(uav) moves to `other`."""
        if np.mean(tr.sub_hist) >= self.cfg.subcomb_veto:
            p = p.copy()
            p[3] += p[0] + p[1]
            p[0] = p[1] = 0.0
        return p

    def _track_update(self, t: float, meas: list) -> list[Detection]:
        cfg = self.cfg
        used_tr: set[int] = set()
        assigned: dict[int, tuple] = {}
        # greedy association, strongest measurement first; octave slips (x2, /2) of the pitch are allowed
        for m in sorted(meas, key=lambda m: -m[0].score):
            c, doa, _ = m
            best, best_cost = None, np.inf
            for tr in self._tracks:
                if tr.id in used_tr:
                    continue
                dlog = min(abs(np.log(c.f0_hz / tr.f0_hz) + s) for s in (0.0, np.log(2), -np.log(2)))
                dang = _ang_diff(doa.azimuth_deg, tr.az_deg)
                if dlog < cfg.assoc_log_f0 and dang < cfg.assoc_az_deg:
                    cost = dlog / cfg.assoc_log_f0 + dang / cfg.assoc_az_deg
                    if cost < best_cost:
                        best, best_cost = tr, cost
            if best is None:
                self._births.append((t, doa.azimuth_deg))
                best = _Track(self._next_id, c.f0_hz, doa.azimuth_deg, deque(maxlen=cfg.confirm_window),
                              deque(maxlen=8), deque(maxlen=8), deque(maxlen=8), deque(maxlen=8), deque(maxlen=8))
                self._next_id += 1
                self._tracks.append(best)
            used_tr.add(best.id)
            assigned[best.id] = m
        while self._births and self._births[0][0] < t - cfg.rebirth_window_s:
            self._births.popleft()
        out: list[Detection] = []
        keep: list[_Track] = []
        for tr in self._tracks:
            m = assigned.get(tr.id)
            if m is None:
                tr.hits.append(0)
                tr.misses += 1
                if tr.misses < cfg.drop_misses:
                    keep.append(tr)
                continue
            c, doa, feats = m
            tr.hits.append(1)
            tr.misses = 0
            tr.n_hits += 1
            # keep the track's pitch on the same octave as its history
            f0 = c.f0_hz
            for s in (2.0, 0.5):
                if abs(np.log(f0 * s / tr.f0_hz)) < abs(np.log(f0 / tr.f0_hz)):
                    f0 *= s
            tr.f0_hz, tr.az_deg = f0, doa.azimuth_deg
            tr.feats.append(feats)
            tr.f0_hist.append(np.log(f0))
            tr.snr_hist.append(c.snr_db)
            tr.az_hist.append(doa.azimuth_deg)
            tr.sub_hist.append(c.subcomb)
            keep.append(tr)
            reb = sum(1 for tb, ab in self._births if _ang_diff(ab, tr.az_deg) < cfg.assoc_az_deg) - 1
            tf = track_features(tr, max(reb, 0))
            tr.cls_p = self._veto(self.classifier.predict_proba(tf), tr)
            if sum(tr.hits) < cfg.confirm_hits:
                continue
            if self.on_track is not None:  # benchmarks and training: every confirmed track hit, before the rules
                self.on_track(t, tf, tr.cls_p, c, doa)
            det = self._report(t, tr, c, doa)
            if det is not None:
                out.append(det)
        self._tracks = keep
        return out

    def _report(self, t: float, tr: _Track, c: Candidate, doa) -> Detection | None:
        cfg = self.cfg
        p = tr.cls_p
        if p is None:
            return None
        if self._is_uav(p):
            k = 0 if p[0] >= p[1] else 1
            conf = float(p[k])
        elif p[2] >= cfg.aircraft_threshold:
            k, conf = 2, float(p[2])
        elif cfg.report_other:
            k, conf = 3, float(p[3])
        else:
            return None
        snr_lin = 10 ** (c.snr_db / 10.0)
        k_deg = cfg.bearing_k_deg * 0.064 / max(self.array.aperture_m, 1e-3)
        sigma = float(np.hypot(cfg.bearing_floor_deg, k_deg / np.sqrt(max(snr_lin, 1e-3))))
        el = None
        if self.array.has_elevation:
            el = float(np.clip(doa.elevation_deg, -90.0, 90.0))
        return Detection(t=round(t, 4), sensor=self.array.id, bearing_deg=round(doa.azimuth_deg % 360.0, 2) % 360.0,
                         elevation_deg=el, snr_db=round(float(c.snr_db), 2), cls=CLASSES[k],
                         class_conf=round(min(max(conf, 0.0), 1.0), 3), bearing_sigma_deg=round(min(sigma, 90.0), 2))
