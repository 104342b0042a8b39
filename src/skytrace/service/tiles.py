"""Optional base-map tiles under the live map: rivers, roads and terrain from a source the operator chooses.

The default is none: the map draws oblasts and towns from data shipped with skytrace and fetches nothing from
outside the service. ``[service] map_tiles`` (or ``serve --tiles``) adds raster tiles (the XYZ scheme of
OpenStreetMap, 256 px, Web Mercator) from one of:

- a **directory** of ``{z}/{x}/{y}.png`` (or ``.jpg``, ``.webp``) files, e.g. exported by a tile tool for the
  region, served by skytrace at ``/tiles/{z}/{x}/{y}``;
- an **MBTiles** file (SQLite, raster ``png``/``jpg``/``webp``; https://github.com/mapbox/mbtiles-spec, rows in the
  TMS scheme, so ``y`` is flipped), also served at ``/tiles/{z}/{x}/{y}``;
- a **PMTiles** v3 archive (one file, raster ``png``/``jpg``/``webp``; https://github.com/protomaps/PMTiles, read
  with the ``pmtiles`` package: ``pip install 'skytrace[map]'``), also served at ``/tiles/{z}/{x}/{y}``;
- an **http(s) URL template** with ``{z}``, ``{x}`` and ``{y}`` (a tile server on the operator's network). The
  browser fetches those tiles itself: the operator's explicit choice to leave the offline default.
"""

from __future__ import annotations

import sqlite3
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

from skytrace.errors import SkytraceError

MAX_ZOOM = 22
IMAGE_TYPES = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"RIFF": "image/webp"}
EXTENSIONS = ("png", "jpg", "jpeg", "webp")
MAX_TILE_BYTES = 8 * 1024 * 1024  # a 256 px raster tile is tens of kB


def media_type(data: bytes) -> str | None:
    """The image type of a tile from its first bytes (None: not a raster image the map can show)."""
    return next((m for magic, m in IMAGE_TYPES.items() if data.startswith(magic)), None)


@dataclass
class TileSource:
    """Where the map's base tiles come from; :meth:`get` reads a local tile, :meth:`client` tells the page."""

    kind: str  # "directory", "mbtiles", "pmtiles" or "url"
    location: str
    max_zoom: int = 18
    attribution: str = ""

    def __post_init__(self) -> None:
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._pmtiles: object | None = None  # pmtiles.reader.Reader over a read-only memory map
        self._gzip_tiles = False

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
        if path.is_file() and path.suffix.lower() == ".pmtiles":
            return cls._open_pmtiles(path)
        raise SkytraceError(f"map tiles {setting!r}: not a directory of z/x/y tiles, an .mbtiles or .pmtiles file "
                            "or an http(s) URL template")

    @classmethod
    def _open_pmtiles(cls, path: Path) -> TileSource:
        """Open a PMTiles v3 archive read-only and check its header: raster tiles only (the map draws images)."""
        try:
            from pmtiles.reader import MmapSource, Reader
            from pmtiles.tile import Compression, TileType
        except ImportError:
            raise SkytraceError("reading .pmtiles needs the pmtiles package: pip install 'skytrace[map]'") from None
        src = cls("pmtiles", str(path))
        try:
            with path.open("rb") as f:  # the memory map keeps its own handle
                reader = Reader(MmapSource(f))
            header = reader.header()
            meta = reader.metadata()
        except Exception as exc:  # a truncated or hostile file: the library raises many kinds
            raise SkytraceError(f"{path}: not a readable PMTiles v3 archive ({type(exc).__name__}: {exc})") from None
        kinds = {TileType.PNG: "png", TileType.JPEG: "jpg", TileType.WEBP: "webp"}
        if header["tile_type"] not in kinds:
            raise SkytraceError(f"{path}: PMTiles tile type {header['tile_type'].name.lower()}: only raster tiles "
                                "(png, jpg, webp) can be shown")
        if header["tile_compression"] not in (Compression.NONE, Compression.UNKNOWN, Compression.GZIP):
            raise SkytraceError(f"{path}: PMTiles tile compression {header['tile_compression'].name} is not supported")
        src._pmtiles, src._gzip_tiles = reader, header["tile_compression"] == Compression.GZIP
        src.max_zoom = int(header["max_zoom"])
        src.attribution = str(meta.get("attribution") or "") if isinstance(meta, dict) else ""
        return src

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
        elif self.kind == "pmtiles":
            data = self._pmtiles_tile(z, x, y)
        else:
            with self._lock:
                row = self._connect().execute(
                    "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
                    (z, x, 2 ** z - 1 - y)).fetchone()  # MBTiles rows count from the south (TMS)
            data = bytes(row[0]) if row else None
        if data is None or (media := media_type(data)) is None:
            return None
        return data, media

    def _pmtiles_tile(self, z: int, x: int, y: int) -> bytes | None:
        """One tile of the PMTiles archive (XYZ numbering, as the map asks), None if absent or unreadable."""
        try:
            with self._lock:
                raw = self._pmtiles.get(z, x, y)  # type: ignore[attr-defined]
            if raw is None:
                return None
            if not self._gzip_tiles:
                return bytes(raw)
            inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip, capped: a tile is an image, not a bomb
            data = inflate.decompress(bytes(raw), MAX_TILE_BYTES)
            return None if inflate.unconsumed_tail else data
        except Exception:  # a corrupt directory or tile in the operator's file: no tile, never a crash
            return None
