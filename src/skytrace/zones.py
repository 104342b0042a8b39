"""Alert zones: the built-in Ukrainian oblasts and user GeoJSON zones (zones.geojson), with shapely geometry.

A zone is a polygon with an ``id``, a ``name``, optionally ``shelter_s`` (seconds people need to reach shelter)
and ``parent`` (the id of the zone that contains it, e.g. the oblast of a raion). Geometry stays in WGS84
degrees; containment tests are vectorised through a shapely STRtree.
"""

from __future__ import annotations

import functools
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

MAX_ZONES_BYTES = 256 << 20  # the built-in oblasts are 2 MB; a quarter GB of zones is hostile or broken
MAX_ZONES = 100_000
MAX_ZONE_VERTICES = 5_000_000
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


def _parent(v: object, where: str, path: str) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, str | int) or len(str(v)) > 200:
        raise FormatError(path, f"{where}: parent must be a zone id", field="properties.parent")
    return str(v)


def zones_from_geojson(doc: object, path: str = "<zones>") -> ZoneSet:
    """Validate a GeoJSON FeatureCollection of zones (hostile input: every field is checked)."""
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(
            doc.get("features"), list):
        raise FormatError(path, "expected a GeoJSON FeatureCollection with a 'features' list")
    if len(doc["features"]) > MAX_ZONES:
        raise FormatError(path, f"{len(doc['features'])} zones; at most {MAX_ZONES} are supported")
    zones: list[Zone] = []
    seen: set[str] = set()
    n_vertices = 0
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
        if not isinstance(name, str) or len(name) > 500 or len(zid) > 200:
            raise FormatError(path, f"{where}: id must have at most 200 and name at most 500 characters",
                              field="properties.name")
        gj = feat.get("geometry")
        if not isinstance(gj, dict) or gj.get("type") not in ("Polygon", "MultiPolygon"):
            raise FormatError(path, f"{where}: geometry must be a non-empty Polygon or MultiPolygon",
                              field="geometry")
        try:
            geom = shape(gj)
        except Exception as exc:  # shapely raises several types for malformed geometry
            raise FormatError(path, f"{where}: invalid geometry ({str(exc)[:120]})", field="geometry") from None
        if geom.geom_type not in ("Polygon", "MultiPolygon") or geom.is_empty:
            raise FormatError(path, f"{where}: geometry must be a non-empty Polygon or MultiPolygon",
                              field="geometry")
        coords = shapely.get_coordinates(geom)
        n_vertices += len(coords)
        if n_vertices > MAX_ZONE_VERTICES:
            raise FormatError(path, f"more than {MAX_ZONE_VERTICES} vertices in all; simplify the zones")
        if not np.isfinite(coords).all():
            raise FormatError(path, f"{where}: coordinates must be finite numbers", field="geometry")
        minx, miny, maxx, maxy = geom.bounds
        if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
            raise FormatError(path, f"{where}: coordinates outside lon [-180, 180] / lat [-90, 90]",
                              field="geometry")
        if not geom.is_valid:
            geom = shapely.make_valid(geom)
            if geom.geom_type == "GeometryCollection":  # keep the areas; lines and points cannot contain a drone
                geom = shapely.union_all([g for g in geom.geoms if g.geom_type in ("Polygon", "MultiPolygon")])
            if geom.geom_type not in ("Polygon", "MultiPolygon") or geom.is_empty or geom.area == 0:
                raise FormatError(path, f"{where}: the polygon has no area (degenerate or self-overlapping)",
                                  field="geometry")
        parent = props.get("parent")
        zones.append(Zone(
            id=zid, name=name, geometry=geom,
            shelter_s=_num(props, "shelter_s", where, path) or 0.0,
            parent=_parent(parent, where, path),
            population=_num(props, "population", where, path),
            properties={k: v for k, v in props.items() if k not in ("id", "name", "shelter_s", "parent")},
        ))
    if not zones:
        raise FormatError(path, "no zones in the FeatureCollection")
    shapely.prepare([z.geometry for z in zones])
    return ZoneSet(zones)


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not a number in JSON")


def read_zones(path: str | os.PathLike) -> ZoneSet:
    """Read and validate a zones.geojson (size-capped; NaN/Infinity, deep nesting and bad UTF-8 are errors)."""
    p = Path(path)
    if not p.is_file():
        raise FormatError(str(p), "file not found")
    if p.stat().st_size > MAX_ZONES_BYTES:
        raise FormatError(str(p), f"larger than {MAX_ZONES_BYTES} bytes; simplify the zones")
    try:
        doc = json.loads(p.read_bytes().decode("utf-8"), parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise FormatError(str(p), f"not valid JSON ({str(exc)[:160]})") from None
    return zones_from_geojson(doc, str(p))


def builtin_oblasts() -> ZoneSet:
    """The 27 first-level regions of Ukraine (ISO 3166-2:UA ids) as the default zone set."""
    text = resources.files("skytrace.data").joinpath(BUILTIN_OBLASTS).read_text(encoding="utf-8")
    return zones_from_geojson(json.loads(text), BUILTIN_OBLASTS)


@functools.lru_cache(maxsize=1)
def builtin_oblast_ids() -> frozenset[str]:
    """Ids of the built-in oblasts (cached: validating a scenario must not re-read 2 MB of GeoJSON each time)."""
    return frozenset(builtin_oblasts().ids)


def load_places() -> dict:
    """Launch areas and cities (approximate public coordinates) for scenarios."""
    text = resources.files("skytrace.data").joinpath("places.json").read_text(encoding="utf-8")
    return json.loads(text)
