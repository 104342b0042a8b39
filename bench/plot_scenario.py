"""Figures of a tracked scenario: map of truth and confirmed tracks, and GOSPA parts over time.

    python bench/plot_scenario.py DIR --out docs/figures/kyiv-night  [--every 5]

DIR holds sensors.json, truth.jsonl and tracks.jsonl (``skytrace simulate`` then ``skytrace track``). Writes
OUT-map.png and OUT-gospa.png.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from skytrace.evaluation import evaluate_tracks
from skytrace.io import formats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("directory", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--every", type=float, default=5.0)
    args = ap.parse_args()
    d = args.directory
    sensors = formats.read_sensors(d / "sensors.json")
    truth = formats.read_truth(d / "truth.jsonl")
    tracks = formats.read_tracks(d / "tracks.jsonl")
    args.out.parent.mkdir(parents=True, exist_ok=True)

    fig, ax = plt.subplots(figsize=(9, 8))
    ac = [(s.lon, s.lat) for s in sensors if s.kind == "acoustic"]
    rd = [(s.lon, s.lat) for s in sensors if s.kind == "radar"]
    if ac:
        ax.scatter(*zip(*ac, strict=True), s=2, c="0.7", label="acoustic nodes")
    if rd:
        ax.scatter(*zip(*rd, strict=True), s=30, marker="^", c="tab:green", label="radars")
    per = defaultdict(list)
    for p in truth:
        per[p.target].append((p.t, p.lon, p.lat))
    for k, pts in enumerate(per.values()):
        pts.sort()
        a = np.array(pts)
        ax.plot(a[:, 1], a[:, 2], c="k", lw=0.6, alpha=0.6, label="truth" if k == 0 else None)
    pert = defaultdict(list)
    for tp in tracks:
        pert[tp.track].append((tp.t, tp.lon, tp.lat))
    for k, pts in enumerate(pert.values()):
        pts.sort()
        a = np.array(pts)
        ax.plot(a[:, 1], a[:, 2], lw=1.2, alpha=0.8, label="confirmed tracks" if k == 0 else None)
    ax.set_xlabel("longitude (deg)")
    ax.set_ylabel("latitude (deg)")
    ax.set_title(f"{d.name}: {len(per)} drones, {len(pert)} confirmed tracks")
    ax.legend(loc="lower left", fontsize=8)
    ax.set_aspect(1 / np.cos(np.radians(np.mean([p.lat for p in truth]))))
    fig.tight_layout()
    fig.savefig(f"{args.out}-map.png", dpi=110)
    plt.close(fig)

    s = evaluate_tracks(truth, tracks, dt=args.every)
    half = s.c**s.p / 2
    hours = (s.times - s.times[0]) / 3600
    fig, ax = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    ax[0].plot(hours, s.gospa, lw=0.8)
    ax[0].set_ylabel("GOSPA (m)")
    ax[0].set_title(f"mean GOSPA {s.mean_gospa:.0f} m (c = {s.c:.0f} m, p = {s.p:.0f}, alpha = 2)")
    ax[1].plot(hours, s.n_truth, c="k", lw=0.8, label="drones flying")
    ax[1].plot(hours, s.missed / half, lw=0.8, label="missed")
    ax[1].plot(hours, s.false / half, lw=0.8, label="false tracks")
    ax[1].set_xlabel("hours")
    ax[1].set_ylabel("count")
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{args.out}-gospa.png", dpi=110)
    plt.close(fig)
    print(f"wrote {args.out}-map.png and {args.out}-gospa.png")


if __name__ == "__main__":
    main()
