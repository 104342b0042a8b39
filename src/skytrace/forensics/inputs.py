"""Inputs of the forensic link: debris.jsonl (recovery time and place) and launch-area catalogues.

Both are hostile input: every line and field is validated, and a bad one raises a
:class:`~skytrace.errors.FormatError` naming file, line and field.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import msgspec

from skytrace.errors import FormatError
from skytrace.io.formats import iter_jsonl


class Debris(msgspec.Struct, forbid_unknown_fields=False):
    """One recovered debris item: a line of debris.jsonl. ``t`` is the recovery time (UNIX s), hours after the
    crash at most days; ``lat``/``lon`` the recovery place (WGS84 degrees)."""

    id: str
    t: float
    lat: float
    lon: float

    def __post_init__(self) -> None:
        if not self.id.strip():
            raise ValueError("`id` must not be empty")
        if not math.isfinite(self.t):
            raise ValueError(f"`t` must be finite, got {self.t}")
        if not (math.isfinite(self.lat) and -90.0 <= self.lat <= 90.0):
            raise ValueError(f"`lat` must be in [-90, 90], got {self.lat}")
        if not (math.isfinite(self.lon) and -180.0 <= self.lon <= 180.0):
            raise ValueError(f"`lon` must be in [-180, 180], got {self.lon}")


def read_debris(path: str | os.PathLike) -> list[Debris]:
    """Read debris.jsonl; ids must be unique."""
    out: list[Debris] = []
    seen: set[str] = set()
    for lineno, rec in iter_jsonl(path, Debris):
        if rec.id in seen:
            raise FormatError(str(path), f"duplicate debris id {rec.id!r}", line=lineno, field="id")
        seen.add(rec.id)
        out.append(rec)
    if not out:
        raise FormatError(str(path), "no debris items")
    return out


@dataclass(frozen=True)
class LaunchArea:
    """A launch area of a catalogue: centre (degrees), radius of the area (km) and prior weight."""

    id: str
    name: str
    lat: float
    lon: float
    radius_km: float = 10.0
    prior: float = 1.0


BUILTIN_AREAS = "places.json"


def _area(path: str, i: int, item: object) -> LaunchArea:
    where = f"launch_areas[{i}]"
    if not isinstance(item, dict):
        raise FormatError(path, "must be an object", field=where)
    area_id = item.get("id")
    if not isinstance(area_id, str) or not area_id.strip():
        raise FormatError(path, "missing or empty string `id`", field=f"{where}.id")
    vals = {}
    for key, lo, hi, default in (("lat", -90.0, 90.0, None), ("lon", -180.0, 180.0, None),
                                 ("radius_km", 0.0, 500.0, 10.0), ("prior", 0.0, 1e9, 1.0)):
        v = item.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or not lo <= v <= hi:
            raise FormatError(path, f"must be a number in [{lo}, {hi}], got {v!r}", field=f"{where}.{key}")
        vals[key] = float(v)
    if vals["radius_km"] <= 0:
        raise FormatError(path, "must be > 0", field=f"{where}.radius_km")
    name = item.get("name", area_id)
    return LaunchArea(id=area_id, name=str(name), **vals)


def parse_launch_areas(doc: object, path: str = "<launch areas>") -> list[LaunchArea]:
    """Launch areas from ``{"launch_areas": [...]}`` (the places.json layout) or a plain list of areas."""
    items = doc.get("launch_areas") if isinstance(doc, dict) else doc
    if not isinstance(items, list) or not items:
        raise FormatError(path, "expected {\"launch_areas\": [{\"id\", \"lat\", \"lon\"}, ...]} with at least one area")
    areas = [_area(path, i, it) for i, it in enumerate(items)]
    ids = [a.id for a in areas]
    dup = {x for x in ids if ids.count(x) > 1}
    if dup:
        raise FormatError(path, f"duplicate launch area id(s) {sorted(dup)}", field="launch_areas")
    if sum(a.prior for a in areas) <= 0:
        raise FormatError(path, "at least one area needs a prior > 0", field="launch_areas")
    return areas


def read_launch_areas(path: str | os.PathLike | None = None) -> list[LaunchArea]:
    """Read a launch-area catalogue; None reads the built-in areas (publicly named by Ukraine's Air Force)."""
    if path is None:
        text = resources.files("skytrace.data").joinpath(BUILTIN_AREAS).read_text(encoding="utf-8")
        return parse_launch_areas(json.loads(text), BUILTIN_AREAS)
    p = Path(path)
    if not p.is_file():
        raise FormatError(str(p), "file not found")
    if p.stat().st_size > 16 << 20:
        raise FormatError(str(p), "larger than 16 MiB")
    try:
        doc = json.loads(p.read_bytes(), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormatError(str(p), f"not valid JSON ({exc})") from None
    return parse_launch_areas(doc, str(p))
