"""Train the node's source classifier (multinomial logistic regression) on synthetic scenes of the *train* split.

    python bench/node/train_classifier.py [--scenes-per-kind 6] [--out src/skytrace/node/classifier.json]

Deterministic (fixed seeds). Every confirmed track hit of the node processor gives one training sample: its
track features (``skytrace.node.classify.FEATURES``) labelled with the scene's source class when its bearing is
within 25 deg of the true bearing, else `other` (a track on the background). Classes are weighted to balance.
The held-out split (other engines, rotors, confusers and backgrounds) is never used here: bench/bench_node.py
reports on it. Samples come from the first-stage (short frame) candidates only (``long_frames=0``): the shipped
weights were fitted on those, and the second stage's candidates are classified with the same weights.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parent))

import evalkit
import scenes

from skytrace.node.array import load_preset
from skytrace.node.classify import CLASSES, FEATURES, Classifier
from skytrace.node.processor import NodeConfig

ROOT = Path(__file__).resolve().parents[2]


def collect(n_per_kind: int, dur_s: float, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    X, y = [], []
    rng = np.random.default_rng(seed)
    jobs = []
    for kind in scenes.DRONES:
        for i in range(n_per_kind * 2):
            jobs.append((kind, [-12.0, -6.0, 0.0, 10.0][i % 4]))
    for kind in scenes.CONFUSERS_TRAIN:
        for i in range(n_per_kind * (2 if kind in ("chainsaw", "voice", "moped") else 1)):
            jobs.append((kind, [0.0, 10.0, 20.0][i % 3]))
    for _ in range(n_per_kind):
        jobs.append((None, 0.0))
    t_start = time.time()
    for j, (kind, snr) in enumerate(jobs):
        preset = "circle4-32mm" if j % 2 == 0 else "circle6-46mm"
        arr = load_preset(preset)
        bg = scenes.BACKGROUNDS_TRAIN[j % len(scenes.BACKGROUNDS_TRAIN)]
        sc = scenes.make_scene(kind, arr.mics_m, 16000, dur_s, snr, bg, rng, split="train")
        run = evalkit.run_scene(sc.audio, sc.fs, arr, NodeConfig(long_frames=0))
        for t, tf, _p, _f0, az, _el, _snr in run.hits:
            az_t, _ = evalkit.truth_at(sc, t)
            on_src = kind is not None and np.isfinite(az_t) and evalkit.ang_err(az, az_t) < 25.0
            X.append(tf)
            y.append(sc.label if on_src else 3)
        print(f"[{j + 1}/{len(jobs)}] {kind or 'background'} {snr:+.0f} dB {bg}: {len(run.hits)} hits "
              f"({time.time() - t_start:.0f} s)", flush=True)
    return np.asarray(X), np.asarray(y)


def fit(X: np.ndarray, y: np.ndarray, l2: float = 1e-2, other_weight: float = 2.0,
        drop: tuple[str, ...] = ()) -> Classifier:
    """Class-balanced, with `other` weighted ``other_weight`` x more: a false drone costs more than a late one.
    Features in ``drop`` get zero weight (they are kept in the weights file so that the feature list is fixed)."""
    mean, scale = X.mean(0), X.std(0) + 1e-6
    Z = (X - mean) / scale
    Z[:, [FEATURES.index(f) for f in drop]] = 0.0
    k, d = len(CLASSES), Z.shape[1]
    counts = np.bincount(y, minlength=k).astype(float)
    w_cls = np.where(counts > 0, counts.sum() / (k * np.maximum(counts, 1)), 0.0)
    w_cls[CLASSES.index("other")] *= other_weight
    sw = w_cls[y]
    Y = np.eye(k)[y]

    def loss(theta):
        W, b = theta[: k * d].reshape(k, d), theta[k * d:]
        s = Z @ W.T + b
        s -= s.max(1, keepdims=True)
        logp = s - np.log(np.exp(s).sum(1, keepdims=True))
        L = -(sw * (Y * logp).sum(1)).sum() / sw.sum() + l2 * (W**2).sum()
        P = np.exp(logp)
        G = (sw[:, None] * (P - Y)) / sw.sum()
        gW = G.T @ Z + 2 * l2 * W
        return L, np.concatenate([gW.ravel(), G.sum(0)])

    res = minimize(loss, np.zeros(k * d + k), jac=True, method="L-BFGS-B", options={"maxiter": 2000})
    W, b = res.x[: k * d].reshape(k, d), res.x[k * d:]
    return Classifier(mean, scale, W, b)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes-per-kind", type=int, default=6)
    ap.add_argument("--dur", type=float, default=10.0)
    ap.add_argument("--out", type=Path, default=ROOT / "src/skytrace/node/classifier.json")
    ap.add_argument("--drop", default="odd_even,hf_extent,low_share",
                    help="comma-separated features to leave out (zero weight); default: the spectral-shape features "
                    "that depend on blade count, cylinder layout and atmospheric absorption")
    ap.add_argument("--cache", type=Path, help="features .npz: reuse if present, else write (refits are quick)")
    args = ap.parse_args()
    if args.cache and args.cache.exists():
        d = np.load(args.cache)
        X, y = d["X"], d["y"]
    else:
        X, y = collect(args.scenes_per_kind, args.dur)
        if args.cache:
            np.savez(args.cache, X=X, y=y)
    clf = fit(X, y, drop=tuple(f for f in args.drop.split(",") if f))
    pred = np.array([np.argmax(clf.predict_proba(x)) for x in X])
    print("training samples per class:", dict(zip(CLASSES, np.bincount(y, minlength=4).tolist(), strict=True)))
    print("training accuracy per class:",
          {c: round(float((pred[y == i] == i).mean()), 3) if (y == i).any() else None for i, c in enumerate(CLASSES)})
    doc = clf.to_json()
    doc = {k: (np.round(np.asarray(v), 5).tolist() if k in ("mean", "scale", "W", "b") else v) for k, v in doc.items()}
    args.out.write_text(json.dumps(doc) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, {len(FEATURES)} features)")


if __name__ == "__main__":
    main()
