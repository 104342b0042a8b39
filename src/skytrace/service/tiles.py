"""Optional base-map tiles under the live map: rivers, roads and terrain from a source the operator chooses.

The default is none: the map draws oblasts and towns from data shipped with skytrace and fetches nothing from
outside the service. ``[service] map_tiles`` (or ``serve --tiles``) adds raster tiles (the XYZ scheme of
OpenStreetMap, 256 px, Web Mercator) from one of:

- a **directory** of ``{z}/{x}/{y}.png`` (or ``.jpg``, ``.webp``) files, e.g. exported by a tile tool for the
  region, served by skytrace at ``/tiles/{z}/{x}/{y}``;
- an **MBTiles** file (SQLite, raster ``png``/``jpg``/``webp``; https://github.com/mapbox/mbtiles-spec, rows in the
  TMS scheme, so ``y`` is flipped), also served at ``/tiles/{z}/{x}/{y}``;
- an **http(s) URL template** with ``{z}``, ``{x}`` and ``{y}`` (a tile server on the operator's network). The
  browser fetches those tiles itself: the operator's explicit choice to leave the offline default.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from skytrace.errors import SkytraceError

MAX_ZOOM = 22
IMAGE_TYPES = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"RIFF": "image/webp"}
EXTENSIONS = ("png", "jpg", "jpeg", "webp")


def media_type(data: bytes) -> str | None:
    """The image type of a tile from its first bytes (None: not a raster image the map can show)."""
    return next((m for magic, m in IMAGE_TYPES.items() if data.startswith(magic)), None)


@dataclass
class TileSource:
    """Where the map's base tiles come from; :meth:`get` reads a local tile, :meth:`client` tells the page."""

    kind: str  # "directory", "mbtiles" or "url"
    location: str
    max_zoom: int = 18
    attribution: str = ""

    def __post_init__(self) -> None:
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_setting(cls, setting: str) -> TileSource | None:
        """Parse ``[service] map_tiles``; ``""`` is no tiles. A bad setting is a one-line SkytraceError."""
        setting = (setting or "").strip()
        if not setting:
            return None
        if setting.startswith(("http://", "https://")):
            if not all(k in setting for k in ("{z}", "{x}", "{y}")):
                raise SkytraceError(f"map tiles URL {setting!r} must contain {{z}}, {{x}} and {{y}}")
            return cls("url", setting)
        path = Path(setting).expanduser()
        if path.is_dir():
            return cls("directory", str(path))
        if path.is_file() and path.suffix.lower() == ".mbtiles":
            src = cls("mbtiles", str(path))
            meta = src._metadata()
            if meta.get("format", "png").lower() not in ("png", "jpg", "jpeg", "webp"):
                raise SkytraceError(f"{path}: MBTiles format {meta.get('format')!r}: only raster tiles (png, jpg, "
                                    "webp) can be shown")
            src.max_zoom = int(meta.get("maxzoom") or 18)
            src.attribution = str(meta.get("attribution") or "")
            return src
        raise SkytraceError(f"map tiles {setting!r}: not a directory of z/x/y tiles, an .mbtiles file or an "
                            "http(s) URL template")

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                self._db = sqlite3.connect(f"file:{self.location}?mode=ro", uri=True, check_same_thread=False)
            except sqlite3.Error as exc:
                raise SkytraceError(f"{self.location}: cannot open as MBTiles ({exc})") from None
        return self._db

    def _metadata(self) -> dict[str, str]:
        try:
            with self._lock:
                rows = self._connect().execute("SELECT name, value FROM metadata").fetchall()
        except sqlite3.Error as exc:
            raise SkytraceError(f"{self.location}: not an MBTiles file ({exc})") from None
        return {str(k): str(v) for k, v in rows}

    def client(self) -> dict:
        """What the page needs: the URL template of the tiles (ours or the operator's), zoom range, attribution."""
        if self.kind == "url":
            return {"url": self.location, "max_zoom": self.max_zoom, "attribution": self.attribution, "local": False}
        return {"url": "tiles/{z}/{x}/{y}", "max_zoom": self.max_zoom, "attribution": self.attribution,
                "local": True}

    def get(self, z: int, x: int, y: int) -> tuple[bytes, str] | None:
        """The tile (bytes, media type) at XYZ ``z/x/y``, or None when there is none (or it is not an image)."""
        if self.kind == "url" or not (0 <= z <= MAX_ZOOM and 0 <= x < 2 ** z and 0 <= y < 2 ** z):
            return None
        data: bytes | None = None
        if self.kind == "directory":
            for ext in EXTENSIONS:  # z, x, y are integers: the path cannot leave the directory
                p = Path(self.location) / str(z) / str(x) / f"{y}.{ext}"
                if p.is_file():
                    data = p.read_bytes()
                    break
        else:
            with self._lock:
                row = self._connect().execute(
                    "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
                    (z, x, 2 ** z - 1 - y)).fetchone()  # MBTiles rows count from the south (TMS)
            data = bytes(row[0]) if row else None
        if data is None or (media := media_type(data)) is None:
            return None
        return data, media
