"""Alert zones: the built-in Ukrainian oblasts and user GeoJSON zones (zones.geojson), with shapely geometry.

A zone is a polygon with an ``id``, a ``name``, optionally ``shelter_s`` (seconds people need to reach shelter)
and ``parent`` (the id of the zone that contains it, e.g. the oblast of a raion). Geometry stays in WGS84
degrees; containment tests are vectorised through a shapely STRtree.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import mapping, shape
from shapely.strtree import STRtree

from skytrace.errors import FormatError

BUILTIN_OBLASTS = "ukraine-oblasts.geojson"  # Natural Earth 1:10m admin-1 (public domain), see data/SOURCES.md


@dataclass
class Zone:
    id: str
    name: str
    geometry: shapely.Geometry
    shelter_s: float = 0.0
    parent: str | None = None
    population: float | None = None
    properties: dict = field(default_factory=dict)


@dataclass
class ZoneSet:
    """An ordered set of zones with a spatial index."""

    zones: list[Zone]

    def __post_init__(self) -> None:
        self.index = {z.id: i for i, z in enumerate(self.zones)}
        self.tree = STRtree([z.geometry for z in self.zones])

    def __len__(self) -> int:
        return len(self.zones)

    def __iter__(self):
        return iter(self.zones)

    @property
    def ids(self) -> list[str]:
        return [z.id for z in self.zones]

    def __getitem__(self, zone_id: str) -> Zone:
        return self.zones[self.index[zone_id]]

    def containing(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pairs (point index, zone index) for every point inside every zone (vectorised)."""
        pts = shapely.points(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        pi, zi = self.tree.query(np.atleast_1d(pts), predicate="within")
        return pi, zi

    def to_geojson(self) -> dict:
        feats = []
        for z in self.zones:
            props = dict(z.properties)
            props.update({"id": z.id, "name": z.name})
            if z.shelter_s:
                props["shelter_s"] = z.shelter_s
            if z.parent:
                props["parent"] = z.parent
            feats.append({"type": "Feature", "properties": props, "geometry": mapping(z.geometry)})
        return {"type": "FeatureCollection", "features": feats}

    def write(self, path: str | os.PathLike) -> None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_geojson(), separators=(",", ":")))

    def subset(self, ids: list[str]) -> ZoneSet:
        return ZoneSet([self[i] for i in ids])


def _num(props: dict, key: str, where: str, path: str) -> float | None:
    v = props.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        raise FormatError(path, f"{where}: must be a finite number >= 0, got {v!r}", field=f"properties.{key}")
    return float(v)


def zones_from_geojson(doc: object, path: str = "<zones>") -> ZoneSet:
    """Validate a GeoJSON FeatureCollection of zones (hostile input: every field is checked)."""
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(
            doc.get("features"), list):
        raise FormatError(path, "expected a GeoJSON FeatureCollection with a 'features' list")
    zones: list[Zone] = []
    seen: set[str] = set()
    for i, feat in enumerate(doc["features"]):
        where = f"feature {i}"
        if not isinstance(feat, dict) or not isinstance(feat.get("properties"), dict):
            raise FormatError(path, f"{where}: expected a Feature with a 'properties' object", field="properties")
        props = feat["properties"]
        zid = props.get("id")
        if not isinstance(zid, str | int) or isinstance(zid, bool) or str(zid) == "":
            raise FormatError(path, f"{where}: missing or invalid id", field="properties.id")
        zid = str(zid)
        if zid in seen:
            raise FormatError(path, f"{where}: duplicate zone id {zid!r}", field="properties.id")
        seen.add(zid)
        name = props.get("name", zid)
        if not isinstance(name, str):
            raise FormatError(path, f"{where}: name must be a string", field="properties.name")
        try:
            geom = shape(feat.get("geometry"))
        except Exception as exc:  # shapely raises several types for malformed geometry
            raise FormatError(path, f"{where}: invalid geometry ({exc})", field="geometry") from None
        if geom.geom_type not in ("Polygon", "MultiPolygon") or geom.is_empty:
            raise FormatError(path, f"{where}: geometry must be a non-empty Polygon or MultiPolygon",
                              field="geometry")
        minx, miny, maxx, maxy = geom.bounds
        if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
            raise FormatError(path, f"{where}: coordinates outside lon [-180, 180] / lat [-90, 90]",
                              field="geometry")
        if not geom.is_valid:
            geom = shapely.make_valid(geom)
        parent = props.get("parent")
        zones.append(Zone(
            id=zid, name=name, geometry=geom,
            shelter_s=_num(props, "shelter_s", where, path) or 0.0,
            parent=str(parent) if parent is not None else None,
            population=_num(props, "population", where, path),
            properties={k: v for k, v in props.items() if k not in ("id", "name", "shelter_s", "parent")},
        ))
    if not zones:
        raise FormatError(path, "no zones in the FeatureCollection")
    shapely.prepare([z.geometry for z in zones])
    return ZoneSet(zones)


def read_zones(path: str | os.PathLike) -> ZoneSet:
    p = Path(path)
    if not p.is_file():
        raise FormatError(str(p), "file not found")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormatError(str(p), f"not valid JSON ({exc})") from None
    return zones_from_geojson(doc, str(p))


def builtin_oblasts() -> ZoneSet:
    """The 27 first-level regions of Ukraine (ISO 3166-2:UA ids) as the default zone set."""
    text = resources.files("skytrace.data").joinpath(BUILTIN_OBLASTS).read_text(encoding="utf-8")
    return zones_from_geojson(json.loads(text), BUILTIN_OBLASTS)


def load_places() -> dict:
    """Launch areas and cities (approximate public coordinates) for scenarios."""
    text = resources.files("skytrace.data").joinpath("places.json").read_text(encoding="utf-8")
    return json.loads(text)
