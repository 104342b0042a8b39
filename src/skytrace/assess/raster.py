"""Point-in-zone lookup for millions of predicted points: a raster of the zones, built once.

Zones are rasterised onto a regular lon/lat grid (``cell_m`` ~ 1 km at the zones' mean latitude). Each raster
cell lists the zones that contain its centre (CSR arrays: overlapping and nested zones are fine); a zone too
small to contain any cell centre gets the cell of its representative point, so that it can still be alerted.
Looking up N points is then two array indexings, independent of the zones' complexity. The cost is resolution:
a point within ~1 km of a zone border may be attributed to the neighbour, which for alerting (where the predicted
positions are uncertain by kilometres) is immaterial; it is documented in docs/warnings.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from skytrace.zones import ZoneSet


@dataclass
class ZoneRaster:
    lon0: float
    lat0: float
    dlon: float
    dlat: float
    nx: int
    ny: int
    cell_ptr: np.ndarray  # (nx*ny + 1,) CSR pointers into cell_zone
    cell_zone: np.ndarray  # zone indices

    @classmethod
    def build(cls, zones: ZoneSet, cell_m: float = 1000.0) -> ZoneRaster:
        minx, miny, maxx, maxy = shapely.total_bounds([z.geometry for z in zones])
        lat_mid = 0.5 * (miny + maxy)
        dlat = cell_m / 111_320.0
        dlon = cell_m / (111_320.0 * np.cos(np.radians(lat_mid)))
        nx = int(np.ceil((maxx - minx) / dlon)) + 1
        ny = int(np.ceil((maxy - miny) / dlat)) + 1
        cells, zidx = [], []
        for k, z in enumerate(zones):
            bx0, by0, bx1, by1 = z.geometry.bounds
            i0, i1 = int((bx0 - minx) / dlon), int((bx1 - minx) / dlon) + 1
            j0, j1 = int((by0 - miny) / dlat), int((by1 - miny) / dlat) + 1
            ii, jj = np.meshgrid(np.arange(i0, min(i1, nx)), np.arange(j0, min(j1, ny)))
            ii, jj = ii.ravel(), jj.ravel()
            inside = shapely.contains_xy(z.geometry, minx + (ii + 0.5) * dlon, miny + (jj + 0.5) * dlat)
            flat = jj[inside] * nx + ii[inside]
            if flat.size == 0:
                p = z.geometry.representative_point()
                flat = np.array([int((p.y - miny) / dlat) * nx + int((p.x - minx) / dlon)])
            cells.append(flat)
            zidx.append(np.full(flat.size, k, dtype=np.int32))
        cells_a = np.concatenate(cells)
        zone_a = np.concatenate(zidx)
        order = np.argsort(cells_a, kind="stable")
        cells_a, zone_a = cells_a[order], zone_a[order]
        ptr = np.searchsorted(cells_a, np.arange(nx * ny + 1))
        return cls(minx, miny, dlon, dlat, nx, ny, ptr.astype(np.int64), zone_a)

    def cell_of(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Flat cell index of each point, -1 outside the raster."""
        i = np.floor((np.asarray(lon) - self.lon0) / self.dlon).astype(np.int64)
        j = np.floor((np.asarray(lat) - self.lat0) / self.dlat).astype(np.int64)
        ok = (i >= 0) & (i < self.nx) & (j >= 0) & (j < self.ny)
        return np.where(ok, j * self.nx + i, -1)

    def lookup(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pairs (point index, zone index) for every zone containing each point."""
        c = self.cell_of(lat, lon)
        valid = np.flatnonzero(c >= 0)
        cv = c[valid]
        n = self.cell_ptr[cv + 1] - self.cell_ptr[cv]
        pts = np.repeat(valid, n)
        starts = np.repeat(self.cell_ptr[cv], n)
        offs = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        return pts, self.cell_zone[starts + offs]
