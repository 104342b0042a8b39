"""The ``skytrace forensics link`` contract: tracks.jsonl + debris.jsonl (+ launch areas) -> links.jsonl.

One output line per debris item, ``{"debris", "tracks": [{"track", "p"}...], "launch_areas": [{"id", "p"}...],
"p_none"}``, both lists best first. The launch-area probabilities mix the back-projections of the candidate tracks
by their link probabilities; the "none of these tracks" mass goes to the *night's launch-area mix*: the mean of
the back-projections of every linked track in the file, weighted by its link mass (an empirical-Bayes prior: an
untracked drone of an attack most likely came from where the night's tracked drones came from; with no linked
track at all, the catalogue's prior).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from skytrace.forensics.inputs import read_debris, read_launch_areas
from skytrace.forensics.link import LinkConfig, link_debris
from skytrace.forensics.origin import OriginConfig, launch_area_probabilities, smooth_first_states
from skytrace.forensics.tracks import read_track_histories

MIN_BACKPROJECT_P = 0.01  # candidates below this link probability are not back-projected (their mass -> prior)


def night_mix(links: list, per_track: dict[int, np.ndarray], prior: np.ndarray) -> np.ndarray:
    """The night's launch-area mix: the back-projections of the linked tracks averaged by their link mass over all
    debris items (``prior`` when no track was back-projected)."""
    acc = np.zeros_like(prior)
    for lk in links:
        for k, p in zip(lk.tracks, lk.p, strict=True):
            if k in per_track:
                acc += p * per_track[k]
    return acc / acc.sum() if acc.sum() > 0 else prior


def link_files(tracks: str | os.PathLike, debris: str | os.PathLike, areas: str | os.PathLike | None,
               out: str | os.PathLike, link_cfg: LinkConfig | None = None, origin_cfg: OriginConfig | None = None,
               progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """Run the link and the back-projection; write links.jsonl; return its lines as dicts."""
    hist = read_track_histories(tracks)
    items = read_debris(debris)
    cat = read_launch_areas(areas)
    links = link_debris(hist, items, link_cfg)
    need = sorted({k for lk in links for k, p in zip(lk.tracks, lk.p, strict=True) if p >= MIN_BACKPROJECT_P})
    firsts = dict(zip(need, smooth_first_states(hist, need, origin_cfg), strict=True))
    prior = np.array([a.prior for a in cat])
    prior = prior / prior.sum()
    per_track: dict[int, np.ndarray] = {}
    for i, k in enumerate(need):
        per_track[k] = launch_area_probabilities(firsts[k], cat, origin_cfg)
        if progress:
            progress(i + 1, len(need))
    night = night_mix(links, per_track, prior)
    lines = []
    for lk in links:
        mix = np.zeros(len(cat))
        used = 0.0
        for k, p in zip(lk.tracks, lk.p, strict=True):
            if k in per_track:
                mix += p * per_track[k]
                used += p
        mix += (1.0 - used) * night
        mix /= mix.sum()
        order = np.argsort(-mix, kind="stable")
        lines.append({
            "debris": lk.debris,
            "tracks": [{"track": hist.ids[k], "p": round(p, 6)} for k, p in zip(lk.tracks, lk.p, strict=True)],
            "launch_areas": [{"id": cat[i].id, "p": round(float(mix[i]), 6)} for i in order],
            "p_none": round(lk.p_none, 6),
        })
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(json.dumps(line) + "\n")
    return lines
