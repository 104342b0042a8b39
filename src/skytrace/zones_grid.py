"""Finer alert zones generated offline: a square grid clipped to each parent zone (e.g. each oblast).

Ukraine alerts whole oblasts, lately raions; no raion or hromada boundaries ship with skytrace (they are not
available offline), so by default we derive sub-oblast zones ourselves: squares of ``cell_km`` on a side in a
local equal-distance projection, clipped to each oblast, each carrying ``parent`` = the oblast id. A drone heading
for Kyiv then alerts the cells along its path, not half the country.
"""

from __future__ import annotations

import numpy as np
import shapely
from pyproj import Transformer

from skytrace.zones import Zone, ZoneSet


def square_grid(parents: ZoneSet, cell_km: float = 15.0, shelter_s: float = 60.0, min_area_frac: float = 0.05
                ) -> ZoneSet:
    """Square cells of ``cell_km`` clipped to every zone of ``parents``; slivers under ``min_area_frac`` dropped."""
    union = shapely.union_all([z.geometry for z in parents])
    c = union.centroid
    proj = f"+proj=aeqd +lat_0={c.y} +lon_0={c.x} +datum=WGS84 +units=m"
    fwd = Transformer.from_crs("EPSG:4326", proj, always_xy=True)
    inv = Transformer.from_crs(proj, "EPSG:4326", always_xy=True)
    size = cell_km * 1000.0
    zones: list[Zone] = []
    for parent in parents:
        g = shapely.transform(parent.geometry, lambda xy: np.column_stack(fwd.transform(xy[:, 0], xy[:, 1])))
        minx, miny, maxx, maxy = g.bounds
        xs = np.arange(np.floor(minx / size) * size, maxx, size)
        ys = np.arange(np.floor(miny / size) * size, maxy, size)
        gx, gy = np.meshgrid(xs, ys)
        boxes = shapely.box(gx.ravel(), gy.ravel(), gx.ravel() + size, gy.ravel() + size)
        shapely.prepare(g)
        hit = shapely.intersects(g, boxes)
        cells = shapely.intersection(boxes[hit], g)
        keep = shapely.area(cells) >= min_area_frac * size * size
        ii = np.flatnonzero(hit)[keep]
        for k, cell in zip(ii, cells[keep], strict=True):
            geom = shapely.transform(cell, lambda xy: np.column_stack(inv.transform(xy[:, 0], xy[:, 1])))
            if geom.geom_type not in ("Polygon", "MultiPolygon"):
                geom = shapely.union_all([p for p in getattr(geom, "geoms", [geom])
                                          if p.geom_type in ("Polygon", "MultiPolygon")])
                if geom.is_empty:
                    continue
            ix, iy = int(round(gx.ravel()[k] / size)), int(round(gy.ravel()[k] / size))
            zones.append(Zone(id=f"{parent.id}:{ix:+04d}{iy:+04d}", name=f"{parent.name} cell {ix},{iy}",
                              geometry=geom, shelter_s=shelter_s, parent=parent.id))
    return ZoneSet(zones)


def default_zones(cell_km: float = 15.0, shelter_s: float = 60.0) -> ZoneSet:
    """The built-in oblasts plus a square grid of ``cell_km`` inside them: sub-oblast alerts by default."""
    from skytrace.zones import builtin_oblasts

    oblasts = builtin_oblasts()
    grid = square_grid(oblasts, cell_km, shelter_s=shelter_s)
    return ZoneSet(list(oblasts.zones) + list(grid.zones))


def approx_raions(zones: ZoneSet, per_parent: int = 5, seed: int = 0) -> tuple[ZoneSet, dict[str, list[str]]]:
    """Raion-like zones: the grid cells of each parent (oblast) grouped into ``per_parent`` compact pieces.

    Ukraine alerts by raion since December 2025 (~5 raions per oblast, 136 in all). Raion boundaries do not ship
    with skytrace, so this approximates them for the evaluation's raion baseline: k-means on the cells' centres
    (in a local metric frame), each raion the union of its cells. Sizes and compactness are raion-like; the
    borders are not the real ones. Returns the raions (``parent`` = the oblast) and raion id -> member cell ids.
    """
    from scipy.cluster.vq import kmeans2

    cells_of: dict[str, list] = {}
    for z in zones:
        if z.parent:
            cells_of.setdefault(z.parent, []).append(z)
    out: list[Zone] = []
    members: dict[str, list[str]] = {}
    for parent, cells in cells_of.items():
        cen = shapely.centroid([c.geometry for c in cells])
        x, y = shapely.get_x(cen), shapely.get_y(cen)
        pts = np.column_stack([x * np.cos(np.radians(y.mean())), y])
        k = min(per_parent, len(cells))
        if k <= 1:
            label = np.zeros(len(cells), dtype=int)
        else:
            _, label = kmeans2(pts, k, minit="++", seed=seed)
        for j in range(k):
            sel = [c for c, lab in zip(cells, label, strict=True) if lab == j]
            if not sel:
                continue
            rid = f"{parent}:R{j + 1}"
            geom = shapely.union_all([c.geometry for c in sel])
            name = zones[parent].name if parent in zones.index else parent
            out.append(Zone(id=rid, name=f"{name} raion {j + 1} (approx.)", geometry=geom, shelter_s=sel[0].shelter_s,
                            parent=parent))
            members[rid] = [c.id for c in sel]
    return ZoneSet(out), members
