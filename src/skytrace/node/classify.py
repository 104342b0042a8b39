"""Source classification from harmonic features: a compact multinomial logistic regression.

Why these features: a drone's engine or rotors are *sustained, steady and rich* harmonic sources: the pitch of a
cruising Shahed's two-stroke drifts slowly (Doppler, throttle trim), a multirotor's four to eight rotors make
slightly detuned, jittering series with motor whine; the common confusers differ in physically robust ways that do
not depend on a particular recording: a moped or chainsaw swings its pitch and level with the throttle, a
generator or vacuum cleaner is rock-steady and often sits at mains-locked or very high pitches, a voice is
harmonic but glides and is syllabic (amplitude modulated at 3-8 Hz), a siren is a single sweeping tone, birds are
high and brief, wind is incoherent across the array. Each frame gives a vector (``frame_features``); a track
averages them over its last 8 frames and adds pitch jitter/span and level stability (``track_features``).

The model (``classifier.json``, a few hundred bytes of weights) is trained by ``bench/node/train_classifier.py``
on synthetic material with part of the generator's parameter space held out; it runs as one small matrix
product per track and frame. Without weights a conservative rule stands in (see ``Classifier.fallback``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

CLASSES = ("uav-engine", "uav-multirotor", "aircraft", "other")
FRAME_FEATURES = ("log2_f0", "score", "snr", "harm_frac", "odd_even", "hf_extent", "peak_width", "am_cv",
                  "inharmonic", "coherence", "low_share")
TRACK_EXTRA = ("pitch_jitter", "pitch_span", "snr_std", "age", "rebirths")
FEATURES = FRAME_FEATURES + TRACK_EXTRA
WEIGHTS_FILE = "classifier.json"


def frame_features(c, z: np.ndarray, seg_power: np.ndarray, df_hz: float, coherence: float) -> np.ndarray:
    """Per-frame features of one harmonic candidate (see FRAME_FEATURES)."""
    bins = c.harmonic_bins
    hz = c.harmonic_z
    f = bins * df_hz
    k = np.arange(1, bins.size + 1)
    low = f <= 1500.0
    harm_frac = float((hz[low] > 2.0).mean()) if low.any() else 0.0
    odd, even = hz[k % 2 == 1], hz[k % 2 == 0]
    odd_even = (float(odd.mean()) if odd.size else 0.0) - (float(even.mean()) if even.size else 0.0)
    strong = hz > 2.0
    hf_extent = float(f[strong].max()) / 3000.0 if strong.any() else 0.0
    top = hz > 3.0
    if top.any():
        nb = bins[top]
        peak_width = float(0.5 * (z[np.maximum(nb - 1, 0)] + z[np.minimum(nb + 1, z.size - 1)]).mean())
    else:
        peak_width = 0.0
    e = seg_power[:, bins].sum(1)
    am_cv = float(e.std() / max(e.mean(), 1e-20))
    near = np.zeros(z.size, bool)
    for off in (-1, 0, 1):
        near[np.clip(bins + off, 0, z.size - 1)] = True
    n_strong_h = int((hz >= 4.0).sum())
    inharm = float(((z >= 4.0) & ~near).sum()) / (n_strong_h + 1.0)
    pos = np.clip(hz, 0, None)
    low_share = float(pos[f < 300.0].sum() / max(pos.sum(), 1e-9))
    return np.array([np.log2(c.f0_hz / 100.0), np.log1p(max(c.score, 0.0)), c.snr_db / 10.0, harm_frac,
                     odd_even / 6.0, hf_extent, peak_width / 6.0, am_cv, min(inharm, 5.0), coherence, low_share])


def track_features(tr, rebirths: int = 0) -> np.ndarray:
    """Features of a node track: mean frame features over its history + pitch and level stability, and how many
    other tracks were born near its bearing in the last 30 s (``rebirths``: an engine revving up and down - a
    chainsaw, a moped, a voice - keeps breaking its pitch track and restarting it; a drone holds one track)."""
    fm = np.mean(np.asarray(tr.feats), axis=0)
    lf = np.asarray(tr.f0_hist)
    jitter = float(np.std(np.diff(lf)) * 100.0) if lf.size >= 3 else (abs(float(np.diff(lf)[0])) * 100.0
                                                                        if lf.size == 2 else 0.0)
    span = float(np.ptp(lf) * 100.0) if lf.size >= 2 else 0.0
    snr_std = float(np.std(np.asarray(tr.snr_hist))) if len(tr.snr_hist) >= 2 else 0.0
    age = min(len(tr.feats), 8) / 8.0
    return np.concatenate([fm, [min(jitter, 20.0), min(span, 60.0), min(snr_std, 10.0), age,
                                min(rebirths, 10) / 10.0]])


@dataclass
class Classifier:
    """Multinomial logistic regression over standardised features: p = softmax(W ((x - mean) / scale) + b)."""

    mean: np.ndarray
    scale: np.ndarray
    W: np.ndarray  # (n_classes, n_features)
    b: np.ndarray
    fallback: bool = False

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, float)
        if self.fallback:
            f0 = 100.0 * 2.0 ** x[0]
            steady = x[FEATURES.index("pitch_span")] < 15.0
            if not steady:
                return np.array([0.1, 0.1, 0.1, 0.7])
            return np.array([0.6, 0.2, 0.1, 0.1]) if f0 < 130 else np.array([0.2, 0.6, 0.1, 0.1])
        s = self.W @ ((x - self.mean) / self.scale) + self.b
        s = s - s.max(axis=-1, keepdims=True)
        e = np.exp(s)
        return e / e.sum(axis=-1, keepdims=True)

    def to_json(self) -> dict:
        return {"classes": list(CLASSES), "features": list(FEATURES), "mean": self.mean.tolist(),
                "scale": self.scale.tolist(), "W": self.W.tolist(), "b": self.b.tolist()}

    @classmethod
    def from_json(cls, doc: dict) -> Classifier:
        if doc.get("features") != list(FEATURES) or doc.get("classes") != list(CLASSES):
            raise ValueError("classifier weights were trained for other features or classes")
        W = np.asarray(doc["W"], float)
        return cls(np.asarray(doc["mean"], float), np.asarray(doc["scale"], float), W, np.asarray(doc["b"], float))

    @classmethod
    def load(cls, path: str | Path) -> Classifier:
        return cls.from_json(json.loads(Path(path).read_text()))

    @classmethod
    def load_default(cls) -> Classifier:
        """The shipped weights, or the conservative rule when none are shipped."""
        f = resources.files("skytrace.node").joinpath(WEIGHTS_FILE)
        if f.is_file():
            return cls.from_json(json.loads(f.read_text()))
        n = len(FEATURES)
        return cls(np.zeros(n), np.ones(n), np.zeros((len(CLASSES), n)), np.zeros(len(CLASSES)), fallback=True)
