"""Track histories as struct-of-arrays, grouped by track id (from tracks.jsonl via skytrace's readers)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from skytrace.errors import FormatError
from skytrace.io.formats import iter_jsonl
from skytrace.model import TrackPoint


@dataclass
class TrackHistories:
    """All track points sorted by (track, t); ``start[k]:stop[k]`` are the rows of track ``ids[k]``.

    ``end_row[k]`` is the row of the track's last *updated* state: its last ``confirmed`` point (a coasting
    track is only predicted, and a drone that crashed is coasted on past its crash point until deletion);
    tracks that never were confirmed use their last non-deleted point.

    ``support_row[k]`` is the last row up to ``end_row[k]`` that shows a sensor update: the position sigma fell
    since the previous row (a prediction only grows it). The tracker keeps a track "confirmed" for a while after
    its last update, predicting it on, so the rows after ``support_row`` are extrapolations, not evidence.
    """

    ids: list[str]
    start: np.ndarray
    stop: np.ndarray
    end_row: np.ndarray
    support_row: np.ndarray
    t: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    alt_m: np.ndarray
    vel_enu: np.ndarray  # (N, 3) m/s in the local ENU of each point
    pos_sigma_m: np.ndarray
    confirmed: np.ndarray  # bool per row
    vel_cov: np.ndarray  # (N, 2, 2) horizontal velocity covariance (m/s)^2, NaN when the file had none

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, k: int) -> slice:
        return slice(int(self.start[k]), int(self.stop[k]))

    @classmethod
    def from_points(cls, points: list[TrackPoint]) -> TrackHistories:
        n = len(points)
        names = np.array([p.track for p in points], dtype=object)
        t = np.fromiter((p.t for p in points), float, n)
        order = np.lexsort((t, names)) if n else np.zeros(0, int)
        pts = [points[i] for i in order]
        names = names[order]
        t = t[order]
        lat = np.fromiter((p.lat for p in pts), float, n)
        lon = np.fromiter((p.lon for p in pts), float, n)
        alt = np.fromiter((p.alt_m for p in pts), float, n)
        vel = np.array([(p.ve, p.vn, p.vu) for p in pts], dtype=float).reshape(n, 3)
        sig = np.fromiter((p.pos_sigma_m for p in pts), float, n)
        status = np.array([p.status for p in pts], dtype=object)
        vcov = np.full((n, 2, 2), np.nan)
        for i, p in enumerate(pts):
            c = p.covariance
            if c is not None and len(c) == 36:
                m = np.asarray(c, dtype=float).reshape(6, 6)
                vcov[i] = m[3:5, 3:5]
        if n:
            cut = np.flatnonzero(names[1:] != names[:-1]) + 1
            start = np.concatenate([[0], cut])
            stop = np.concatenate([cut, [n]])
        else:
            start = stop = np.zeros(0, int)
        confirmed = status == "confirmed"
        alive = status != "deleted"
        end_row = np.empty(len(start), int)
        for k, (a, b) in enumerate(zip(start, stop, strict=True)):
            for mask in (confirmed[a:b], alive[a:b]):
                idx = np.flatnonzero(mask)
                if idx.size:
                    end_row[k] = a + idx[-1]
                    break
            else:
                end_row[k] = b - 1
        support_row = end_row.copy()
        for k, (a, e) in enumerate(zip(start, end_row, strict=True)):
            fell = np.flatnonzero(sig[a + 1:e + 1] < sig[a:e])
            if fell.size:
                support_row[k] = a + 1 + fell[-1]
        return cls(ids=[str(x) for x in names[start]], start=start, stop=stop, end_row=end_row,
                   support_row=support_row, t=t, lat=lat,
                   lon=lon, alt_m=alt, vel_enu=vel, pos_sigma_m=sig, confirmed=confirmed, vel_cov=vcov)


def read_track_histories(path: str | os.PathLike) -> TrackHistories:
    """Read tracks.jsonl (validated by skytrace's reader) into per-track histories."""
    pts = [p for _, p in iter_jsonl(path, TrackPoint)]
    if not pts:
        raise FormatError(str(path), "no track points")
    return TrackHistories.from_points(pts)
