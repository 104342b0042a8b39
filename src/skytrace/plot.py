"""Static overview plots (PNG) of a run: zones, sensors, truth paths, detections and tracks.

Used by ``skytrace demo`` and ``skytrace plot``; matplotlib with the Agg backend (no display needed).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from skytrace.model import Sensor, TrackPoint, TruthPoint
from skytrace.zones import ZoneSet

KIND_COLOR = {"shahed": "#d62728", "jet": "#9467bd", "decoy": "#ff7f0e", "benchmark": "#d62728"}


def _draw_zones(ax, zones: ZoneSet, alerted: set[str] | None = None) -> None:
    for z in zones:
        geoms = getattr(z.geometry, "geoms", [z.geometry])
        for g in geoms:
            x, y = g.exterior.xy
            hot = alerted is not None and z.id in alerted
            ax.fill(x, y, color="#ffcccc" if hot else "#f2f2f2", zorder=0)
            ax.plot(x, y, color="#999999", lw=0.5, zorder=1)


def overview_png(path: str | Path, zones: ZoneSet, sensors: list[Sensor], truth: list[TruthPoint],
                 tracks: list[TrackPoint] | None = None, detections_latlon: np.ndarray | None = None,
                 title: str = "", alerted: set[str] | None = None,
                 bbox: tuple[float, float, float, float] | None = None, alert_zones: ZoneSet | None = None) -> Path:
    """Draw a map of the run and save it as PNG; returns the path."""
    fig, ax = plt.subplots(figsize=(11, 9), dpi=110)
    _draw_zones(ax, zones, None)
    if alerted and alert_zones is not None:
        for z in alert_zones:
            if z.id in alerted and z.parent:  # draw the alerted cells, not whole oblasts
                for g in getattr(z.geometry, "geoms", [z.geometry]):
                    x, y = g.exterior.xy
                    ax.fill(x, y, color="#ff9999", alpha=0.6, zorder=1)
    ac = np.array([(s.lon, s.lat) for s in sensors if s.kind == "acoustic"])
    if ac.size:
        ax.scatter(ac[:, 0], ac[:, 1], s=3, c="#1f77b4", alpha=0.5, label=f"acoustic nodes ({len(ac)})", zorder=2)
    rad = np.array([(s.lon, s.lat) for s in sensors if s.kind == "radar"])
    if rad.size:
        ax.scatter(rad[:, 0], rad[:, 1], s=60, marker="^", c="#2ca02c", label=f"radars ({len(rad)})", zorder=4)
    if detections_latlon is not None and detections_latlon.size:
        ax.scatter(detections_latlon[:, 1], detections_latlon[:, 0], s=2, c="#8c564b", alpha=0.3,
                   label="position reports", zorder=2)
    paths: dict[str, list[TruthPoint]] = defaultdict(list)
    for p in truth:
        paths[p.target].append(p)
    seen_kinds = set()
    for pts in paths.values():
        kind = pts[0].kind
        lab = f"truth: {kind}" if kind not in seen_kinds else None
        seen_kinds.add(kind)
        ax.plot([p.lon for p in pts], [p.lat for p in pts], color=KIND_COLOR.get(kind, "#d62728"), lw=0.8,
                alpha=0.7, label=lab, zorder=3)
        ax.plot(pts[-1].lon, pts[-1].lat, "x", color="k", ms=4, zorder=5)
    if tracks:
        tp: dict[str, list[TrackPoint]] = defaultdict(list)
        for p in tracks:
            tp[p.track].append(p)
        for i, pts in enumerate(tp.values()):
            ax.plot([p.lon for p in pts], [p.lat for p in pts], color="#17becf", lw=1.4, ls="--",
                    label="tracks" if i == 0 else None, zorder=4)
    if bbox is not None:
        ax.set_xlim(bbox[0], bbox[2])
        ax.set_ylim(bbox[1], bbox[3])
    ax.set_aspect(1 / np.cos(np.radians(np.mean(ax.get_ylim()))))
    ax.set_xlabel("longitude (deg)")
    ax.set_ylabel("latitude (deg)")
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=8)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)
    return out
