"""Objects for people who work interactively: a :class:`Night` of reports, its :class:`Tracks`, each :class:`Track`.

In the way the ``traffic`` library gives a Flight and a Traffic, these read like the domain, print a readable
summary, expose ``__geo_interface__`` (so shapely, geopandas, folium and friends take them as they are) and
``plot()`` on a matplotlib axes::

    >>> from skytrace import Night
    >>> night = Night.load("run1")            # a directory of interchange files (docs/formats.md)
    >>> night
    Night(run1: 403 sensors, 117,427 detections, 40 truth targets, 118 tracks, 2026-11-22 21:00-02:00 UTC)
    >>> tracks = night.tracks or night.track()  # recorded tracks.jsonl, else run the pipeline now
    >>> tracks["T0007"].length_km, tracks.confirmed().plot()

Objects at the edges, arrays in the core: these wrap the columnar results; nothing here is on a hot path.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from skytrace.errors import SkytraceError


def _utc(t: float, fmt: str = "%H:%M:%S") -> str:
    return datetime.fromtimestamp(t, UTC).strftime(fmt)


@dataclass(frozen=True)
class Track:
    """One track (or one truth target): its points in time order, as columns."""

    id: str
    t: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    alt_m: np.ndarray
    status: tuple[str, ...]
    kind: str = "track"  # "track" or the truth's drone kind (shahed, decoy, jet)

    def __len__(self) -> int:
        return int(self.t.size)

    @property
    def start(self) -> float:
        return float(self.t[0])

    @property
    def end(self) -> float:
        return float(self.t[-1])

    @property
    def duration_s(self) -> float:
        return self.end - self.start

    @property
    def length_km(self) -> float:
        """Ground distance along the track (geodesic, WGS84)."""
        if len(self) < 2:
            return 0.0
        from pyproj import Geod

        return float(Geod(ellps="WGS84").line_length(self.lon, self.lat)) / 1000.0

    @property
    def confirmed(self) -> bool:
        return "confirmed" in self.status

    def at(self, t: float) -> tuple[float, float, float]:
        """Interpolated (lat, lon, alt_m) at time ``t`` (clamped to the track's span)."""
        return (float(np.interp(t, self.t, self.lat)), float(np.interp(t, self.t, self.lon)),
                float(np.interp(t, self.t, self.alt_m)))

    @property
    def __geo_interface__(self) -> dict:
        coords = [[float(x), float(y), float(z)] for x, y, z in zip(self.lon, self.lat, self.alt_m, strict=True)]
        geom = {"type": "LineString", "coordinates": coords} if len(coords) > 1 else \
            {"type": "Point", "coordinates": coords[0] if coords else []}
        return {"type": "Feature", "id": self.id, "geometry": geom,
                "properties": {"id": self.id, "kind": self.kind, "start": self.start, "end": self.end,
                               "points": len(self), "status": sorted(set(self.status))}}

    def __repr__(self) -> str:
        state = "confirmed" if self.confirmed else (self.status[-1] if self.status else "empty")
        return (f"Track({self.id}: {len(self)} points, {_utc(self.start)}-{_utc(self.end)} UTC, "
                f"{self.length_km:.0f} km, {state})")

    def plot(self, ax: Any = None, **kw: Any) -> Any:
        """Draw the ground track on ``ax`` (a new figure if None); returns the axes."""
        ax = _axes(ax)
        ax.plot(self.lon, self.lat, **({"lw": 1.2} | kw))
        return ax


class Tracks(Sequence[Track]):
    """Many tracks (or truth targets): iterate, index by position or id, filter, plot, export as GeoJSON."""

    def __init__(self, tracks: Sequence[Track], name: str = "tracks"):
        self._tracks = list(tracks)
        self._by_id = {t.id: t for t in self._tracks}
        self.name = name

    @classmethod
    def from_points(cls, points: Sequence[Any], name: str = "tracks") -> Tracks:
        """From TrackPoint or TruthPoint records (any order)."""
        by_id: dict[str, list] = {}
        for p in points:
            by_id.setdefault(getattr(p, "track", None) or getattr(p, "target", ""), []).append(p)
        out = []
        for tid in sorted(by_id):
            pts = sorted(by_id[tid], key=lambda p: p.t)
            out.append(Track(tid, np.array([p.t for p in pts]), np.array([p.lat for p in pts]),
                             np.array([p.lon for p in pts]), np.array([p.alt_m for p in pts]),
                             tuple(getattr(p, "status", "truth") for p in pts),
                             getattr(pts[0], "kind", "track") if hasattr(pts[0], "target") else "track"))
        return cls(out, name)

    def __len__(self) -> int:
        return len(self._tracks)

    def __iter__(self) -> Iterator[Track]:
        return iter(self._tracks)

    def __getitem__(self, key: int | str | slice) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            try:
                return self._by_id[key]
            except KeyError:
                raise KeyError(f"no track {key!r} in {self.name}") from None
        if isinstance(key, slice):
            return Tracks(self._tracks[key], self.name)
        return self._tracks[key]

    def confirmed(self) -> Tracks:
        """Only the tracks that were confirmed at some point (what an operator saw)."""
        return Tracks([t for t in self._tracks if t.confirmed], self.name)

    def between(self, t0: float, t1: float) -> Tracks:
        """Tracks alive at some time in [t0, t1]."""
        return Tracks([t for t in self._tracks if t.end >= t0 and t.start <= t1], self.name)

    @property
    def __geo_interface__(self) -> dict:
        return {"type": "FeatureCollection", "features": [t.__geo_interface__ for t in self._tracks]}

    def to_geojson(self, path: str | Path) -> Path:
        import json

        p = Path(path)
        p.write_text(json.dumps(self.__geo_interface__))
        return p

    def __repr__(self) -> str:
        if not self._tracks:
            return f"Tracks({self.name}: none)"
        t0 = min(t.start for t in self._tracks)
        t1 = max(t.end for t in self._tracks)
        n_conf = sum(t.confirmed for t in self._tracks)
        return (f"Tracks({self.name}: {len(self)} ({n_conf} confirmed), {_utc(t0, '%Y-%m-%d %H:%M')}-"
                f"{_utc(t1, '%H:%M')} UTC, {sum(len(t) for t in self._tracks):,} points)")

    def plot(self, ax: Any = None, **kw: Any) -> Any:
        ax = _axes(ax)
        for t in self._tracks:
            t.plot(ax, **kw)
        return ax


class Night:
    """A directory of interchange files (sensors.json, detections.jsonl, truth.jsonl, tracks.jsonl, alerts.jsonl)
    as one object. Files are read when first used."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise SkytraceError(f"{self.directory} is not a directory of skytrace files")
        if not (self.directory / "sensors.json").exists():
            raise SkytraceError(f"{self.directory} has no sensors.json")
        self._cache: dict[str, Any] = {}

    @classmethod
    def load(cls, directory: str | Path) -> Night:
        return cls(directory)

    def _file(self, name: str) -> Path | None:
        p = self.directory / name
        return p if p.exists() else None

    @property
    def sensor_table(self) -> Any:
        if "table" not in self._cache:
            from skytrace.io import formats

            self._cache["table"] = formats.load_sensor_table(self.directory / "sensors.json")
        return self._cache["table"]

    @property
    def sensors(self) -> list:
        return self.sensor_table.records

    @property
    def n_detections(self) -> int:
        p = self._file("detections.jsonl")
        if p is None:
            return 0
        if "n_det" not in self._cache:
            with p.open("rb") as fh:
                self._cache["n_det"] = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
        return self._cache["n_det"]

    @property
    def truth(self) -> Tracks | None:
        if "truth" not in self._cache:
            from skytrace.io import formats

            p = self._file("truth.jsonl")
            self._cache["truth"] = Tracks.from_points(formats.read_truth(p), "truth") if p else None
        return self._cache["truth"]

    @property
    def tracks(self) -> Tracks | None:
        """The recorded tracks.jsonl (None if there is none: see :meth:`track`)."""
        if "tracks" not in self._cache:
            from skytrace.io import formats

            p = self._file("tracks.jsonl")
            self._cache["tracks"] = Tracks.from_points(formats.read_tracks(p), "tracks") if p else None
        return self._cache["tracks"]

    @property
    def alerts(self) -> list:
        from skytrace.io import formats

        p = self._file("alerts.jsonl") or self._file("alerts/alerts.jsonl")
        return formats.read_alerts(p) if p else []

    def track(self, config: Any = None) -> Tracks:
        """Run the pipeline (tracker) over detections.jsonl now, in memory; returns (and keeps) the tracks."""
        from skytrace.io import formats
        from skytrace.pipeline import Pipeline, run

        if self._file("detections.jsonl") is None:
            raise SkytraceError(f"{self.directory} has no detections.jsonl to track")
        points: list = []
        pipe = Pipeline(self.sensor_table, tracker_config=config)
        batches = formats.iter_detection_batches(self.directory / "detections.jsonl", self.sensor_table)
        run(pipe, batches, 1.0, on_step=lambda res: points.extend(res.tracks.to_records()))
        self._cache["tracks"] = Tracks.from_points(points, "tracks")
        return self._cache["tracks"]

    @property
    def __geo_interface__(self) -> dict:
        feats = [{"type": "Feature", "id": s.id, "geometry": {"type": "Point", "coordinates": [s.lon, s.lat]},
                  "properties": {"id": s.id, "kind": s.kind, "layer": "sensor"}}
                 for s in self.sensors if s.lat is not None]
        for layer in (self.truth, self.tracks):
            if layer is not None:
                for f in layer.__geo_interface__["features"]:
                    feats.append(f | {"properties": f["properties"] | {"layer": layer.name}})
        return {"type": "FeatureCollection", "features": feats}

    def __repr__(self) -> str:
        parts = [f"{len(self.sensors):,} sensors", f"{self.n_detections:,} detections"]
        span = None
        for layer in (self.truth, self.tracks):
            if layer is not None and len(layer):
                parts.append(f"{len(layer):,} {'truth targets' if layer.name == 'truth' else 'tracks'}")
                s = (min(t.start for t in layer), max(t.end for t in layer))
                span = s if span is None else (min(span[0], s[0]), max(span[1], s[1]))
        if span is not None:
            parts.append(f"{_utc(span[0], '%Y-%m-%d %H:%M')}-{_utc(span[1], '%H:%M')} UTC")
        return f"Night({self.directory.name}: {', '.join(parts)})"

    def plot(self, ax: Any = None) -> Any:
        """Sensors (muted), truth (thin grey) and tracks (coloured) on one map."""
        ax = _axes(ax)
        pts = np.array([(s.lon, s.lat) for s in self.sensors if s.lat is not None]).reshape(-1, 2)
        if pts.size:
            ax.scatter(pts[:, 0], pts[:, 1], s=2, c="#9ecae1", label=f"sensors ({len(pts)})")
        if self.truth is not None:
            self.truth.plot(ax, color="#bbbbbb", lw=0.8)
        if self.tracks is not None:
            self.tracks.confirmed().plot(ax, lw=1.2)
        ax.set_xlabel("longitude (deg)")
        ax.set_ylabel("latitude (deg)")
        ax.set_title(repr(self))
        return ax


def _axes(ax: Any) -> Any:
    """The given axes, or a new figure's (matplotlib falls back to a file backend where there is no display)."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(9, 7))
    ax.set_aspect(1.5)  # ~ 1 / cos(48 deg): degrees of longitude look like distances at Ukraine's latitudes
    return ax
